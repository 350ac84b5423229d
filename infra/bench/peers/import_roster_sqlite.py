"""The peer a user would write for a first roster import into SQLite:
csv.DictReader, the checks of parse_roster.py, and one row per member put
with sqlite3 executemany into a members table, replacing the property's
roster in one transaction.

usage: import_roster_sqlite.py FILE DATABASE PROPERTY
Prints: seconds members former rejects."""
import csv
import sqlite3
import sys
import time
from datetime import date

from parse_roster import EMAIL, LEAVING, parse_date


def rows(path, as_of, counts):
    with open(path, newline="", encoding="utf-8-sig") as f:
        for row in csv.DictReader(f):
            status = (row.get("ClubStatus") or "").strip().lower()
            try:
                quit_date = parse_date(row.get("QuitDate") or "")
            except ValueError:
                counts["rejects"] += 1
                continue
            if status in LEAVING or (quit_date and quit_date <= as_of):
                counts["former"] += 1
                continue
            email = (row.get("Email") or "").strip().lower()
            if not EMAIL.match(email):
                counts["rejects"] += 1
                continue
            try:
                since = parse_date(row.get("JoinDate") or "")
            except ValueError:
                counts["rejects"] += 1
                continue
            counts["members"] += 1
            yield (
                email,
                (row.get("ClubDescr") or "").strip(),
                (row.get("MemberID") or "").strip() or None,
                (row.get("FirstName") or "").strip() or None,
                (row.get("LastName") or "").strip() or None,
                (row.get("Phone") or "").strip() or None,
                since.isoformat() if since else None,
            )


def main(path, database, prop):
    started = time.perf_counter()
    db = sqlite3.connect(database)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS members (property TEXT, email TEXT, tier TEXT,"
        " member_id TEXT, first_name TEXT, last_name TEXT, phone TEXT, since TEXT,"
        " PRIMARY KEY (property, email, tier))"
    )
    counts = {"members": 0, "former": 0, "rejects": 0}
    with db:
        db.execute("DELETE FROM members WHERE property = ?", (prop,))
        db.executemany(
            "INSERT OR REPLACE INTO members VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ((prop, *r) for r in rows(path, date.today(), counts)),
        )
    db.close()
    print(
        f"{time.perf_counter() - started:.6f} {counts['members']} {counts['former']} {counts['rejects']}"
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])

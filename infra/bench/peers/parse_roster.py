"""The peer a user would write for roster parsing: csv.DictReader plus the
same checks GuestHub makes (email syntax, tier, status, dates)."""
import csv
import re
import sys
import time
from datetime import date, datetime

EMAIL = re.compile(r"^[^@\s,;]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
LEAVING = {"cancelled", "canceled", "quit", "inactive", "terminated", "expired", "lapsed"}


def parse_date(s):
    s = s.strip()
    if not s:
        return None
    for fmt in ("%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y"):
        try:
            return datetime.strptime(s.split(" ")[0], fmt).date()
        except ValueError:
            pass
    raise ValueError("bad date")


def main(path):
    as_of = date.today()
    members = former = rejects = 0
    started = time.perf_counter()
    with open(path, newline="", encoding="utf-8-sig") as f:
        for row in csv.DictReader(f):
            status = (row.get("ClubStatus") or "").strip().lower()
            try:
                quit_date = parse_date(row.get("QuitDate") or "")
            except ValueError:
                rejects += 1
                continue
            if status in LEAVING or (quit_date and quit_date <= as_of):
                former += 1
                continue
            email = (row.get("Email") or "").strip().lower()
            if not EMAIL.match(email):
                rejects += 1
                continue
            try:
                parse_date(row.get("JoinDate") or "")
            except ValueError:
                rejects += 1
                continue
            _tier = (row.get("ClubDescr") or "").strip()
            members += 1
    print(f"{time.perf_counter() - started:.6f} {members} {former} {rejects}")


if __name__ == "__main__":
    main(sys.argv[1])

"""The peer a user would write for a roster import into DynamoDB:
csv.DictReader, the checks of parse_roster.py, and one item per member
written with boto3's Table.batch_writer() (batches of 25, unprocessed items
sent again).

usage: import_roster_boto3.py ENDPOINT TABLE FILE PROPERTY
Creates TABLE (pk/sk) first, untimed. Prints: seconds members former rejects.
Credentials and region come from the environment."""
import csv
import json
import sys
import time
import uuid
from datetime import date

import boto3

from parse_roster import EMAIL, LEAVING, parse_date


def create_table(dynamodb, name):
    return dynamodb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def main(endpoint, table_name, path, prop):
    table = create_table(boto3.resource("dynamodb", endpoint_url=endpoint), table_name)
    # One partition per import, as GuestHub writes a generation.
    pk = f"GEN#{prop}#{uuid.uuid4().hex}"
    as_of = date.today()
    members = former = rejects = 0
    started = time.perf_counter()
    # overwrite_by_pkeys: a file listing the same (email, tier) twice would
    # otherwise put a duplicate key into one batch, which DynamoDB refuses.
    with open(path, newline="", encoding="utf-8-sig") as f, table.batch_writer(
        overwrite_by_pkeys=["pk", "sk"]
    ) as batch:
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
                since = parse_date(row.get("JoinDate") or "")
            except ValueError:
                rejects += 1
                continue
            tier = (row.get("ClubDescr") or "").strip()
            entry = {
                "member_id": (row.get("MemberID") or "").strip() or None,
                "tier": tier or None,
                "since": since.isoformat() if since else None,
            }
            batch.put_item(
                Item={"pk": pk, "sk": f"{email} {tier}", "v": 0, "body": json.dumps(entry)}
            )
            members += 1
    print(f"{time.perf_counter() - started:.6f} {members} {former} {rejects}")


if __name__ == "__main__":
    main(*sys.argv[1:5])

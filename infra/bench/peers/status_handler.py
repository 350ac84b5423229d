"""The peer a user would write for the voucher status lookup
(GET /v1/properties/{p}/vouchers/{code}) as a Python Lambda: boto3 reads of
the partner key item (SHA-256 of the secret compared in constant time), the
property, the voucher and the pickup cursor, answered as an API Gateway HTTP
API (v2) response with roughly the JSON GuestHub returns.

Runs under the official runtime interface client
(`python -m awslambdaric status_handler.handler`, from this folder) or,
where that is not installed, as `python status_handler.py`: a minimal
Runtime API loop with urllib.

Environment: GUESTHUB_TABLE_PREFIX, GUESTHUB_DYNAMODB_ENDPOINT, AWS
credentials and region, AWS_LAMBDA_RUNTIME_API."""
import hashlib
import hmac
import json
import os
import re
import time
import urllib.request

import boto3

PREFIX = os.environ["GUESTHUB_TABLE_PREFIX"]
PLATFORM = f"{PREFIX}-platform"
VOUCHERS = f"{PREFIX}-vouchers"
KEY = re.compile(r"^ghk_([0-9a-fA-F]{16})_([A-Za-z0-9_-]{40,64})$")
ROUTE = re.compile(r"^/v1/properties/([^/]+)/vouchers/([^/]+)$")

# Created during init, outside the handler, as Lambda guidance suggests.
dynamodb = boto3.client("dynamodb", endpoint_url=os.environ.get("GUESTHUB_DYNAMODB_ENDPOINT"))


def get(table, pk, sk):
    """The item's JSON body, or None when absent or expired."""
    item = dynamodb.get_item(
        TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
    ).get("Item")
    if item is None:
        return None
    if "expires_at" in item and int(item["expires_at"]["N"]) <= time.time():
        return None
    return json.loads(item["body"]["S"])


# ---- Voucher key layout (shared/platform/src/store/voucher_repo.rs) --------
# The one place that knows where a voucher and its pickup cursor live. Like
# GuestHub, one BatchGetItem reads the code lookup, the voucher where the
# caller's property would keep its own, and the pickup cursor.
def live_body(item):
    if "expires_at" in item and int(item["expires_at"]["N"]) <= time.time():
        return None
    return json.loads(item["body"]["S"])


def voucher_and_cursor(code_key, property_id, partner_id):
    """The voucher stored under code_key (None if unknown), and the partner's
    pickup cursor at property_id (0 when the voucher is another issuer's)."""
    keys = {
        "code": (f"CODE#{code_key}", "CODE"),
        "voucher": (f"VOUCHER#{property_id}#{code_key}", "VOUCHER"),
        "cursor": (f"PICKUP#{property_id}#{partner_id}", "CURSOR"),
    }
    asked = [{"pk": {"S": pk}, "sk": {"S": sk}} for pk, sk in keys.values()]
    got = dynamodb.batch_get_item(
        RequestItems={VOUCHERS: {"Keys": asked, "ConsistentRead": True}}
    )["Responses"].get(VOUCHERS, [])
    by_key = {(i["pk"]["S"], i["sk"]["S"]): live_body(i) for i in got}
    code = by_key.get(keys["code"])
    if code is None:
        return None, 0
    issuer = code["issuer"]
    if issuer != property_id:
        return get(VOUCHERS, f"VOUCHER#{issuer}#{code_key}", "VOUCHER"), 0
    cursor = by_key.get(keys["cursor"]) or {}
    return by_key.get(keys["voucher"]), cursor.get("acked", 0)
# ----------------------------------------------------------------------------


def answer(status, body):
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def error(status, code):
    return answer(status, {"error": {"code": code}})


def partner_for(headers):
    """The enabled partner holding the bearer key, or None."""
    auth = headers.get("authorization", "")
    m = KEY.match(auth[7:].strip()) if auth[:7].lower() == "bearer " else None
    if m is None:
        return None
    key_id, secret = m.groups()
    partner = get(PLATFORM, f"PARTNERKEY#{key_id}", "PARTNER")
    if partner is None or partner.get("disabled"):
        return None
    presented = hashlib.sha256(secret.encode()).hexdigest()
    return partner if hmac.compare_digest(presented, partner["key_hash"]) else None


def money(amount, currency):
    return {"amount": amount, "currency": currency}


def view(v, property_id, acked):
    today = time.strftime("%Y-%m-%d", time.gmtime())
    expired = v.get("valid_until") is not None and v["valid_until"] < today
    status = "expired" if expired and v["status"] == "active" else v["status"]
    held = sum(h["amount"]["amount"] for h in v.get("holds", []))
    balance = v["balance"]["amount"]
    return {
        "code": v["code"],
        "article_type": v["article_type"],
        "status": status,
        "balance": money(balance, v["currency"]),
        "initial_value": v["initial_value"],
        "available": money(balance - held, v["currency"]),
        "held": money(held, v["currency"]),
        "valid_until": v.get("valid_until"),
        "redeemable": status == "active" and balance - held > 0,
        "picked_up": v["issuer"] == property_id
        and v.get("order_seq") is not None
        and v["order_seq"] <= acked,
        "issuer": v["issuer"],
        "test_mode": v.get("test_mode", False),
    }


def handler(event, context):
    route = ROUTE.match(event.get("rawPath", ""))
    if route is None or event["requestContext"]["http"]["method"] != "GET":
        return error(404, "not_found")
    partner = partner_for(event.get("headers") or {})
    if partner is None:
        return error(401, "unauthorized")
    property_id, raw_code = route.groups()
    if property_id not in partner["properties"] or get(
        PLATFORM, f"PROPERTY#{property_id}", "PROPERTY"
    ) is None:
        return error(404, "property_not_found")
    if "vouchers:read" not in partner["scopes"]:
        return error(403, "forbidden")
    code_key = re.sub(r"[\s-]", "", raw_code).upper()
    voucher, acked = voucher_and_cursor(code_key, property_id, partner["id"])
    visible = voucher is not None and (
        voucher["issuer"] == property_id or voucher["issuer"] in partner["properties"]
    )
    if not visible:
        return error(404, "voucher_not_found")
    return answer(200, view(voucher, property_id, acked))


def serve():
    """A minimal Lambda Runtime API loop, for when awslambdaric is missing."""
    base = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime/invocation/"
    while True:
        with urllib.request.urlopen(base + "next") as r:
            request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
            event = json.load(r)
        body = json.dumps(handler(event, None)).encode()
        post = urllib.request.Request(base + f"{request_id}/response", data=body, method="POST")
        urllib.request.urlopen(post).close()


if __name__ == "__main__":
    serve()

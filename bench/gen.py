#!/usr/bin/env python3
"""Deterministic generator of realistic DynamoDB change events for the benchmarks.

Writes one Lambda event of invoice-like changes (NEW_AND_OLD_IMAGES; INSERT, MODIFY and
REMOVE, some REMOVEs made by the TTL service) whose JSON payload is as close as possible
to a size limit (default: Lambda's 6 MB maximum), spanning several UTC days. Every
DynamoDB type appears: S, N (up to 38 digits, exponent forms), B, SS, NS, BS, BOOL, NULL,
nested M and L of M.

  gen.py --kind stream  --out events.json            # Lambda DynamoDB Streams event
  gen.py --kind kinesis --out events.json            # Lambda Kinesis event (base64 data)
  gen.py --kind stream  --records 1 --out one.json   # a fixed number of records

Only the standard library is used, with a fixed seed: the same arguments always give the
same bytes.
"""

import argparse
import base64
import json
import random
import sys

MAX_PAYLOAD = 6 * 1024 * 1024
REGION = "eu-west-1"
TABLE = "invoices"
STREAM_ARN = f"arn:aws:dynamodb:{REGION}:123456789012:table/{TABLE}/stream/2026-01-01T00:00:00.000"
KINESIS_ARN = f"arn:aws:kinesis:{REGION}:123456789012:stream/{TABLE}-changes"
START = 1767225600  # 2026-01-01T00:00:00Z
SPAN_DAYS = 4

WORDS = (
    "consulting hours licence renewal support premium widget gadget freight insurance "
    "installation maintenance audit training storage bandwidth hosting café naïve façade "
    "Größe 日本語 überweisung señal"
).split()
CITIES = ["Dublin", "Paris", "Berlin", "Zürich", "São Paulo", "Kraków", "Tōkyō", "Oslo"]
CURRENCIES = ["EUR", "USD", "GBP", "JPY", "CHF"]
STATUSES = ["DRAFT", "ISSUED", "PAID", "OVERDUE", "VOID"]


def s(v):
    return {"S": v}


def n(v):
    return {"N": v}


def money(rng):
    return f"{rng.randint(0, 99999)}.{rng.randint(0, 99):02d}"


def long_number(rng):
    kind = rng.randrange(4)
    if kind == 0:  # 38 significant digits
        return str(rng.randint(10**37, 10**38 - 1))
    if kind == 1:
        return f"-{rng.randint(1, 9)}.{rng.randint(10**36, 10**37 - 1)}E-{rng.randint(1, 120)}"
    if kind == 2:
        return f"{rng.randint(1, 9)}E+{rng.randint(1, 125)}"
    return f"0.{rng.randint(10**20, 10**21 - 1)}"


def b64(rng, size):
    return base64.b64encode(rng.randbytes(size)).decode("ascii")


def text(rng, words):
    return " ".join(rng.choice(WORDS) for _ in range(words))


def invoice(rng, number, version):
    lines = []
    for i in range(rng.randint(2, 6)):
        line = {
            "sku": s(f"SKU-{rng.randint(1000, 9999)}-{i}"),
            "description": s(text(rng, rng.randint(3, 9))),
            "qty": n(str(rng.randint(1, 500))),
            "unitPrice": n(money(rng)),
            "taxRate": n(rng.choice(["0", "0.07", "0.2", "0.21", "0.077"])),
            "tags": {"SS": sorted({rng.choice(WORDS) for _ in range(3)})},
        }
        if rng.random() < 0.3:
            line["discount"] = {"M": {"code": s(f"D{rng.randint(1, 99)}"), "pct": n(str(rng.randint(1, 40)))}}
        lines.append({"M": line})
    item = {
        "pk": s(f"INV#{number:08d}"),
        "sk": s("HEADER"),
        "invoiceNumber": s(f"2026-{number:08d}"),
        "version": n(str(version)),
        "status": s(rng.choice(STATUSES)),
        "currency": s(rng.choice(CURRENCIES)),
        "total": n(money(rng)),
        "ledgerAmount": n(long_number(rng)),
        "exchangeRates": {"NS": sorted({long_number(rng) for _ in range(3)})},
        "paid": {"BOOL": rng.random() < 0.5},
        "cancelledAt": {"NULL": True},
        "customer": {
            "M": {
                "id": s(f"CUST#{rng.randint(1, 50000):06d}"),
                "name": s(text(rng, 2).title()),
                "email": s(f"billing+{rng.randint(1, 10**6)}@example.com"),
                "vatId": s(f"IE{rng.randint(10**7, 10**8 - 1)}X"),
                "address": {
                    "M": {
                        "street": s(f"{rng.randint(1, 300)} {text(rng, 2).title()} Street"),
                        "city": s(rng.choice(CITIES)),
                        "zip": s(f"{rng.randint(1000, 99999)}"),
                        "country": s(rng.choice(["IE", "FR", "DE", "CH", "BR", "PL", "JP", "NO"])),
                    }
                },
            }
        },
        "lines": {"L": lines},
        "labels": {"SS": sorted({rng.choice(WORDS) for _ in range(4)})},
        "pdfSha256": {"B": b64(rng, 32)},
        "thumbnails": {"BS": sorted({b64(rng, rng.randint(24, 60)) for _ in range(2)})},
        "notes": s(text(rng, rng.randint(5, 30)) + " \"quoted\" \\ tab\t end"),
        "history": {
            "L": [
                {"M": {"at": n(str(START + rng.randint(0, 10**6))), "by": s(f"user{rng.randint(1, 99)}"), "what": s(rng.choice(STATUSES))}}
                for _ in range(rng.randint(1, 4))
            ]
        },
        "dueAt": n(str(START + rng.randint(0, 90 * 86400))),
        "expiresAt": n(str(START + 365 * 86400 + rng.randint(0, 86400))),
    }
    return item


def size_of(obj):
    return len(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def changes(rng):
    """An endless stream of (event_name, keys, new, old, ttl) tuples."""
    live = {}
    number = 0
    while True:
        r = rng.random()
        if live and r < 0.45:
            key = rng.choice(sorted(live))
            old = live[key]
            new = invoice(rng, key, int(old["version"]["N"]) + 1)
            live[key] = new
            yield "MODIFY", new, old, False
        elif live and r < 0.6:
            key = rng.choice(sorted(live))
            old = live.pop(key)
            yield "REMOVE", None, old, rng.random() < 0.5
        else:
            number += 1
            new = invoice(rng, number, 1)
            live[number] = new
            yield "INSERT", new, None, False


def stream_record(rng, i, total_hint, event_name, new, old, ttl):
    item = new or old
    keys = {"pk": item["pk"], "sk": item["sk"]}
    ddb = {
        "ApproximateCreationDateTime": START + (i * SPAN_DAYS * 86400) // total_hint,
        "Keys": keys,
    }
    if new is not None:
        ddb["NewImage"] = new
    if old is not None:
        ddb["OldImage"] = old
    ddb["SequenceNumber"] = str(4_421_584_500_000_000_017_450_439_091 + i * 1000 + rng.randint(0, 999))
    ddb["SizeBytes"] = size_of(keys) + (size_of(new) if new else 0) + (size_of(old) if old else 0)
    ddb["StreamViewType"] = "NEW_AND_OLD_IMAGES"
    rec = {
        "eventID": f"{rng.getrandbits(128):032x}",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": ddb,
        "eventSourceARN": STREAM_ARN,
    }
    if ttl:
        rec["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    return rec


def kinesis_record(rng, i, total_hint, event_name, new, old, ttl):
    item = new or old
    keys = {"pk": item["pk"], "sk": item["sk"]}
    ddb = {
        "ApproximateCreationDateTime": (START + (i * SPAN_DAYS * 86400) // total_hint) * 1000 + rng.randint(0, 999),
        "Keys": keys,
    }
    if new is not None:
        ddb["NewImage"] = new
    if old is not None:
        ddb["OldImage"] = old
    ddb["SizeBytes"] = size_of(keys) + (size_of(new) if new else 0) + (size_of(old) if old else 0)
    change = {
        "awsRegion": REGION,
        "eventID": f"{rng.getrandbits(128):032x}",
        "eventName": event_name,
        "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"} if ttl else None,
        "recordFormat": "application/json",
        "tableName": TABLE,
        "dynamodb": ddb,
        "eventSource": "aws:dynamodb",
    }
    data = base64.b64encode(json.dumps(change, separators=(",", ":"), ensure_ascii=False).encode("utf-8")).decode("ascii")
    seq = str(49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898 + i * 4096)
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": f"{rng.getrandbits(64):016X}",
            "sequenceNumber": seq,
            "data": data,
            "approximateArrivalTimestamp": START + (i * SPAN_DAYS * 86400) // total_hint + 0.5,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:{seq}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/ddb-archiver",
        "awsRegion": REGION,
        "eventSourceARN": KINESIS_ARN,
    }


def generate(kind, max_bytes, records, seed):
    rng = random.Random(seed)
    make = stream_record if kind == "stream" else kinesis_record
    # Spread the times over SPAN_DAYS using an estimate of the record count.
    per_record = 3850 if kind == "stream" else 5500
    total_hint = records if records else max(1, max_bytes // per_record)
    out = []
    size = len('{"Records":[]}')
    for i, (name, new, old, ttl) in enumerate(changes(rng)):
        if records and i >= records:
            break
        rec = json.dumps(make(rng, i, total_hint, name, new, old, ttl), separators=(",", ":"), ensure_ascii=False)
        add = len(rec.encode("utf-8")) + (1 if out else 0)
        if not records and size + add > max_bytes:
            break
        out.append(rec)
        size += add
    return ('{"Records":[' + ",".join(out) + "]}").encode("utf-8")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["stream", "kinesis"], default="stream")
    ap.add_argument("--bytes", type=int, default=MAX_PAYLOAD, help="largest payload (default 6 MB)")
    ap.add_argument("--records", type=int, default=0, help="exact record count instead of a size")
    ap.add_argument("--seed", type=int, default=20260101)
    ap.add_argument("--out", default="-")
    args = ap.parse_args()
    body = generate(args.kind, args.bytes, args.records, args.seed)
    if args.out == "-":
        sys.stdout.buffer.write(body)
    else:
        with open(args.out, "wb") as f:
            f.write(body)


if __name__ == "__main__":
    main()

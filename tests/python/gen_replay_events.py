"""Writes generated DynamoDB Streams Lambda events, one event per line, for the replay
stage: `records` changes of `items` items spread evenly over `days` UTC days from
2026-03-01, in stream order (increasing 21-digit sequence numbers)."""

import argparse
import json

START_MS = 1_772_323_200_000  # 2026-03-01T00:00:00Z
DAY_MS = 86_400_000


def record(i, items, records, days, table, pad):
    item, step = i % items, i // items
    ms = START_MS + i * (days * DAY_MS // records)
    seq = str(10**20 + i)
    key = {"pk": {"S": f"ITEM#{item:06d}"}}
    def image(v):
        return {**key, "v": {"N": str(v)}, "n": {"N": "1E+125"}, "pad": {"S": "x" * pad}}
    dynamodb = {
        "ApproximateCreationDateTime": f"@@{ms // 1000}.{ms % 1000:03d}@@",
        "Keys": key,
        "NewImage": image(step),
        "SequenceNumber": seq,
        "SizeBytes": 100 + pad,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if step > 0:
        dynamodb["OldImage"] = image(step - 1)
    rec = {
        "eventID": f"ev{i:08d}",
        "eventName": "INSERT" if step == 0 else "MODIFY",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": dynamodb,
        "eventSourceARN": f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/2026-03-01T00:00:00.000",
    }
    # The time as a JSON number with exactly three decimals.
    text = json.dumps(rec, separators=(",", ":"))
    return text.replace('"@@', "").replace('@@"', "")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--records", type=int, required=True)
    p.add_argument("--items", type=int, default=1000)
    p.add_argument("--days", type=int, default=1)
    p.add_argument("--per-event", type=int, default=1000)
    p.add_argument("--pad", type=int, default=200)
    p.add_argument("--table", default="replaytest")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    with open(a.out, "w") as out:
        for start in range(0, a.records, a.per_event):
            end = min(start + a.per_event, a.records)
            recs = ",".join(record(i, a.items, a.records, a.days, a.table, a.pad) for i in range(start, end))
            out.write('{"Records":[' + recs + "]}\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Records what a build of the archiver writes for the bundled examples and, when
present, the public fixtures in ../shared/fixtures/public: object names and a SHA-256
of each object's decompressed content, one JSON line per object.

tests/golden/outputs.jsonl was made with this script from the release before the
archive/ module; tests/archive/golden.rs archives the same inputs with the same
settings and requires the same names and contents.

    python3 scripts/golden-outputs.py --bin target/debug/ddb-archiver > tests/golden/outputs.jsonl
"""
import argparse
import gzip
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = "golden_tbl"
FORMATS = ["parquet", "jsonl.gz"]


def inputs():
    for p in sorted((ROOT / "examples" / "events").glob("*.json")):
        yield f"examples/events/{p.name}", p
    public = ROOT.parent / "shared" / "fixtures" / "public"
    if public.is_dir():
        for p in sorted(public.glob("*.json")):
            yield f"public:{p.name}", p


def content_digest(key, body):
    if key.endswith(".gz"):
        body = gzip.decompress(body)
    return hashlib.sha256(body).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    args = ap.parse_args()
    for name, path in inputs():
        for fmt in FORMATS:
            with tempfile.TemporaryDirectory() as d:
                # Run beside the input and name it bare, so rejected records name the
                # same source wherever the checkout is.
                subprocess.run(
                    [str(Path(args.bin).resolve()), "archive", "--dest", d, "--format", fmt,
                     "--table", TABLE, path.name],
                    cwd=path.parent,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    check=False,
                )
                for obj in sorted(Path(d).rglob("*")):
                    if not obj.is_file() or obj.name.startswith("."):
                        continue
                    key = obj.relative_to(d).as_posix()
                    digest = content_digest(key, obj.read_bytes())
                    key = re.sub(r"^_rejected/year=\d+/month=\d+/day=\d+/", "_rejected/<processing-date>/", key)
                    print(json.dumps({"input": name, "format": fmt, "key": key, "sha256": digest}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

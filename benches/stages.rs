//! Criterion benches of the pipeline's stages on a maximum (6 MB) Lambda batch made by
//! `bench/gen.py`: decode (DynamoDB Streams and Kinesis events), encode Parquet, encode
//! gzip JSON lines, and, for comparison, the parse of a whole event that the Lambda
//! runtime would do before the handler. Set `BENCH_EVENT` to a file to use another event
//! (DynamoDB Streams stages only); `BENCH_PYTHON` names the Python that runs the
//! generator (default `python3`).

use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ddb_archiver::decode::{decode_input, DecodeOptions, Decoded};
use ddb_archiver::encode::{jsonl, parquet};
use ddb_archiver::model::ChangeRecord;
use serde_json::value::RawValue;

/// The generated event of `kind` (`stream` or `kinesis`), as bytes.
fn event(kind: &str) -> Vec<u8> {
    if kind == "stream" {
        if let Ok(path) = std::env::var("BENCH_EVENT") {
            return std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        }
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let out = dir.path().join(format!("{kind}.json"));
    let python = std::env::var("BENCH_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let status = Command::new(python)
        .arg(root.join("bench").join("gen.py"))
        .args(["--kind", kind, "--out"])
        .arg(&out)
        .status()
        .expect("running bench/gen.py");
    assert!(status.success(), "bench/gen.py failed: {status}");
    std::fs::read(&out).expect("reading the generated event")
}

fn changes(bytes: &[u8]) -> Vec<ChangeRecord> {
    decode_input(bytes, "bench", &DecodeOptions::default())
        .expect("the generated event decodes")
        .into_iter()
        .map(|d| match d {
            Decoded::Change(c) => *c,
            Decoded::Rejected(r) => panic!("generated record rejected: {}", r.error),
        })
        .collect()
}

fn stages(c: &mut Criterion) {
    let opts = DecodeOptions::default();
    let stream = event("stream");
    let kinesis = event("kinesis");
    let records = changes(&stream);

    let mut g = c.benchmark_group("decode");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("stream_6mb", |b| {
        b.iter(|| decode_input(black_box(&stream), "bench", &opts))
    });
    g.throughput(Throughput::Bytes(kinesis.len() as u64));
    g.bench_function("kinesis_6mb", |b| {
        b.iter(|| decode_input(black_box(&kinesis), "bench", &opts))
    });
    // The parse of the whole event into a raw value that the Lambda runtime would do
    // before the handler; the function skips it (see src/bin/ddb-archiver-lambda.rs).
    g.bench_function("runtime_parse_stream_6mb", |b| {
        b.iter(|| serde_json::from_slice::<Box<RawValue>>(black_box(&stream)))
    });
    g.finish();

    let mut g = c.benchmark_group("encode");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("parquet_6mb", |b| {
        b.iter(|| parquet::encode(black_box(&records), None))
    });
    g.bench_function("jsonl_gz_6mb", |b| {
        b.iter(|| jsonl::encode(black_box(&records)))
    });
    g.finish();
}

criterion_group!(benches, stages);
criterion_main!(benches);

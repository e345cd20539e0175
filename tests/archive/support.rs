//! Helpers: run the pipeline into a temporary directory and read the archive back.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use arrow::array::{Array, AsArray};
use ddb_archiver::encode::Format;
use ddb_archiver::pipeline::Archiver;
use ddb_archiver::report::Summary;
use ddb_archiver::settings::Settings;
use ddb_archiver::sink::local::LocalDirSink;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// The project's own event fixtures.
pub fn own_fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events")
}

/// One of the project's own event fixtures.
pub fn own_fixture(name: &str) -> PathBuf {
    own_fixtures_dir().join(name)
}

/// The public sample events from other projects' test suites, beside the repository in
/// `../shared/fixtures/public` (CI has them): an extra check on top of the project's own
/// fixtures. `None` when they are not there; the first caller then says so on the
/// terminal, past the test harness's capture of `eprintln!`.
pub fn public_fixtures_dir() -> Option<PathBuf> {
    static SKIPPED: Once = Once::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/public");
    if dir.is_dir() {
        return Some(dir);
    }
    SKIPPED.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "public fixtures skipped: {} is not there (the project's own fixtures ran)",
            dir.display()
        );
    });
    None
}

#[derive(clap::Parser)]
struct Wrapper {
    #[command(flatten)]
    settings: Settings,
}

/// Settings as the CLI would parse them from `--dest DIR --format F` plus `extra` flags.
pub fn settings_with(dest: &Path, format: Format, extra: &[&str]) -> Settings {
    use clap::Parser;
    let dest = dest.display().to_string();
    let mut args = vec!["ddb-archiver", "--dest", &dest, "--format", format.name()];
    args.extend_from_slice(extra);
    Wrapper::parse_from(args).settings
}

pub fn settings(dest: &Path, format: Format) -> Settings {
    settings_with(dest, format, &[])
}

/// Archives `inputs` (name, bytes) with `settings`, returns the summary.
pub fn archive(settings: &Settings, inputs: &[(&str, &[u8])]) -> Summary {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let sink = Arc::new(LocalDirSink::new(&settings.dest));
        let mut a = Archiver::new(settings, sink).unwrap();
        for (name, bytes) in inputs {
            a.ingest(*bytes, name).await;
        }
        a.finish().await
    })
}

/// Every file under `dir`, relative path → bytes.
pub fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// One archived row, every column as text (JSON columns as their raw text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub event_id: String,
    pub event_name: String,
    pub table_name: String,
    pub sequence_number: String,
    pub time: String,
    pub stream_view_type: Option<String>,
    pub size_bytes: Option<i64>,
    pub ttl_delete: bool,
    pub keys: String,
    pub new_image: Option<String>,
    pub old_image: Option<String>,
    pub record: String,
}

pub fn gunzip(bytes: &[u8]) -> String {
    let mut s = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut s)
        .unwrap();
    s
}

fn raw_opt(v: Option<&serde_json::value::RawValue>) -> Option<String> {
    v.map(|r| r.get().to_string()).filter(|s| s != "null")
}

/// Reads the rows of one archive file of either format.
pub fn read_rows(name: &str, bytes: &[u8]) -> Vec<Row> {
    if name.ends_with(".json.gz") {
        let text = gunzip(bytes);
        return text
            .lines()
            .map(|line| {
                let m: BTreeMap<String, Box<serde_json::value::RawValue>> =
                    serde_json::from_str(line).unwrap();
                let s = |k: &str| -> String { serde_json::from_str(m[k].get()).unwrap() };
                Row {
                    event_id: s("event_id"),
                    event_name: s("event_name"),
                    table_name: s("table_name"),
                    sequence_number: s("sequence_number"),
                    time: s("approximate_creation_time"),
                    stream_view_type: serde_json::from_str(m["stream_view_type"].get()).unwrap(),
                    size_bytes: serde_json::from_str(m["size_bytes"].get()).unwrap(),
                    ttl_delete: serde_json::from_str(m["ttl_delete"].get()).unwrap(),
                    keys: m["keys"].get().to_string(),
                    new_image: raw_opt(m.get("new_image").map(|b| &**b)),
                    old_image: raw_opt(m.get("old_image").map(|b| &**b)),
                    record: m["record"].get().to_string(),
                }
            })
            .collect();
    }
    assert!(name.ends_with(".parquet"), "{name}");
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::copy_from_slice(bytes))
        .unwrap()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for batch in reader {
        let b = batch.unwrap();
        let col = |n: &str| b.column_by_name(n).unwrap().clone();
        let st = |n: &str, i: usize| {
            let c = col(n);
            let a = c.as_string::<i32>();
            (!a.is_null(i)).then(|| a.value(i).to_string())
        };
        let times = col("approximate_creation_time");
        let times = times.as_primitive::<arrow::datatypes::TimestampMillisecondType>();
        let sizes = col("size_bytes");
        let sizes = sizes.as_primitive::<arrow::datatypes::Int64Type>();
        let ttl = col("ttl_delete");
        let ttl = ttl.as_boolean();
        for i in 0..b.num_rows() {
            rows.push(Row {
                event_id: st("event_id", i).unwrap(),
                event_name: st("event_name", i).unwrap(),
                table_name: st("table_name", i).unwrap(),
                sequence_number: st("sequence_number", i).unwrap(),
                time: ddb_archiver::encode::jsonl::iso_millis(times.value(i)),
                stream_view_type: st("stream_view_type", i),
                size_bytes: (!sizes.is_null(i)).then(|| sizes.value(i)),
                ttl_delete: ttl.value(i),
                keys: st("keys", i).unwrap(),
                new_image: st("new_image", i),
                old_image: st("old_image", i),
                record: st("record", i).unwrap(),
            });
        }
    }
    rows
}

/// Every archived row under `dir` (not `_rejected/`), with the file it is in.
pub fn all_rows(dir: &Path) -> Vec<(String, Row)> {
    files(dir)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("_rejected"))
        .flat_map(|(k, v)| {
            read_rows(&k, &v)
                .into_iter()
                .map(move |r| (k.clone(), r))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The rejected lines under `dir`, parsed.
pub fn rejected_lines(dir: &Path) -> Vec<serde_json::Value> {
    files(dir)
        .into_iter()
        .filter(|(k, _)| k.starts_with("_rejected/"))
        .flat_map(|(_, v)| {
            gunzip(&v)
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

pub const FORMATS: [Format; 2] = [Format::Parquet, Format::JsonlGz];

//! Helpers: run the pipeline into a temporary directory and read the archive back.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use ddb_archiver::model::Format;
use ddb_archiver::pipeline::Archiver;
use ddb_archiver::report::Summary;
pub use ddb_archiver::settings::Settings;
use ddb_archiver::sink::local::LocalDirSink;

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

/// The default settings with destination `dest` and `format`.
pub fn settings(dest: &Path, format: Format) -> Settings {
    Settings {
        dest: dest.display().to_string(),
        format,
        ..Settings::default()
    }
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

#[path = "../util/files.rs"]
mod files_util;
pub use files_util::files;

pub use ddb_archiver::archive::reader::Row;

/// A row's `approximate_creation_time` as archived JSON lines write it.
pub fn time(r: &Row) -> String {
    ddb_archiver::encode::jsonl::iso_millis(r.time_ms)
}

pub fn gunzip(bytes: &[u8]) -> String {
    let mut s = String::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_string(&mut s)
        .unwrap();
    s
}

/// Reads the rows of one archive file of either format, through the library's reader
/// (Python's pyarrow and DuckDB read the same files independently in the full test
/// command).
pub fn read_rows(name: &str, bytes: &[u8]) -> Vec<Row> {
    use ddb_archiver::archive::reader::{self, Projection};
    let format = Format::of_key(name).unwrap_or_else(|| panic!("not an archive file: {name}"));
    reader::read_rows(format, bytes.to_vec(), name, Projection::ALL).unwrap()
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

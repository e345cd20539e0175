//! The `ddb-archiver archive` command: exit codes, the summary, `--json`, stdin and
//! environment variables.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::support::*;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ddb-archiver"));
    for (k, _) in std::env::vars() {
        if k.starts_with("ARCHIVE_") {
            c.env_remove(k);
        }
    }
    c
}

fn fixture(name: &str) -> String {
    own_fixture(name).display().to_string()
}

#[test]
fn exit_zero_when_everything_is_archived() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["archive", "--dest"])
        .arg(dir.path())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/events/invoices-stream.json"
        ))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("5 records: 5 archived, 0 rejected"),
        "{text}"
    );
    assert!(text.contains("table invoices: 4 records"), "{text}");
    assert!(
        text.contains("invoices/year=2026/month=01/day=01/  2"),
        "{text}"
    );
    assert!(files(dir.path()).keys().all(|k| k.ends_with(".parquet")));
}

#[test]
fn exit_two_with_rejected_records_and_json_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["archive", "--json", "--format", "jsonl.gz", "--dest"])
        .arg(dir.path())
        .arg(fixture("rejected-records.json"))
        .arg(fixture("view-keys-only.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["archived"], 4);
    assert_eq!(v["rejected"], 16);
    assert_eq!(
        v["rejected_records"][1]["event_id"],
        "rej-sequence-not-decimal"
    );
    assert_eq!(v["rejected_records"][1]["sequence_number"], "seq-0001");
    assert!(files(dir.path())
        .keys()
        .any(|k| k.starts_with("_rejected/") && k.ends_with(".json.gz")));
}

#[test]
fn exit_one_on_invalid_json_but_other_files_are_archived() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["archive", "--dest"])
        .arg(dir.path())
        .arg(fixture("malformed-truncated.json"))
        .arg(fixture("view-keys-only.json"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("malformed-truncated.json: invalid JSON at line 83, column 30"),
        "{text}"
    );
    let written = files(dir.path());
    assert_eq!(
        written.len(),
        1,
        "only the good file's records: {written:?}"
    );
}

#[test]
fn stdin_and_environment_settings() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = bin()
        .args(["archive", "-"])
        .env("ARCHIVE_DEST", dir.path())
        .env("ARCHIVE_FORMAT", "jsonl.gz")
        .env("ARCHIVE_TABLE", "from_env")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let doc = br#"{"Records":[{"eventID":"s1","eventName":"INSERT","dynamodb":{"ApproximateCreationDateTime":"1.46480646E9","Keys":{"k":{"S":"v"}},"SequenceNumber":"300000000000000499659"}}]}"#;
    child.stdin.take().unwrap().write_all(doc).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let keys: Vec<String> = files(dir.path()).into_keys().collect();
    assert_eq!(keys.len(), 1);
    assert!(
        keys[0].starts_with(
            "from_env/year=2016/month=06/day=01/300000000000000499659-300000000000000499659-"
        ),
        "{keys:?}"
    );
    assert!(keys[0].ends_with(".json.gz"));
}

#[test]
fn bad_settings_are_clear_errors() {
    let out = bin()
        .args(["archive", "--format", "csv", "x.json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a usage error is fatal, not 'rejected'"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'csv'"));
    let out = bin()
        .args(["archive", "--max-file-records", "0", "x.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--max-file-records"));
}

#[test]
fn errors_name_the_flag_of_the_command_that_was_run() {
    let out = bin()
        .args(["replay", "--source", "gs://bucket/x", "--table", "orders"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("invalid --source") && !err.contains("--dest"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args(["archive", "--max-file-records", "0", "--dest"])
        .arg(dir.path())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/events/invoices-stream.json"
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--max-file-records / ARCHIVE_MAX_FILE_RECORDS"),
        "{err}"
    );
    assert!(files(dir.path()).is_empty());
}

#[test]
fn schema_infer_reads_every_gzip_member() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args([
            "archive",
            "--format",
            "jsonl.gz",
            "--max-file-records",
            "1",
            "--dest",
        ])
        .arg(dir.path())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/events/invoices-stream.json"
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // The day's two files joined into one of two gzip members: only the second record
    // has `expires`, so a reader that stops after the first member misses it.
    let day = dir.path().join("invoices/year=2025/month=12/day=31");
    let mut names: Vec<_> = std::fs::read_dir(&day)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2);
    let joined: Vec<u8> = names
        .iter()
        .flat_map(|p| std::fs::read(p).unwrap())
        .collect();
    let only = tempfile::tempdir().unwrap();
    let file = only.path().join("joined.json.gz");
    std::fs::write(&file, &joined).unwrap();
    let out = bin()
        .args(["schema", "infer", "--table", "invoices"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let proposal: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let attributes: Vec<&str> = proposal["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["attribute"].as_str().unwrap())
        .collect();
    assert!(attributes.contains(&"expires"), "{attributes:?}");
    assert!(attributes.contains(&"tags"), "{attributes:?}");
}

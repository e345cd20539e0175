//! Output unchanged across releases: the bundled examples (and the public fixtures, when
//! present) archived in both formats give the same object names and decompressed
//! contents as the release recorded in tests/golden/outputs.jsonl (made with
//! scripts/golden-outputs.py).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use ddb_archiver::model::Format;
use sha2::{Digest, Sha256};

use crate::support::*;

const TABLE: &str = "golden_tbl";

/// The inputs by the name the golden file gives them.
fn input_path(name: &str) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    match name.strip_prefix("public:") {
        // The public fixtures are an extra check, used when present.
        Some(file) => {
            Some(root.join("../shared/fixtures/public").join(file)).filter(|p| p.exists())
        }
        None => Some(root.join(name)),
    }
}

fn content_digest(key: &str, body: &[u8]) -> String {
    let mut content = Vec::new();
    if key.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(body)
            .read_to_end(&mut content)
            .unwrap();
    } else {
        content = body.to_vec();
    }
    Sha256::digest(&content)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `_rejected/year=…/month=…/day=…/` holds the processing date: the golden file has a
/// placeholder there.
fn normalize(key: &str) -> String {
    match key.strip_prefix("_rejected/") {
        Some(rest) => format!(
            "_rejected/<processing-date>/{}",
            rest.splitn(4, '/').nth(3).unwrap_or_default()
        ),
        None => key.to_string(),
    }
}

#[test]
fn outputs_match_the_recorded_release() {
    let golden = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/outputs.jsonl"),
    )
    .unwrap();
    let mut want: BTreeSet<(String, String, String, String)> = BTreeSet::new();
    let mut inputs: BTreeSet<(String, String)> = BTreeSet::new();
    let mut skipped = BTreeSet::new();
    for line in golden.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let field = |k: &str| v[k].as_str().unwrap().to_string();
        if input_path(&field("input")).is_none() {
            skipped.insert(field("input"));
            continue;
        }
        inputs.insert((field("input"), field("format")));
        want.insert((
            field("input"),
            field("format"),
            field("key"),
            field("sha256"),
        ));
    }
    if !skipped.is_empty() {
        eprintln!(
            "golden outputs: {} public fixtures skipped (../shared/fixtures/public is not present)",
            skipped.len()
        );
    }
    assert!(inputs.iter().any(|(i, _)| i.starts_with("examples/")));
    let mut got = BTreeSet::new();
    for (input, format_name) in &inputs {
        let format = Format::from_name(format_name).unwrap();
        let path = input_path(input).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        // Named bare, as scripts/golden-outputs.py names it.
        let source = path.file_name().unwrap().to_str().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let s = Settings {
            table: Some(TABLE.to_string()),
            ..settings(dir.path(), format)
        };
        archive(&s, &[(source, &bytes)]);
        for (key, body) in files(dir.path()) {
            got.insert((
                input.clone(),
                format_name.clone(),
                normalize(&key),
                content_digest(&key, &body),
            ));
        }
    }
    let missing: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "outputs differ from the recorded release:\nmissing {missing:#?}\nnew {extra:#?}"
    );
}

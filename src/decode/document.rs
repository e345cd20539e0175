//! Whole documents: the records of a `{"Records": [...]}` document (a Lambda DynamoDB
//! Streams or Kinesis event, a DynamoDB Streams `GetRecords` response, a tumbling-window
//! event, whose other fields are ignored) or a bare change record, by serde_json; and
//! [`DocumentError`], why a whole input could not be read.
//!
//! This is [`decode_input`](super::decode_input)'s general path: it reads any input the
//! fast path (`scan`) gives up on, and names what is wrong.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{decode_record_text, json_error_message, DecodeOptions, Decoded};

/// A whole input document could not be read; nothing from it is archived.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The bytes are not valid UTF-8.
    #[error("{source_name}: not valid UTF-8 at byte {offset}")]
    Utf8 {
        /// The input's name (file path or `-`).
        source_name: String,
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// The text is not valid JSON.
    #[error("{source_name}: invalid JSON at line {line}, column {column}: {message}")]
    Json {
        /// The input's name (file path or `-`).
        source_name: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the JSON parser reported.
        message: String,
    },
    /// Valid JSON that is not an event document.
    #[error("{source_name}: document {index} is not a stream event: {reason}")]
    NotAnEvent {
        /// The input's name (file path or `-`).
        source_name: String,
        /// 0-based index of the JSON document in the input.
        index: usize,
        /// What was expected.
        reason: String,
    },
}

/// [`decode_input`](super::decode_input)'s general path, serde_json only: reads any
/// input the fast path gives up on, and names what is wrong.
pub(super) fn decode_text_general(
    text: &str,
    source_name: &str,
    opts: &DecodeOptions,
    buf: &Arc<String>,
) -> Result<Vec<Decoded>, DocumentError> {
    let mut docs = Vec::new();
    for doc in serde_json::Deserializer::from_str(text).into_iter::<&RawValue>() {
        let doc = doc.map_err(|e| DocumentError::Json {
            source_name: source_name.to_string(),
            line: e.line(),
            column: e.column(),
            message: json_error_message(&e),
        })?;
        docs.push(doc);
    }
    if docs.is_empty() {
        return Err(DocumentError::NotAnEvent {
            source_name: source_name.to_string(),
            index: 0,
            reason: "the input is empty".to_string(),
        });
    }
    let mut out = Vec::new();
    for (index, doc) in docs.into_iter().enumerate() {
        let records = document_records(doc).map_err(|reason| DocumentError::NotAnEvent {
            source_name: source_name.to_string(),
            index,
            reason,
        })?;
        out.extend(
            records
                .into_iter()
                .enumerate()
                .map(|(i, raw)| decode_record_text(raw.get(), i, opts, buf)),
        );
    }
    Ok(out)
}

/// The fields of a document that say where its records are.
#[derive(Deserialize)]
struct DocumentShape<'a> {
    #[serde(rename = "Records", borrow, default)]
    records: Option<Vec<&'a RawValue>>,
    #[serde(borrow, default)]
    dynamodb: Option<&'a RawValue>,
    #[serde(borrow, default)]
    kinesis: Option<&'a RawValue>,
}

/// The records of one document: its `Records` array, or the document itself when it is
/// a single bare change record.
fn document_records(doc: &RawValue) -> Result<Vec<&RawValue>, String> {
    let shape: DocumentShape<'_> = serde_json::from_str(doc.get()).map_err(|e| {
        format!(
            "expected an object with a \"Records\" array ({})",
            json_error_message(&e)
        )
    })?;
    match shape.records {
        Some(records) => Ok(records),
        None if shape.dynamodb.is_some() || shape.kinesis.is_some() => Ok(vec![doc]),
        None => Err("expected an object with a \"Records\" array".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;
    use crate::decode::{decode_input, minify_json, scan};

    /// Both paths of [`decode_input`], as text to compare.
    fn both_paths(text: &str) -> (String, String) {
        let opts = DecodeOptions::default();
        let fast = format!("{:?}", decode_input(text.as_bytes(), "t", &opts));
        let unmarked = text.strip_prefix('\u{feff}').unwrap_or(text);
        let buf = Arc::new(unmarked.to_string());
        let general = format!("{:?}", decode_text_general(&buf, "t", &opts, &buf));
        (fast, general)
    }

    /// A small deterministic generator (xorshift) for the mutations below.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n.max(1) as u64) as usize
        }
    }

    /// `text` with one byte inserted, deleted or replaced, in ways that stress JSON
    /// tokens; `None` when the result is not UTF-8.
    fn mutate(text: &str, rng: &mut Rng) -> Option<String> {
        const BYTES: &[u8] = b"\"\\ \n{}[],:0-eEnu.x\x01/";
        let mut b = text.as_bytes().to_vec();
        if b.is_empty() {
            return None;
        }
        let at = rng.below(b.len());
        let byte = BYTES[rng.below(BYTES.len())];
        match rng.below(3) {
            0 => b.insert(at, byte),
            1 => {
                b.remove(at);
            }
            _ => b[at] = byte,
        }
        String::from_utf8(b).ok()
    }

    /// Every Kinesis record's data decoded, mutated and encoded again; `None` when the
    /// text holds no Kinesis record.
    fn mutate_kinesis_payloads(text: &str, rng: &mut Rng) -> Option<String> {
        use base64::engine::general_purpose::STANDARD;
        let mut doc: serde_json::Value = serde_json::from_str(text).ok()?;
        let mut any = false;
        for r in doc.get_mut("Records")?.as_array_mut()? {
            let Some(data) = r.pointer_mut("/kinesis/data") else {
                continue;
            };
            let payload = String::from_utf8(STANDARD.decode(data.as_str()?).ok()?).ok()?;
            let mutated = mutate(&payload, rng).unwrap_or(payload);
            *data = serde_json::Value::String(STANDARD.encode(mutated));
            any = true;
        }
        any.then(|| doc.to_string())
    }

    /// `minify_json` of a text that may not be valid JSON (then returned as it is).
    fn minify_json_lossy(text: &str) -> String {
        match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Ok(_) => minify_json(text),
            Err(_) => text.to_string(),
        }
    }

    /// The event files in `dir` (`.json` and `.jsonl`) that are UTF-8, by path. Files
    /// that are not UTF-8 stop before either path is taken, so they have nothing to
    /// compare.
    fn event_texts(dir: &std::path::Path) -> std::io::Result<Vec<(std::path::PathBuf, String)>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path
                .extension()
                .is_some_and(|e| e == "json" || e == "jsonl")
            {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    out.push((path, text));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Compares both paths on `text`, on its minified form and on `rounds` mutations of
    /// it (and of its Kinesis payloads); returns how many inputs were compared and how
    /// many of them the fast path read to the end (the rest fell back to the general
    /// path).
    fn compare_mutations(
        path: &std::path::Path,
        text: &str,
        rounds: usize,
        rng: &mut Rng,
    ) -> (usize, usize) {
        let mut cases = vec![text.to_string(), minify_json_lossy(text)];
        for round in 0..rounds {
            // One to three mutations at once.
            let mut mutated = mutate(text, rng);
            for _ in 0..round % 3 {
                mutated = mutated.and_then(|m| mutate(&m, rng));
            }
            cases.extend(mutated);
            cases.extend(mutate_kinesis_payloads(text, rng));
        }
        let mut fast = 0;
        for case in &cases {
            let (fast_out, general_out) = both_paths(case);
            assert_eq!(fast_out, general_out, "{}: {case}", path.display());
            let unmarked = case.strip_prefix('\u{feff}').unwrap_or(case);
            fast += usize::from(scan::documents(unmarked, |_, _| ()).is_some());
        }
        (cases.len(), fast)
    }

    /// Says on the terminal (past the test harness's capture of `eprintln!`) that the
    /// public sample events were not there.
    fn note_public_fixtures_skipped(dir: &str) {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "public fixtures skipped: {dir} is not there (the project's own fixtures ran)"
        );
    }

    /// The fast path and the general path agree on every event fixture and on thousands
    /// of mutations of them. The project's own fixtures (tests/fixtures/events and the
    /// bundled example) reach the threshold alone; the public sample events beside the
    /// repository add to it when present.
    #[test]
    fn fast_path_matches_the_general_path() {
        /// Mutation rounds per fixture file.
        const ROUNDS: usize = 500;
        /// Inputs the project's own fixtures must give, fixtures and mutations.
        const OWN_INPUTS: usize = 8_000;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let public = root.join("../shared/fixtures/public");
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let (mut own, mut own_fast) = (0, 0);
        for dir in ["tests/fixtures/events", "examples/events"] {
            let files = event_texts(&root.join(dir)).unwrap();
            assert!(!files.is_empty(), "no fixtures in {dir}");
            for (path, text) in files {
                let (inputs, fast) = compare_mutations(&path, &text, ROUNDS, &mut rng);
                own += inputs;
                own_fast += fast;
            }
        }
        let mut public_inputs = 0;
        match event_texts(&public) {
            Ok(files) => {
                for (path, text) in files {
                    public_inputs += compare_mutations(&path, &text, ROUNDS, &mut rng).0;
                }
            }
            Err(_) => note_public_fixtures_skipped(&public.display().to_string()),
        }
        eprintln!("inputs compared: {own} from the project's fixtures ({own_fast} read by the fast path), {public_inputs} from the public ones");
        assert!(own >= OWN_INPUTS, "only {own} inputs compared");
        // Both paths are exercised in earnest, not only the general one.
        assert!(
            own_fast >= own / 4 && own - own_fast >= own / 4,
            "{own_fast} of {own} inputs read by the fast path"
        );
    }

    /// The unchanged fixtures reach every branch of the fast path's split: whole
    /// documents read by it and left to the general path, records read by it (compact
    /// and spaced) and left to the general path, and Kinesis payloads both ways.
    #[test]
    fn own_fixtures_reach_both_paths() {
        use base64::engine::general_purpose::STANDARD;
        const BRANCHES: [&str; 8] = [
            "documents read by the fast path",
            "documents left to the general path",
            "records read by the fast path",
            "records left to the general path",
            "compact records",
            "spaced records",
            "Kinesis payloads read by the fast path",
            "Kinesis payloads left to the general path",
        ];
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events");
        let mut tally = std::collections::BTreeMap::<&str, usize>::new();
        let mut count = |what| *tally.entry(what).or_default() += 1;
        for (_, text) in event_texts(&dir).unwrap() {
            let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
            let records = scan::documents(text, |_, element| match element {
                scan::Element::Read(_, scanned) => {
                    let data = scanned.kinesis.and_then(|k| k.data).map(str::to_string);
                    Some((scanned.compact, data))
                }
                scan::Element::Other(_) => None,
            });
            let Some(records) = records else {
                count(BRANCHES[1]);
                continue;
            };
            count(BRANCHES[0]);
            for record in records {
                let Some((compact, data)) = record else {
                    count(BRANCHES[3]);
                    continue;
                };
                count(BRANCHES[2]);
                count(if compact { BRANCHES[4] } else { BRANCHES[5] });
                if let Some(payload) = data.and_then(|d| STANDARD.decode(d).ok()) {
                    let fast = std::str::from_utf8(&payload)
                        .ok()
                        .and_then(scan::whole_record);
                    count(if fast.is_some() {
                        BRANCHES[6]
                    } else {
                        BRANCHES[7]
                    });
                }
            }
        }
        for what in BRANCHES {
            assert!(
                tally.contains_key(what),
                "no {what} among the fixtures: {tally:?}"
            );
        }
    }

    #[test]
    fn fast_path_cases() {
        let cases = [
            r#"{"Records":[{"eventID":"1","eventName":"INSERT","eventSourceARN":"arn:aws:dynamodb:r:1:table/t/stream/s","dynamodb":{"ApproximateCreationDateTime":1,"Keys":{"k":{"S":"a"}},"SequenceNumber":"1"}}]}"#,
            r#"{"Records":[{"eventID":null,"eventName":"INSERT","tableName":"t","dynamodb":{"ApproximateCreationDateTime":"1","Keys":{"k":{"N":"1E+125"}},"NewImage":null,"SequenceNumber":"1","SizeBytes":null}}]}"#,
            r#"{"Records":[{"eventID":"1","eventID":"2","eventName":"INSERT","tableName":"t","dynamodb":{"ApproximateCreationDateTime":1,"Keys":{},"SequenceNumber":"1"}}]}"#,
            r#"{"Records":[{"eventID":"1","eventName":"INSERT","tableName":"t","userIdentity":{"principalId":"dynamodb.amazonaws.com","type":"Service"},"dynamodb":{"ApproximateCreationDateTime":1,"Keys":{"k":{"M":{"x":{"L":[{"NULL":true}]}}}},"SequenceNumber":"1"}}]}"#,
            r#"{"Records":[{"eventID":"1","eventName":"REMOVE","tableName":"t","userIdentity":null,"dynamodb":{"ApproximateCreationDateTime":1,"Keys":{"k":{"S":"\u00e9\ud83d\ude00"}},"SequenceNumber":"1"}}]}"#,
            r#"{"Records":[{"eventID":"1","eventName":"MODIFY","tableName":"t","dynamodb":{"ApproximateCreationDateTime":1,"Keys":{"k":{"B":"AA=="}},"OldImage":{"a":{"BS":[]},"b":{"SS":["x"]}},"SequenceNumber":"1"}}], "window": {"start": "x"}}"#,
            r#"{"Records":[{"eventID":"1","eventName":"INSERT","tableName":"t","dynamodb":{"ApproximateCreationDateTime":1,"Keys":{"k":{"S":"a"}},"SequenceNumber":"1"},"kinesis":null}]}"#,
            "{\"Records\":[{\"eventID\":\"1\",\"eventName\":\"INSERT\",\"tableName\":\"t\",\"dynamodb\":{\"ApproximateCreationDateTime\":1,\"Keys\":{\"k\":{\"S\":\"a\"}},\"SequenceNumber\":\"1\"}}]}\n{\"Records\":[]}\n",
        ];
        for case in cases {
            let (fast, general) = both_paths(case);
            assert_eq!(fast, general, "{case}");
        }
    }

    #[test]
    fn invalid_json_names_position() {
        let err = decode_input(b"{\"Records\": [", "f.json", &DecodeOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("f.json: invalid JSON at line 1"), "{err}");
    }

    #[test]
    fn not_an_event() {
        let err = decode_input(b"{\"x\":1}", "f.json", &DecodeOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("Records"), "{err}");
    }
}

//! Import: the state at T as input for DynamoDB's import from S3, for tables too big to
//! write item by item. Files hold gzip DynamoDB JSON lines, one `{"Item":{...}}` per
//! line (the `DYNAMODB_JSON` input format), each file at most
//! [`DEFAULT_FILE_BYTES`] of uncompressed text; they are named
//! `part-NNNNN-<digest>.json.gz` (digest of the lines) under a sub-prefix of the run's
//! own, `run-<token>/` ([`run_prefix`]), and written through the project's
//! [`ObjectSink`]. The token follows from what the files hold, so a rerun of the same
//! restore writes the same names, and files of other runs under the same
//! `--import-format` location are never part of this run's import. [`import_request`]
//! builds the `ImportTable` request that creates a new table from them.

use std::io::Write;

use aws_sdk_dynamodb::operation::import_table::builders::ImportTableFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, InputCompressionType, InputFormat, KeySchemaElement, KeyType,
    S3BucketSource, TableCreationParameters,
};
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use super::item::KeyShape;
use crate::encode::EncodedFile;
use crate::model::hex::hex_digest;
use crate::sink::{ObjectSink, PutOutcome, SinkError};

/// Most uncompressed bytes of one import file.
pub const DEFAULT_FILE_BYTES: usize = 64 * 1024 * 1024;

/// The sub-prefix of one run's import files, relative to the `--import-format`
/// location: `run-<token>/`, the token 16 hex digits of SHA-256 over the archived
/// table, T in milliseconds, the `--key` (empty for none), the most bytes of a file and
/// the digest of the state's items. The same restore of the same archive gives the same
/// sub-prefix; another T, key or state gives another.
pub fn run_prefix(
    table: &str,
    as_of_ms: i64,
    key: Option<&str>,
    file_bytes: usize,
    state_digest: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [
        table,
        &as_of_ms.to_string(),
        key.unwrap_or(""),
        &file_bytes.to_string(),
        state_digest,
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    format!("run-{}/", hex_digest(h.finalize().as_slice()))
}

/// Builds import files from items and stores each one once full.
pub struct ImportWriter<'s> {
    sink: &'s dyn ObjectSink,
    prefix: String,
    max_bytes: usize,
    lines: Vec<u8>,
    items_in_file: usize,
    /// Keys of the files written so far, relative to the sink (the run's prefix
    /// included).
    pub files: Vec<String>,
    /// Files that were already present (a rerun).
    pub already_present: usize,
}

/// One line of an import file: `{"Item":<image>}` and a newline. `image` is the
/// item's DynamoDB JSON text.
pub fn import_line(image: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"Item\":");
    out.extend_from_slice(image.as_bytes());
    out.extend_from_slice(b"}\n");
}

impl<'s> ImportWriter<'s> {
    /// A writer storing files of at most `max_bytes` uncompressed bytes (at least one
    /// line each) into `sink`, under `prefix` (empty, or ending in `/`: see
    /// [`run_prefix`]).
    pub fn new(sink: &'s dyn ObjectSink, prefix: &str, max_bytes: usize) -> Self {
        ImportWriter {
            sink,
            prefix: prefix.to_string(),
            max_bytes,
            lines: Vec::new(),
            items_in_file: 0,
            files: Vec::new(),
            already_present: 0,
        }
    }

    /// Adds an item (its DynamoDB JSON text, without newlines).
    pub async fn push(&mut self, image: &str) -> Result<(), SinkError> {
        let before = self.lines.len();
        import_line(image, &mut self.lines);
        if self.items_in_file > 0 && self.lines.len() > self.max_bytes {
            let next = self.lines.split_off(before);
            self.flush().await?;
            self.lines = next;
        }
        self.items_in_file += 1;
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), SinkError> {
        if self.items_in_file == 0 {
            return Ok(());
        }
        let lines = std::mem::take(&mut self.lines);
        let digest = hex_digest(Sha256::digest(&lines).as_slice());
        let key = format!(
            "{}part-{:05}-{digest}.json.gz",
            self.prefix,
            self.files.len()
        );
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
        let body = gz
            .write_all(&lines)
            .and_then(|()| gz.try_finish())
            .map(|()| std::mem::take(gz.get_mut()))
            .map_err(|e| SinkError {
                location: self.sink.location(&key),
                message: format!("compressing: {e}"),
            })?;
        let file = EncodedFile {
            key: key.clone(),
            body: body.into(),
            content_type: "application/json",
            content_encoding: None,
            records: self.items_in_file,
        };
        if self.sink.put(&file).await? == PutOutcome::AlreadyPresent {
            self.already_present += 1;
        }
        self.files.push(key);
        self.items_in_file = 0;
        Ok(())
    }

    /// Stores the last file.
    pub async fn finish(&mut self) -> Result<(), SinkError> {
        self.flush().await
    }
}

/// Where the import files are and the table to create from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportTarget {
    /// Bucket holding the files.
    pub bucket: String,
    /// Key prefix of the files (empty or ending in `/`).
    pub prefix: String,
    /// Name of the table to create.
    pub table: String,
    /// The archived key attributes.
    pub keys: KeyShape,
    /// The partition key's name, when the key has two attributes.
    pub partition_key: Option<String>,
}

/// The key schema and attribute definitions of the table to create: the partition key
/// is `partition_key` or the key's single attribute; a second attribute is the sort
/// key.
pub fn key_schema(
    keys: &KeyShape,
    partition_key: Option<&str>,
) -> Result<(Vec<KeySchemaElement>, Vec<AttributeDefinition>), String> {
    let attrs = &keys.0;
    let hash = match (attrs.len(), partition_key) {
        (1, None) => attrs[0].0.clone(),
        (1 | 2, Some(p)) if attrs.iter().any(|(n, _)| n == p) => p.to_string(),
        (1 | 2, Some(p)) => {
            return Err(format!(
                "{p} is not a key attribute of the archive ({})",
                keys.describe()
            ))
        }
        (2, None) => {
            return Err(format!(
                "the archived key has two attributes ({}): name the partition key",
                keys.describe()
            ))
        }
        _ => return Err(format!("unexpected key attributes: {}", keys.describe())),
    };
    let mut schema = Vec::new();
    let mut defs = Vec::new();
    let ordered = attrs
        .iter()
        .filter(|(n, _)| *n == hash)
        .chain(attrs.iter().filter(|(n, _)| *n != hash));
    for (i, (name, t)) in ordered.enumerate() {
        let key_type = if i == 0 {
            KeyType::Hash
        } else {
            KeyType::Range
        };
        schema.push(
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .map_err(|e| e.to_string())?,
        );
        defs.push(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(t.clone())
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    Ok((schema, defs))
}

/// The `ImportTable` request: `DYNAMODB_JSON`, GZIP, the files' bucket and prefix, and a
/// new on-demand table with the archived key. `client_token` makes a repeated request
/// within DynamoDB's idempotency window start no second import.
pub fn import_request(
    client: &aws_sdk_dynamodb::Client,
    target: &ImportTarget,
    client_token: &str,
) -> Result<ImportTableFluentBuilder, String> {
    let (schema, defs) = key_schema(&target.keys, target.partition_key.as_deref())?;
    let source = S3BucketSource::builder()
        .s3_bucket(&target.bucket)
        .s3_key_prefix(&target.prefix)
        .build()
        .map_err(|e| e.to_string())?;
    let params = TableCreationParameters::builder()
        .table_name(&target.table)
        .set_key_schema(Some(schema))
        .set_attribute_definitions(Some(defs))
        .billing_mode(BillingMode::PayPerRequest)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(client
        .import_table()
        .client_token(client_token)
        .s3_bucket_source(source)
        .input_format(InputFormat::DynamodbJson)
        .input_compression_type(InputCompressionType::Gzip)
        .table_creation_parameters(params))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::ScalarAttributeType;
    use std::io::Read;

    #[tokio::test]
    async fn files_hold_item_lines_and_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let sink = crate::sink::local::LocalDirSink::new(dir.path());
        let mut w = ImportWriter::new(&sink, "", 100);
        let images: Vec<String> = (0..10)
            .map(|i| format!(r#"{{"pk":{{"S":"k{i}"}},"n":{{"N":"12345678901234567890123456789012345678"}}}}"#))
            .collect();
        for image in &images {
            w.push(image).await.unwrap();
        }
        w.finish().await.unwrap();
        assert_eq!(w.files.len(), 10, "{:?}", w.files);
        let mut lines = Vec::new();
        for (i, key) in w.files.iter().enumerate() {
            assert!(key.starts_with(&format!("part-{i:05}-")) && key.ends_with(".json.gz"));
            let gz = std::fs::read(dir.path().join(key)).unwrap();
            let mut text = String::new();
            flate2::read::MultiGzDecoder::new(&gz[..])
                .read_to_string(&mut text)
                .unwrap();
            assert!(text.ends_with('\n'));
            lines.extend(text.lines().map(str::to_string));
        }
        let want: Vec<String> = images.iter().map(|i| format!("{{\"Item\":{i}}}")).collect();
        assert_eq!(lines, want);
        for line in &lines {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let obj = v.as_object().unwrap();
            assert_eq!(obj.keys().collect::<Vec<_>>(), vec!["Item"]);
        }

        let mut big = ImportWriter::new(&sink, "run-x/", 1 << 20);
        for image in &images {
            big.push(image).await.unwrap();
        }
        big.finish().await.unwrap();
        assert_eq!(big.files.len(), 1);
        assert!(
            big.files[0].starts_with("run-x/part-00000-"),
            "{:?}",
            big.files
        );
        // The same lines again: the same name, already present.
        let mut again = ImportWriter::new(&sink, "run-x/", 1 << 20);
        for image in &images {
            again.push(image).await.unwrap();
        }
        again.finish().await.unwrap();
        assert_eq!((again.files.clone(), again.already_present), (big.files, 1));
    }

    #[test]
    fn run_prefixes_follow_from_the_inputs() {
        let p = run_prefix("t", 5, None, 10, "abc");
        assert_eq!(p, run_prefix("t", 5, None, 10, "abc"));
        assert!(
            p.starts_with("run-") && p.ends_with('/') && p.len() == 21,
            "{p}"
        );
        for other in [
            run_prefix("u", 5, None, 10, "abc"),
            run_prefix("t", 6, None, 10, "abc"),
            run_prefix("t", 5, Some("{}"), 10, "abc"),
            run_prefix("t", 5, None, 11, "abc"),
            run_prefix("t", 5, None, 10, "abd"),
        ] {
            assert_ne!(p, other);
        }
    }

    fn shape(attrs: &[(&str, ScalarAttributeType)]) -> KeyShape {
        KeyShape(
            attrs
                .iter()
                .map(|(n, t)| (n.to_string(), t.clone()))
                .collect(),
        )
    }

    #[test]
    fn key_schemas() {
        let one = shape(&[("pk", ScalarAttributeType::S)]);
        let (schema, defs) = key_schema(&one, None).unwrap();
        assert_eq!(schema.len(), 1);
        assert_eq!(schema[0].key_type, KeyType::Hash);
        assert_eq!(defs[0].attribute_type, ScalarAttributeType::S);
        let two = shape(&[("a", ScalarAttributeType::N), ("b", ScalarAttributeType::B)]);
        assert!(key_schema(&two, None)
            .unwrap_err()
            .contains("name the partition key"));
        assert!(key_schema(&two, Some("c")).is_err());
        let (schema, defs) = key_schema(&two, Some("b")).unwrap();
        let got: Vec<_> = schema
            .iter()
            .map(|k| (k.attribute_name.as_str(), k.key_type.clone()))
            .collect();
        assert_eq!(got, vec![("b", KeyType::Hash), ("a", KeyType::Range)]);
        assert_eq!(defs[0].attribute_type, ScalarAttributeType::B);
    }

    #[test]
    fn import_table_request_shape() {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(config);
        let target = ImportTarget {
            bucket: "b".into(),
            prefix: "state/".into(),
            table: "orders-restored".into(),
            keys: shape(&[
                ("pk", ScalarAttributeType::S),
                ("sk", ScalarAttributeType::N),
            ]),
            partition_key: Some("pk".into()),
        };
        let req = import_request(&client, &target, "tok").unwrap();
        let input = req.as_input();
        assert_eq!(input.get_client_token().as_deref(), Some("tok"));
        assert_eq!(input.get_input_format(), &Some(InputFormat::DynamodbJson));
        assert_eq!(
            input.get_input_compression_type(),
            &Some(InputCompressionType::Gzip)
        );
        let src = input.get_s3_bucket_source().as_ref().unwrap();
        assert_eq!(
            (src.s3_bucket(), src.s3_key_prefix()),
            ("b", Some("state/"))
        );
        let params = input.get_table_creation_parameters().as_ref().unwrap();
        assert_eq!(params.table_name(), "orders-restored");
        assert_eq!(params.billing_mode(), Some(&BillingMode::PayPerRequest));
        assert_eq!(params.key_schema().len(), 2);
        assert_eq!(params.key_schema()[0].attribute_name(), "pk");
        assert_eq!(
            params.attribute_definitions()[1].attribute_type(),
            &ScalarAttributeType::N
        );
    }
}

//! Export: a DynamoDB export in its documented output layout ("DynamoDB table export
//! output format"), read from a local directory or an S3 prefix, and checked before it
//! is trusted.
//!
//! - `manifest-summary.json`: `exportArn`, `tableArn`, `exportTime`, `itemCount`,
//!   `outputFormat`, `exportType` (absent in full exports of older versions),
//!   `exportFromTime` / `exportToTime` and `outputView` for incremental exports;
//! - `manifest-files.json`: JSON lines, one per data file: `itemCount`, `md5Checksum`
//!   (base64 of the MD5 of the file's bytes), `etag`, `dataFileS3Key`;
//! - `data/*.json.gz`: gzip JSON lines (an empty partition gives an empty file).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use md5::{Digest as _, Md5};
use serde::Deserialize;

use super::BaselineError;
use crate::model::coverage::parse_time_ms;
use crate::model::key::validate_table_name;
use crate::model::Location;

/// The largest `manifest-summary.json` read.
pub const SUMMARY_MAX_BYTES: u64 = 1024 * 1024;

/// The largest `manifest-files.json` read (about 300,000 data files).
pub const FILES_MANIFEST_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// A full or an incremental export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportType {
    /// `FULL_EXPORT`: every item as of the export time.
    Full,
    /// `INCREMENTAL_EXPORT`: the items written within a window, with their write times.
    Incremental,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SummaryShape {
    export_arn: Option<String>,
    table_arn: Option<String>,
    export_time: Option<String>,
    item_count: Option<u64>,
    output_format: Option<String>,
    export_type: Option<String>,
    export_from_time: Option<String>,
    export_to_time: Option<String>,
    output_view: Option<String>,
    export_view_type: Option<String>,
}

/// `manifest-summary.json`, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// `exportArn`.
    pub export_arn: String,
    /// The export ID: the last segment of the export ARN.
    pub export_id: String,
    /// `tableArn`.
    pub table_arn: String,
    /// The table's name, from the table ARN.
    pub table: String,
    /// `exportTime`, milliseconds since the Unix epoch.
    pub export_time_ms: i64,
    /// `itemCount`: items (lines) in all data files.
    pub item_count: u64,
    /// Full or incremental.
    pub export_type: ExportType,
    /// Incremental: `exportFromTime` and `exportToTime` in milliseconds.
    pub window: Option<(i64, i64)>,
    /// Incremental: `outputView` (`NEW_AND_OLD_IMAGES` or `NEW_IMAGE`).
    pub view_type: Option<String>,
}

impl ExportSummary {
    /// Parses and checks `manifest-summary.json`: refuses an ION export, an unknown
    /// export type or view, a table ARN that names no valid table, an export ARN of
    /// another table, and missing members.
    pub fn parse(bytes: &[u8]) -> Result<Self, BaselineError> {
        let bad = |reason: String| BaselineError::Manifest {
            file: "manifest-summary.json".to_string(),
            reason,
        };
        let s: SummaryShape =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not valid JSON: {e}")))?;
        let format = s.output_format.as_deref().unwrap_or("DYNAMODB_JSON");
        if format == "ION" {
            return Err(BaselineError::Unsupported(
                "the export is in Amazon Ion format (outputFormat ION); only DYNAMODB_JSON exports can be read: export the table again with ExportFormat DYNAMODB_JSON".to_string(),
            ));
        }
        if format != "DYNAMODB_JSON" {
            return Err(bad(format!("unknown outputFormat {format:?}")));
        }
        let export_arn = s.export_arn.ok_or_else(|| bad("no exportArn".into()))?;
        let table_arn = s.table_arn.ok_or_else(|| bad("no tableArn".into()))?;
        let table = table_arn
            .rsplit_once(":table/")
            .map(|(_, t)| t.to_string())
            .filter(|t| validate_table_name(t).is_ok())
            .ok_or_else(|| bad(format!("tableArn {table_arn:?} names no valid table")))?;
        let export_id = export_arn
            .strip_prefix(&format!("{table_arn}/export/"))
            .filter(|id| {
                !id.is_empty()
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
                    && *id != "."
                    && *id != ".."
            })
            .map(str::to_string)
            .ok_or_else(|| {
                bad(format!(
                    "exportArn {export_arn:?} is not an export of table {table_arn:?}"
                ))
            })?;
        let time = |name: &str, v: Option<String>| -> Result<i64, BaselineError> {
            let v = v.ok_or_else(|| bad(format!("no {name}")))?;
            parse_time_ms(&v).ok_or_else(|| bad(format!("{name} {v:?} is not an RFC 3339 time")))
        };
        let export_time_ms = time("exportTime", s.export_time.clone())?;
        let item_count = s.item_count.ok_or_else(|| bad("no itemCount".into()))?;
        let (export_type, window, view_type) =
            match s.export_type.as_deref().unwrap_or("FULL_EXPORT") {
                "FULL_EXPORT" => (ExportType::Full, None, None),
                "INCREMENTAL_EXPORT" => {
                    let from = time("exportFromTime", s.export_from_time)?;
                    let to = time("exportToTime", s.export_to_time)?;
                    if from > to {
                        return Err(bad("exportFromTime is after exportToTime".into()));
                    }
                    let view = s
                        .output_view
                        .or(s.export_view_type)
                        .unwrap_or_else(|| "NEW_AND_OLD_IMAGES".to_string());
                    let view = match view.as_str() {
                        "NEW_AND_OLD_IMAGES" => view,
                        // The API's enum spells it NEW_IMAGE, its documentation NEW_IMAGES.
                        "NEW_IMAGE" | "NEW_IMAGES" => "NEW_IMAGE".to_string(),
                        other => return Err(bad(format!("unknown outputView {other:?}"))),
                    };
                    (ExportType::Incremental, Some((from, to)), Some(view))
                }
                other => return Err(bad(format!("unknown exportType {other:?}"))),
            };
        Ok(ExportSummary {
            export_arn,
            export_id,
            table_arn,
            table,
            export_time_ms,
            item_count,
            export_type,
            window,
            view_type,
        })
    }
}

/// One line of `manifest-files.json`: a data file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestFileEntry {
    /// Items (lines) in the file.
    pub item_count: u64,
    /// Base64 of the MD5 of the file's bytes.
    pub md5_checksum: String,
    /// The S3 ETag of the file (not checked).
    #[serde(default)]
    pub etag: Option<String>,
    /// The file's full S3 key (`prefix/AWSDynamoDB/<ExportId>/data/<name>.json.gz`).
    pub data_file_s3_key: String,
}

/// Parses `manifest-files.json` (JSON lines; blank lines are skipped).
pub fn parse_files_manifest(bytes: &[u8]) -> Result<Vec<ManifestFileEntry>, BaselineError> {
    let text = std::str::from_utf8(bytes).map_err(|e| BaselineError::Manifest {
        file: "manifest-files.json".to_string(),
        reason: format!("not UTF-8: {e}"),
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let entry: ManifestFileEntry =
            serde_json::from_str(line).map_err(|e| BaselineError::Manifest {
                file: "manifest-files.json".to_string(),
                reason: format!("line {}: {e}", i + 1),
            })?;
        out.push(entry);
    }
    Ok(out)
}

/// The data file a manifest entry names, relative to the export's folder
/// (`data/<name>`): its key must end in `AWSDynamoDB/<ExportId>/data/<name>` of this
/// export, `<name>` one plain path segment, and whatever comes before a plain relative
/// prefix. Anything else (another export, `..`, an absolute path) is refused, naming
/// the key.
pub fn resolve_data_file(
    summary: &ExportSummary,
    entry: &ManifestFileEntry,
) -> Result<String, BaselineError> {
    let key = entry.data_file_s3_key.as_str();
    let refuse = |why: &str| BaselineError::OutsideExport {
        key: key.to_string(),
        reason: why.to_string(),
    };
    let marker = format!("AWSDynamoDB/{}/data/", summary.export_id);
    let Some(at) = key.rfind(&marker) else {
        return Err(refuse(&format!(
            "it is not under {marker}, the data folder of export {}",
            summary.export_id
        )));
    };
    let (before, name) = (&key[..at], &key[at + marker.len()..]);
    if !before.is_empty() && !before.ends_with('/') {
        return Err(refuse("the export's folder is not a whole path segment"));
    }
    let plain_name = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !plain_name {
        return Err(refuse("its file name is not one plain path segment"));
    }
    if before.starts_with('/')
        || before
            .split('/')
            .any(|p| p == ".." || p == "." || p.contains('\\'))
    {
        return Err(refuse("its prefix is not a plain relative S3 prefix"));
    }
    Ok(format!("data/{name}"))
}

/// Where an export lies: its own `AWSDynamoDB/<ExportId>/` folder, in a local directory
/// or under an S3 prefix.
#[derive(Debug, Clone)]
pub enum ExportRoot {
    /// A local directory (a downloaded export).
    Local(PathBuf),
    /// An S3 prefix ending in `/`.
    S3 {
        /// The client.
        client: aws_sdk_s3::Client,
        /// The bucket.
        bucket: String,
        /// The export folder's prefix, ending in `/` (or empty).
        prefix: String,
    },
}

/// A data file ready to be read: a local path (the export's own file, or a temporary
/// copy of an S3 object, deleted on drop) whose MD5 was checked.
pub struct CheckedFile {
    /// Where to read it.
    pub path: PathBuf,
    /// The file's size in bytes.
    pub bytes: u64,
    _temp: Option<tempfile::TempPath>,
}

impl ExportRoot {
    /// The root of an export location (`DIR` or `s3://bucket/prefix/AWSDynamoDB/<id>/`);
    /// S3 clients come from [`crate::aws::s3`] (endpoint overrides as elsewhere).
    pub async fn open(location: &Location) -> Self {
        match location {
            Location::Local(dir) => ExportRoot::Local(dir.clone()),
            Location::S3 { bucket, prefix } => ExportRoot::S3 {
                client: crate::aws::s3(
                    &crate::aws::shared_config().await,
                    &crate::aws::ClientOptions::default(),
                ),
                bucket: bucket.clone(),
                prefix: prefix.clone(),
            },
        }
    }

    /// The full location of a file of the export, for messages.
    pub fn location(&self, rel: &str) -> String {
        match self {
            ExportRoot::Local(dir) => dir.join(rel).display().to_string(),
            ExportRoot::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}{rel}"),
        }
    }

    /// Reads a small file of the export (a manifest) whole, refusing one over
    /// `max_bytes`.
    pub async fn read_small(&self, rel: &str, max_bytes: u64) -> Result<Vec<u8>, BaselineError> {
        let io = |e: String| BaselineError::Read {
            location: self.location(rel),
            reason: e,
        };
        let too_big = |n: u64| io(format!("{n} bytes, more than the {max_bytes} allowed"));
        match self {
            ExportRoot::Local(dir) => {
                let path = dir.join(rel);
                let file = std::fs::File::open(&path).map_err(|e| io(e.to_string()))?;
                let len = file.metadata().map_err(|e| io(e.to_string()))?.len();
                if len > max_bytes {
                    return Err(too_big(len));
                }
                let mut out = Vec::with_capacity(len as usize);
                file.take(max_bytes + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| io(e.to_string()))?;
                Ok(out)
            }
            ExportRoot::S3 {
                client,
                bucket,
                prefix,
            } => {
                let resp = client
                    .get_object()
                    .bucket(bucket)
                    .key(format!("{prefix}{rel}"))
                    .send()
                    .await
                    .map_err(|e| io(crate::aws::retry::describe_sdk_error(&e).1))?;
                let len = resp.content_length().unwrap_or(0).max(0) as u64;
                if len > max_bytes {
                    return Err(too_big(len));
                }
                let mut body = resp.body;
                let mut out = Vec::with_capacity(len as usize);
                while let Some(chunk) = body.next().await {
                    let chunk = chunk.map_err(|e| io(e.to_string()))?;
                    out.extend_from_slice(&chunk);
                    if out.len() as u64 > max_bytes {
                        return Err(too_big(out.len() as u64));
                    }
                }
                Ok(out)
            }
        }
    }

    /// Reads `manifest-summary.json`.
    pub async fn read_summary(&self) -> Result<ExportSummary, BaselineError> {
        ExportSummary::parse(
            &self
                .read_small("manifest-summary.json", SUMMARY_MAX_BYTES)
                .await?,
        )
    }

    /// Reads `manifest-files.json`.
    pub async fn read_files(&self) -> Result<Vec<ManifestFileEntry>, BaselineError> {
        parse_files_manifest(
            &self
                .read_small("manifest-files.json", FILES_MANIFEST_MAX_BYTES)
                .await?,
        )
    }

    /// Makes a data file (`data/<name>`, from [`resolve_data_file`]) ready to read and
    /// checks its MD5 against the manifest's, before anything of it is used. An S3
    /// object is streamed into a temporary file (never whole in memory).
    pub async fn fetch_checked(
        &self,
        rel: &str,
        md5_base64: &str,
    ) -> Result<CheckedFile, BaselineError> {
        let location = self.location(rel);
        let io = |e: String| BaselineError::Read {
            location: location.clone(),
            reason: e,
        };
        let (path, bytes, digest, temp) = match self {
            ExportRoot::Local(dir) => {
                let path = dir.join(rel);
                let p = path.clone();
                let (bytes, digest) = tokio::task::spawn_blocking(move || md5_of_file(&p))
                    .await
                    .map_err(|e| io(e.to_string()))?
                    .map_err(|e| io(e.to_string()))?;
                (path, bytes, digest, None)
            }
            ExportRoot::S3 {
                client,
                bucket,
                prefix,
            } => {
                let resp = client
                    .get_object()
                    .bucket(bucket)
                    .key(format!("{prefix}{rel}"))
                    .send()
                    .await
                    .map_err(|e| io(crate::aws::retry::describe_sdk_error(&e).1))?;
                let temp = tempfile::NamedTempFile::new().map_err(|e| io(e.to_string()))?;
                let mut out = std::io::BufWriter::with_capacity(1 << 20, temp.as_file());
                let mut md5 = Md5::new();
                let mut bytes = 0u64;
                let mut body = resp.body;
                while let Some(chunk) = body.next().await {
                    let chunk = chunk.map_err(|e| io(e.to_string()))?;
                    md5.update(&chunk);
                    bytes += chunk.len() as u64;
                    out.write_all(&chunk).map_err(|e| io(e.to_string()))?;
                }
                out.flush().map_err(|e| io(e.to_string()))?;
                drop(out);
                let path = temp.into_temp_path();
                let md5: [u8; 16] = md5.finalize().into();
                (path.to_path_buf(), bytes, md5, Some(path))
            }
        };
        let actual = base64::engine::general_purpose::STANDARD.encode(digest);
        if actual != md5_base64 {
            return Err(BaselineError::Checksum {
                location,
                expected: md5_base64.to_string(),
                actual,
            });
        }
        Ok(CheckedFile {
            path,
            bytes,
            _temp: temp,
        })
    }
}

fn md5_of_file(path: &Path) -> std::io::Result<(u64, [u8; 16])> {
    let mut file = std::fs::File::open(path)?;
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((bytes, md5.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary_json(extra: &str) -> String {
        format!(
            r#"{{"version":"2020-06-30","exportArn":"arn:aws:dynamodb:us-east-1:123456789012:table/ProductCatalog/export/01234567890123-a1b2c3d4","startTime":"2020-11-04T07:28:34.028Z","tableArn":"arn:aws:dynamodb:us-east-1:123456789012:table/ProductCatalog","exportTime":"2020-11-04T07:28:34.028Z","itemCount":8{extra}}}"#
        )
    }

    #[test]
    fn the_documented_summaries_parse() {
        let s = ExportSummary::parse(summary_json(r#","outputFormat":"DYNAMODB_JSON""#).as_bytes())
            .unwrap();
        assert_eq!(s.table, "ProductCatalog");
        assert_eq!(s.export_id, "01234567890123-a1b2c3d4");
        assert_eq!(s.export_type, ExportType::Full);
        assert_eq!(s.item_count, 8);
        assert_eq!(s.export_time_ms, 1_604_474_914_028);
        let inc = ExportSummary::parse(
            summary_json(
                r#","exportFromTime":"2023-09-18T17:00:00.000Z","exportToTime":"2023-09-19T04:00:00.000Z","outputFormat":"DYNAMODB_JSON","outputView":"NEW_IMAGE","exportType":"INCREMENTAL_EXPORT""#,
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(inc.export_type, ExportType::Incremental);
        assert_eq!(inc.view_type.as_deref(), Some("NEW_IMAGE"));
        assert!(inc.window.is_some());
    }

    #[test]
    fn ion_and_foreign_summaries_are_refused() {
        let ion = ExportSummary::parse(summary_json(r#","outputFormat":"ION""#).as_bytes());
        assert!(matches!(ion, Err(BaselineError::Unsupported(m)) if m.contains("Ion")));
        let other = summary_json("").replace("ProductCatalog/export", "Other/export");
        assert!(ExportSummary::parse(other.as_bytes()).is_err());
        let no_time = summary_json("").replace("\"exportTime\"", "\"x\"");
        assert!(ExportSummary::parse(no_time.as_bytes()).is_err());
    }

    #[test]
    fn data_file_keys_must_stay_in_the_export() {
        let s = ExportSummary::parse(summary_json("").as_bytes()).unwrap();
        let entry = |key: &str| ManifestFileEntry {
            item_count: 1,
            md5_checksum: String::new(),
            etag: None,
            data_file_s3_key: key.to_string(),
        };
        for (key, want) in [
            (
                "p/AWSDynamoDB/01234567890123-a1b2c3d4/data/abc.json.gz",
                "data/abc.json.gz",
            ),
            (
                "AWSDynamoDB/01234567890123-a1b2c3d4/data/x-y_z.json.gz",
                "data/x-y_z.json.gz",
            ),
        ] {
            assert_eq!(resolve_data_file(&s, &entry(key)).unwrap(), want);
        }
        for key in [
            "p/AWSDynamoDB/99999999999999-other/data/abc.json.gz",
            "p/AWSDynamoDB/01234567890123-a1b2c3d4/data/../../x.json.gz",
            "p/AWSDynamoDB/01234567890123-a1b2c3d4/data/sub/x.json.gz",
            "/abs/AWSDynamoDB/01234567890123-a1b2c3d4/data/x.json.gz",
            "p/../AWSDynamoDB/01234567890123-a1b2c3d4/data/x.json.gz",
            "pAWSDynamoDB/01234567890123-a1b2c3d4/data/x.json.gz",
            "p/AWSDynamoDB/01234567890123-a1b2c3d4/data/",
            "p/AWSDynamoDB/01234567890123-a1b2c3d4/manifest-files.json",
        ] {
            let err = resolve_data_file(&s, &entry(key)).unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    #[test]
    fn files_manifest_lines_parse() {
        let text = "{\"itemCount\":8,\"md5Checksum\":\"sQMSpEILNgoQmarvDFonGQ==\",\"etag\":\"af83d6f217c19b8b0fff8023d8ca4716-1\",\"dataFileS3Key\":\"AWSDynamoDB/01693685827463-2d8752fd/data/asdl123dasas.json.gz\"}\n\n";
        let files = parse_files_manifest(text.as_bytes()).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].item_count, 8);
        assert!(parse_files_manifest(b"{\"itemCount\":1}\n").is_err());
    }
}

//! Source: where the archive is read back from. [`ArchiveSource`] is the small trait at
//! this I/O edge (list the keys under a prefix, get one object's bytes);
//! [`LocalDirSource`] reads a directory and [`S3Source`] a bucket and prefix.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

use crate::model::key;

use crate::model::Location;

/// A listing or read of the archive that failed.
#[derive(Debug, thiserror::Error)]
#[error("reading {location}: {message}")]
pub struct SourceError {
    /// What was being read (path or `s3://` URL).
    pub location: String,
    /// What went wrong.
    pub message: String,
}

/// Reads archive objects back.
#[async_trait]
pub trait ArchiveSource: Send + Sync {
    /// Every key under `prefix` (relative to the source's root), at any depth, sorted.
    /// A prefix with nothing under it gives an empty list.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, SourceError>;

    /// The names of the folders directly under `prefix` (a prefix ending in `/`, or
    /// empty for the root), sorted: `orders` for `orders/year=2026/...` under the root.
    async fn folders(&self, prefix: &str) -> Result<Vec<String>, SourceError>;

    /// The bytes of the object under `key`.
    async fn get(&self, key: &str) -> Result<Vec<u8>, SourceError>;

    /// Whether an object exists under `key`.
    async fn exists(&self, key: &str) -> Result<bool, SourceError>;

    /// The bytes of the object under `key` with its version tag (S3: its ETag; a local
    /// directory: SHA-256 of its bytes, hex), or `None` when there is no object. An
    /// object over `max_bytes` is refused without being read: what is read from
    /// storage is data, and a manifest the size of a disk is not one.
    async fn get_tagged(
        &self,
        key: &str,
        max_bytes: u64,
    ) -> Result<Option<(Vec<u8>, String)>, SourceError>;

    /// Every key under `prefix` with its last-modified time, sorted by key.
    async fn list_modified(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, DateTime<Utc>)>, SourceError>;

    /// The full location of a key, for reports (a path or an `s3://` URL).
    fn location(&self, key: &str) -> String;

    /// The checksum the store kept for the object under `key` when it was uploaded.
    /// Stores that keep none (a local directory) answer [`StoredChecksum::NotKept`].
    async fn stored_checksum(&self, key: &str) -> Result<StoredChecksum, SourceError> {
        let _ = key;
        Ok(StoredChecksum::NotKept)
    }
}

/// The checksum a store kept for an object at upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredChecksum {
    /// The store keeps no checksums (a local directory).
    NotKept,
    /// The store keeps checksums, but none for this object.
    Missing,
    /// SHA-256 of the whole object, base64.
    Sha256(String),
    /// A multipart upload's checksum: SHA-256, base64, over the SHA-256 digests of its
    /// parts, in order.
    Composite {
        /// The base64 digest.
        sha256: String,
        /// How many parts.
        parts: usize,
    },
}

impl StoredChecksum {
    /// Reads S3's `x-amz-checksum-sha256` value: `<base64>` or `<base64>-<parts>`.
    pub fn from_s3(value: Option<&str>) -> StoredChecksum {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            return StoredChecksum::Missing;
        };
        match value.rsplit_once('-').map(|(h, n)| (h, n.parse::<usize>())) {
            Some((sha256, Ok(parts))) => StoredChecksum::Composite {
                sha256: sha256.to_string(),
                parts,
            },
            _ => StoredChecksum::Sha256(value.to_string()),
        }
    }
}

/// Opens `DIR` or `s3://bucket/prefix`; `flag` names the setting in errors.
pub async fn open(source: &str, flag: &str) -> Result<Box<dyn ArchiveSource>, SourceError> {
    let location = Location::parse(source).map_err(|e| SourceError {
        location: source.to_string(),
        message: format!("invalid {flag}: {}", e.reason),
    })?;
    Ok(open_location(&location).await)
}

/// Opens a parsed location. S3 clients come from [`crate::aws::s3`] with the SDK's
/// standard retries.
pub async fn open_location(location: &Location) -> Box<dyn ArchiveSource> {
    match location {
        // An absolute root, so locations in reports and manifests stay valid from
        // anywhere.
        Location::Local(root) => Box::new(LocalDirSource::new(
            std::path::absolute(root).unwrap_or_else(|_| root.clone()),
        )),
        Location::S3 { bucket, prefix } => {
            let client = crate::aws::s3(
                &crate::aws::shared_config().await,
                &crate::aws::ClientOptions::default(),
            );
            Box::new(S3Source::new(client, bucket.clone(), prefix.clone()))
        }
    }
}

/// The table-days of an archive (raw or compacted), sorted: every table under the root
/// (or only `table`), every `year=/month=/day=` partition within `[from, to]`. Folders
/// that are not partitions, and `_`-prefixed folders (`_rejected`, `_manifests`), are
/// not table-days.
pub async fn table_days(
    source: &dyn ArchiveSource,
    table: Option<&str>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<Vec<(String, NaiveDate)>, SourceError> {
    let tables = match table {
        Some(t) => vec![t.to_string()],
        None => source
            .folders("")
            .await?
            .into_iter()
            .filter(|t| !t.starts_with('_') && crate::model::key::validate_table_name(t).is_ok())
            .collect(),
    };
    let mut out = Vec::new();
    for table in tables {
        let root = key::table_prefix(&table);
        for y in source.folders(&root).await? {
            if key::hive_number(&y, "year").is_none() {
                continue;
            }
            let year_prefix = format!("{root}{y}/");
            for m in source.folders(&year_prefix).await? {
                if key::hive_number(&m, "month").is_none() {
                    continue;
                }
                let month_prefix = format!("{year_prefix}{m}/");
                for d in source.folders(&month_prefix).await? {
                    // Only the canonical spelling (`month=01`) is a partition.
                    let Some(date) = key::hive_date(&y, &m, &d) else {
                        continue;
                    };
                    if from.is_none_or(|f| date >= f) && to.is_none_or(|t| date <= t) {
                        out.push((table.clone(), date));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Reads objects as files under a root directory. Hidden files (the sink's `.tmp-`
/// files) are not listed.
#[derive(Debug, Clone)]
pub struct LocalDirSource {
    root: PathBuf,
}

impl LocalDirSource {
    /// A source reading under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalDirSource { root: root.into() }
    }

    /// The path of a key, which must be a plain relative key
    /// ([`key::check_relative`]): nothing read from storage opens a file outside the
    /// root.
    fn path_of(&self, k: &str) -> Result<PathBuf, SourceError> {
        key::check_relative(k).map_err(|message| SourceError {
            location: format!("{}/{k}", self.root.display()),
            message,
        })?;
        Ok(self.root.join(k))
    }

    fn walk(&self, dir: &Path, rel: &str, out: &mut Vec<String>) -> Result<(), SourceError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error(dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_error(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let key = format!("{rel}{name}");
            let kind = entry.file_type().map_err(|e| io_error(&entry.path(), e))?;
            if kind.is_dir() {
                self.walk(&entry.path(), &format!("{key}/"), out)?;
            } else {
                out.push(key);
            }
        }
        Ok(())
    }
}

/// An object refused for its size.
fn too_large(location: String, size: u64, max_bytes: u64) -> SourceError {
    SourceError {
        location,
        message: format!("{size} bytes, over the limit of {max_bytes} for this object: not read"),
    }
}

fn io_error(path: &Path, e: std::io::Error) -> SourceError {
    SourceError {
        location: path.display().to_string(),
        message: e.to_string(),
    }
}

#[async_trait]
impl ArchiveSource for LocalDirSource {
    async fn list(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        if !prefix.is_empty() {
            self.path_of(prefix)?;
        }
        // Prefixes used by replay end at a folder boundary; list that folder.
        let (dir, rel) = match prefix.rfind('/') {
            Some(i) => (self.root.join(&prefix[..i]), prefix[..=i].to_string()),
            None => (self.root.clone(), String::new()),
        };
        let mut out = Vec::new();
        self.walk(&dir, &rel, &mut out)?;
        out.retain(|k| k.starts_with(prefix));
        out.sort();
        Ok(out)
    }

    async fn folders(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        let dir = if prefix.is_empty() {
            self.root.clone()
        } else {
            self.path_of(prefix)?
        };
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error(&dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.')
                && entry
                    .file_type()
                    .map_err(|e| io_error(&entry.path(), e))?
                    .is_dir()
            {
                out.push(name);
            }
        }
        out.sort();
        Ok(out)
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, SourceError> {
        let path = self.path_of(key)?;
        std::fs::read(&path).map_err(|e| io_error(&path, e))
    }

    async fn exists(&self, key: &str) -> Result<bool, SourceError> {
        Ok(self.path_of(key)?.is_file())
    }

    async fn get_tagged(
        &self,
        key: &str,
        max_bytes: u64,
    ) -> Result<Option<(Vec<u8>, String)>, SourceError> {
        let path = self.path_of(key)?;
        let size = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&path, e)),
        };
        if size > max_bytes {
            return Err(too_large(self.location(key), size, max_bytes));
        }
        match std::fs::read(&path) {
            Ok(bytes) => {
                let tag = crate::model::hex::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes));
                Ok(Some((bytes, tag)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&path, e)),
        }
    }

    async fn list_modified(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, DateTime<Utc>)>, SourceError> {
        let mut out = Vec::new();
        for key in self.list(prefix).await? {
            let path = self.root.join(&key);
            match std::fs::metadata(&path).and_then(|m| m.modified()) {
                Ok(t) => out.push((key, DateTime::<Utc>::from(t))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(&path, e)),
            }
        }
        Ok(out)
    }

    fn location(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }
}

/// Reads objects under a bucket and key prefix.
#[derive(Debug, Clone)]
pub struct S3Source {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl S3Source {
    /// A source reading `s3://bucket/prefix` (prefix empty or ending in `/`).
    pub fn new(client: aws_sdk_s3::Client, bucket: String, prefix: String) -> Self {
        S3Source {
            client,
            bucket,
            prefix,
        }
    }

    /// The keys under `prefix` (relative to the source's prefix), and with `delimited`
    /// the folders directly under it (relative to `prefix`, ending in `/`), both sorted.
    async fn listing(
        &self,
        prefix: &str,
        delimited: bool,
    ) -> Result<(Vec<String>, Vec<String>), SourceError> {
        let full = format!("{}{prefix}", self.prefix);
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full)
            .set_delimiter(delimited.then(|| "/".to_string()))
            .into_paginator()
            .send();
        let (mut keys, mut folders) = (Vec::new(), Vec::new());
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error(prefix, e))?;
            for object in page.contents() {
                if let Some(key) = object.key().and_then(|k| k.strip_prefix(&self.prefix)) {
                    keys.push(key.to_string());
                }
            }
            for common in page.common_prefixes() {
                if let Some(name) = common.prefix().and_then(|p| p.strip_prefix(&full)) {
                    folders.push(name.to_string());
                }
            }
        }
        keys.sort();
        folders.sort();
        Ok((keys, folders))
    }

    /// One listing page's objects with their times (not folders).
    async fn listing_modified(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, DateTime<Utc>)>, SourceError> {
        let full = format!("{}{prefix}", self.prefix);
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.error(prefix, e))?;
            for object in page.contents() {
                let Some(key) = object.key().and_then(|k| k.strip_prefix(&self.prefix)) else {
                    continue;
                };
                let modified = object
                    .last_modified()
                    .and_then(|t| DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos()))
                    .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
                out.push((key.to_string(), modified));
            }
        }
        out.sort();
        Ok(out)
    }

    /// `GetObject` of a key; `None` when there is no such object.
    async fn get_object(
        &self,
        key: &str,
    ) -> Result<Option<aws_sdk_s3::operation::get_object::GetObjectOutput>, SourceError> {
        let result = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(format!("{}{key}", self.prefix))
            .send()
            .await;
        match result {
            Ok(o) => Ok(Some(o)),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(self.error(key, e)),
        }
    }

    fn error(&self, key: &str, e: impl std::error::Error) -> SourceError {
        SourceError {
            location: self.location(key),
            message: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
        }
    }
}

#[async_trait]
impl ArchiveSource for S3Source {
    async fn list(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        Ok(self.listing(prefix, false).await?.0)
    }

    async fn folders(&self, prefix: &str) -> Result<Vec<String>, SourceError> {
        let folders = self.listing(prefix, true).await?.1;
        Ok(folders
            .into_iter()
            .filter_map(|p| p.strip_suffix('/').map(str::to_string))
            .collect())
    }

    async fn exists(&self, key: &str) -> Result<bool, SourceError> {
        let result = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(format!("{}{key}", self.prefix))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) => Err(self.error(key, e)),
        }
    }

    async fn get_tagged(
        &self,
        key: &str,
        max_bytes: u64,
    ) -> Result<Option<(Vec<u8>, String)>, SourceError> {
        let Some(object) = self.get_object(key).await? else {
            return Ok(None);
        };
        let size = u64::try_from(object.content_length().unwrap_or(0)).unwrap_or(0);
        if size > max_bytes {
            return Err(too_large(self.location(key), size, max_bytes));
        }
        let tag = object.e_tag().unwrap_or_default().to_string();
        let body = object
            .body
            .collect()
            .await
            .map_err(|e| self.error(key, e))?;
        Ok(Some((body.into_bytes().to_vec(), tag)))
    }

    async fn list_modified(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, DateTime<Utc>)>, SourceError> {
        self.listing_modified(prefix).await
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, SourceError> {
        let object = self.get_object(key).await?.ok_or_else(|| SourceError {
            location: self.location(key),
            message: "no such object".to_string(),
        })?;
        let body = object
            .body
            .collect()
            .await
            .map_err(|e| self.error(key, e))?;
        Ok(body.into_bytes().to_vec())
    }

    fn location(&self, key: &str) -> String {
        format!("s3://{}/{}{key}", self.bucket, self.prefix)
    }

    async fn stored_checksum(&self, key: &str) -> Result<StoredChecksum, SourceError> {
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(format!("{}{key}", self.prefix))
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| self.error(key, e))?;
        Ok(StoredChecksum::from_s3(head.checksum_sha256()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_checksums_whole_and_composite() {
        assert_eq!(StoredChecksum::from_s3(None), StoredChecksum::Missing);
        assert_eq!(StoredChecksum::from_s3(Some("")), StoredChecksum::Missing);
        assert_eq!(
            StoredChecksum::from_s3(Some("q+/=")),
            StoredChecksum::Sha256("q+/=".into())
        );
        assert_eq!(
            StoredChecksum::from_s3(Some("q+/=-12")),
            StoredChecksum::Composite {
                sha256: "q+/=".into(),
                parts: 12
            }
        );
    }

    #[tokio::test]
    async fn local_listing() {
        let dir = tempfile::tempdir().unwrap();
        let day = dir.path().join("t_1/year=2026/month=01/day=02");
        std::fs::create_dir_all(&day).unwrap();
        std::fs::write(day.join("b.parquet"), b"x").unwrap();
        std::fs::write(day.join("a.json.gz"), b"y").unwrap();
        std::fs::write(day.join(".tmp-1"), b"z").unwrap();
        let src = LocalDirSource::new(dir.path());
        assert_eq!(
            src.list("t_1/year=2026/").await.unwrap(),
            vec![
                "t_1/year=2026/month=01/day=02/a.json.gz",
                "t_1/year=2026/month=01/day=02/b.parquet"
            ]
        );
        assert!(src.list("t_1/year=2025/").await.unwrap().is_empty());
        assert_eq!(src.folders("").await.unwrap(), vec!["t_1"]);
        assert_eq!(src.folders("t_1/").await.unwrap(), vec!["year=2026"]);
        assert!(src.folders("t_2/").await.unwrap().is_empty());
        assert!(src
            .exists("t_1/year=2026/month=01/day=02/a.json.gz")
            .await
            .unwrap());
        assert!(!src.exists("t_1/nothing").await.unwrap());
        std::fs::create_dir_all(dir.path().join("t_1/year=2026/month=1/day=03")).unwrap();
        std::fs::create_dir_all(dir.path().join("t_1/year=2026/month=02/day=01")).unwrap();
        std::fs::create_dir_all(dir.path().join("_rejected/year=2026/month=02/day=01")).unwrap();
        std::fs::create_dir_all(dir.path().join("other_t/year=2025/month=12/day=31")).unwrap();
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(
            table_days(&src, None, None, None).await.unwrap(),
            vec![
                ("other_t".to_string(), d(2025, 12, 31)),
                ("t_1".to_string(), d(2026, 1, 2)),
                ("t_1".to_string(), d(2026, 2, 1)),
            ]
        );
        assert_eq!(
            table_days(&src, Some("t_1"), Some(d(2026, 1, 3)), None)
                .await
                .unwrap(),
            vec![("t_1".to_string(), d(2026, 2, 1))]
        );
        assert_eq!(
            src.get("t_1/year=2026/month=01/day=02/a.json.gz")
                .await
                .unwrap(),
            b"y"
        );
    }
}

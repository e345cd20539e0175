//! Location: where an archive is, a local directory or an S3 bucket and prefix.

use std::path::PathBuf;

/// A location string that is neither a directory path nor an `s3://` URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct LocationError {
    /// What is wrong.
    pub reason: String,
}

/// Where an archive is: written to (the destination) or read from (a source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local directory.
    Local(PathBuf),
    /// An S3 bucket and key prefix (empty, or ending in `/`).
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix, empty or ending in `/`.
        prefix: String,
    },
}

impl Location {
    /// Parses `s3://bucket/prefix` or a directory path.
    pub fn parse(s: &str) -> Result<Self, LocationError> {
        let bad = |reason: String| LocationError { reason };
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad(format!("{s:?} names no bucket")));
            }
            let mut prefix = prefix.trim_matches('/').to_string();
            if !prefix.is_empty() {
                prefix.push('/');
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                prefix,
            });
        }
        if s.is_empty() {
            return Err(bad("empty".to_string()));
        }
        if s.contains("://") {
            return Err(bad(format!(
                "{s:?}: only local directories and s3:// URLs are supported"
            )));
        }
        Ok(Location::Local(PathBuf::from(s)))
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

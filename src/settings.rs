//! Settings: one struct read from command-line flags with environment-variable
//! fallbacks (the CLI) or from environment variables alone (the Lambda function), and
//! validated once into the values the pipeline uses.

use std::path::PathBuf;
use std::time::Duration;

use crate::buffer::Thresholds;
use crate::encode::Format;

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {name}: {reason}")]
pub struct SettingsError {
    /// The flag and environment variable.
    pub name: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// Where the archive goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
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

impl Destination {
    /// Parses `s3://bucket/prefix` or a directory path.
    pub fn parse(s: &str) -> Result<Self, SettingsError> {
        let bad = |reason: String| SettingsError {
            name: "--dest / ARCHIVE_DEST",
            reason,
        };
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad(format!("{s:?} names no bucket")));
            }
            let mut prefix = prefix.trim_matches('/').to_string();
            if !prefix.is_empty() {
                prefix.push('/');
            }
            return Ok(Destination::S3 {
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
        Ok(Destination::Local(PathBuf::from(s)))
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Local(p) => write!(f, "{}", p.display()),
            Destination::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// Archive settings shared by the CLI and the Lambda function. Every field is a flag
/// and an environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    /// Destination: a local directory or `s3://bucket/prefix`.
    #[arg(long, env = "ARCHIVE_DEST", default_value = "./archive")]
    pub dest: String,

    /// File format of archived changes.
    #[arg(long, env = "ARCHIVE_FORMAT", value_enum, default_value_t = Format::Parquet)]
    pub format: Format,

    /// Table name for records whose event does not name one (DynamoDB Streams
    /// `GetRecords` responses have no `eventSourceARN`).
    #[arg(long, env = "ARCHIVE_TABLE")]
    pub table: Option<String>,

    /// Largest file, in bytes of buffered change records, before a new file starts.
    #[arg(long, env = "ARCHIVE_MAX_FILE_BYTES", default_value_t = Thresholds::default().max_file_bytes)]
    pub max_file_bytes: usize,

    /// Most records in one file.
    #[arg(long, env = "ARCHIVE_MAX_FILE_RECORDS", default_value_t = Thresholds::default().max_file_records)]
    pub max_file_records: usize,

    /// Seconds a buffered change may wait before its file is written (long-running
    /// inputs such as stdin; a Lambda invocation always writes everything before it
    /// returns).
    #[arg(long, env = "ARCHIVE_MAX_FILE_AGE_SECS", default_value_t = Thresholds::default().max_file_age.as_secs())]
    pub max_file_age_secs: u64,

    /// Most bytes buffered across all partitions; past it the largest partition's file
    /// is written early.
    #[arg(long, env = "ARCHIVE_MAX_BUFFER_BYTES", default_value_t = Thresholds::default().max_buffer_bytes)]
    pub max_buffer_bytes: usize,

    /// KMS key (ID, ARN or alias) to encrypt S3 objects with (SSE-KMS); without it the
    /// bucket's default encryption applies. Only for `s3://` destinations.
    #[arg(long, env = "ARCHIVE_KMS_KEY_ID")]
    pub kms_key_id: Option<String>,

    /// Directory of schema files (`<name>.json`, one per DynamoDB table): Parquet files
    /// of those tables also carry their typed columns and `type_errors`.
    #[arg(long, env = "ARCHIVE_SCHEMAS", value_name = "DIR")]
    pub schemas: Option<PathBuf>,
}

impl Settings {
    /// Reads the settings from environment variables alone (the Lambda function).
    pub fn from_env() -> Result<Self, clap::Error> {
        use clap::{Args, FromArgMatches};
        let cmd = Settings::augment_args(clap::Command::new("ddb-archiver-lambda"));
        let matches = cmd.try_get_matches_from(["ddb-archiver-lambda"])?;
        Settings::from_arg_matches(&matches)
    }

    /// The destination, parsed.
    pub fn destination(&self) -> Result<Destination, SettingsError> {
        Destination::parse(&self.dest)
    }

    /// The buffer thresholds, checked.
    pub fn thresholds(&self) -> Result<Thresholds, SettingsError> {
        let positive = |name: &'static str, v: u64| {
            if v == 0 {
                Err(SettingsError {
                    name,
                    reason: "must be greater than 0".to_string(),
                })
            } else {
                Ok(())
            }
        };
        positive(
            "--max-file-bytes / ARCHIVE_MAX_FILE_BYTES",
            self.max_file_bytes as u64,
        )?;
        positive(
            "--max-file-records / ARCHIVE_MAX_FILE_RECORDS",
            self.max_file_records as u64,
        )?;
        positive(
            "--max-file-age-secs / ARCHIVE_MAX_FILE_AGE_SECS",
            self.max_file_age_secs,
        )?;
        if self.max_buffer_bytes < self.max_file_bytes {
            return Err(SettingsError {
                name: "--max-buffer-bytes / ARCHIVE_MAX_BUFFER_BYTES",
                reason: format!(
                    "{} is below --max-file-bytes ({})",
                    self.max_buffer_bytes, self.max_file_bytes
                ),
            });
        }
        Ok(Thresholds {
            max_file_bytes: self.max_file_bytes,
            max_file_records: self.max_file_records,
            max_file_age: Duration::from_secs(self.max_file_age_secs),
            max_buffer_bytes: self.max_buffer_bytes,
        })
    }

    /// The schema files of `--schemas`, read and validated (none without it).
    pub fn schemas(&self) -> Result<crate::schema::SchemaSet, SettingsError> {
        match &self.schemas {
            None => Ok(crate::schema::SchemaSet::default()),
            Some(dir) => crate::schema::SchemaSet::load_dir(dir).map_err(|e| SettingsError {
                name: "--schemas / ARCHIVE_SCHEMAS",
                reason: e.to_string(),
            }),
        }
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.destination()?;
        self.thresholds()?;
        if let Some(k) = &self.kms_key_id {
            if k.trim().is_empty() {
                return Err(SettingsError {
                    name: "--kms-key-id / ARCHIVE_KMS_KEY_ID",
                    reason: "empty".to_string(),
                });
            }
            if matches!(self.destination()?, Destination::Local(_)) {
                return Err(SettingsError {
                    name: "--kms-key-id / ARCHIVE_KMS_KEY_ID",
                    reason: "only applies to s3:// destinations".to_string(),
                });
            }
        }
        if let Some(t) = &self.table {
            crate::route::validate_table_name(t).map_err(|reason| SettingsError {
                name: "--table / ARCHIVE_TABLE",
                reason,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        assert_eq!(
            Destination::parse("s3://b/p/q/").unwrap(),
            Destination::S3 {
                bucket: "b".into(),
                prefix: "p/q/".into()
            }
        );
        assert_eq!(
            Destination::parse("s3://b").unwrap(),
            Destination::S3 {
                bucket: "b".into(),
                prefix: String::new()
            }
        );
        assert!(Destination::parse("s3:///x").is_err());
        assert!(Destination::parse("gs://x").is_err());
        assert_eq!(
            Destination::parse("./archive").unwrap(),
            Destination::Local("./archive".into())
        );
    }
}

//! Settings: the archiver's configuration as one plain struct, validated once into the
//! values the pipeline uses. The binaries read it from their own flags and environment
//! variables and name those in errors: a [`SettingsError`] names the [`Setting`], not a
//! flag.

use std::path::PathBuf;
use std::time::Duration;

use crate::buffer::Thresholds;
use crate::model::{Format, Location};

/// The archiver's settings, as named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// [`Settings::dest`].
    Dest,
    /// [`Settings::format`].
    Format,
    /// [`Settings::table`].
    Table,
    /// [`Settings::max_file_bytes`].
    MaxFileBytes,
    /// [`Settings::max_file_records`].
    MaxFileRecords,
    /// [`Settings::max_file_age_secs`].
    MaxFileAgeSecs,
    /// [`Settings::max_buffer_bytes`].
    MaxBufferBytes,
    /// [`Settings::kms_key_id`].
    KmsKeyId,
    /// [`Settings::schemas`].
    Schemas,
}

impl Setting {
    /// The setting's field name.
    pub fn name(self) -> &'static str {
        match self {
            Setting::Dest => "dest",
            Setting::Format => "format",
            Setting::Table => "table",
            Setting::MaxFileBytes => "max_file_bytes",
            Setting::MaxFileRecords => "max_file_records",
            Setting::MaxFileAgeSecs => "max_file_age_secs",
            Setting::MaxBufferBytes => "max_buffer_bytes",
            Setting::KmsKeyId => "kms_key_id",
            Setting::Schemas => "schemas",
        }
    }
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {}: {reason}", setting.name())]
pub struct SettingsError {
    /// The setting.
    pub setting: Setting,
    /// What is wrong with it.
    pub reason: String,
}

/// Archive settings shared by the CLI and the Lambda function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Location: a local directory or `s3://bucket/prefix`.
    pub dest: String,
    /// File format of archived changes.
    pub format: Format,
    /// Table name for records whose event does not name one (DynamoDB Streams
    /// `GetRecords` responses have no `eventSourceARN`).
    pub table: Option<String>,
    /// Largest file, in bytes of buffered change records, before a new file starts.
    pub max_file_bytes: usize,
    /// Most records in one file.
    pub max_file_records: usize,
    /// Seconds a buffered change may wait before its file is written (long-running
    /// inputs such as stdin; a Lambda invocation always writes everything before it
    /// returns).
    pub max_file_age_secs: u64,
    /// Most bytes buffered across all partitions; past it the largest partition's file
    /// is written early.
    pub max_buffer_bytes: usize,
    /// KMS key (ID, ARN or alias) to encrypt S3 objects with (SSE-KMS); without it the
    /// bucket's default encryption applies. Only for `s3://` destinations.
    pub kms_key_id: Option<String>,
    /// Directory of schema files (`<name>.json`, one per DynamoDB table): Parquet files
    /// of those tables also carry their typed columns and `type_errors`.
    pub schemas: Option<PathBuf>,
}

/// The default destination: a local directory.
pub const DEFAULT_DEST: &str = "./archive";

impl Default for Settings {
    fn default() -> Self {
        let t = Thresholds::default();
        Settings {
            dest: DEFAULT_DEST.to_string(),
            format: Format::Parquet,
            table: None,
            max_file_bytes: t.max_file_bytes,
            max_file_records: t.max_file_records,
            max_file_age_secs: t.max_file_age.as_secs(),
            max_buffer_bytes: t.max_buffer_bytes,
            kms_key_id: None,
            schemas: None,
        }
    }
}

impl Settings {
    /// The destination, parsed.
    pub fn destination(&self) -> Result<Location, SettingsError> {
        Location::parse(&self.dest).map_err(|e| SettingsError {
            setting: Setting::Dest,
            reason: e.reason,
        })
    }

    /// The buffer thresholds, checked.
    pub fn thresholds(&self) -> Result<Thresholds, SettingsError> {
        let positive = |setting: Setting, v: u64| {
            if v == 0 {
                Err(SettingsError {
                    setting,
                    reason: "must be greater than 0".to_string(),
                })
            } else {
                Ok(())
            }
        };
        positive(Setting::MaxFileBytes, self.max_file_bytes as u64)?;
        positive(Setting::MaxFileRecords, self.max_file_records as u64)?;
        positive(Setting::MaxFileAgeSecs, self.max_file_age_secs)?;
        if self.max_buffer_bytes < self.max_file_bytes {
            return Err(SettingsError {
                setting: Setting::MaxBufferBytes,
                reason: format!(
                    "{} is below the largest file size ({})",
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

    /// The schema files of [`Settings::schemas`], read and validated (none without it).
    pub fn schemas(&self) -> Result<crate::schema::SchemaSet, SettingsError> {
        crate::schema::SchemaSet::load_optional(self.schemas.as_deref()).map_err(|e| {
            SettingsError {
                setting: Setting::Schemas,
                reason: e.to_string(),
            }
        })
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<(), SettingsError> {
        self.destination()?;
        self.thresholds()?;
        if let Some(k) = &self.kms_key_id {
            let bad = |reason: &str| SettingsError {
                setting: Setting::KmsKeyId,
                reason: reason.to_string(),
            };
            if k.trim().is_empty() {
                return Err(bad("empty"));
            }
            if matches!(self.destination()?, Location::Local(_)) {
                return Err(bad("only applies to s3:// destinations"));
            }
        }
        if let Some(t) = &self.table {
            crate::model::key::validate_table_name(t).map_err(|reason| SettingsError {
                setting: Setting::Table,
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
            Location::parse("s3://b/p/q/").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                prefix: "p/q/".into()
            }
        );
        assert_eq!(
            Location::parse("s3://b").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                prefix: String::new()
            }
        );
        assert!(Location::parse("s3:///x").is_err());
        assert!(Location::parse("gs://x").is_err());
        assert_eq!(
            Location::parse("./archive").unwrap(),
            Location::Local("./archive".into())
        );
    }
}

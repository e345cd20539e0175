//! The archive settings as command-line flags with environment-variable fallbacks,
//! shared by both binaries (the Lambda function reads the same variables), mapped onto
//! the library's [`Settings`]; errors name the flag and the variable.

use ddb_archiver::model::Format;
use ddb_archiver::settings::{Setting, Settings, SettingsError, DEFAULT_DEST};

/// The `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// Apache Parquet built from Arrow record batches (`.parquet`).
    #[value(name = "parquet")]
    Parquet,
    /// Gzip-compressed JSON lines (`.json.gz`).
    #[value(name = "jsonl.gz")]
    JsonlGz,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Parquet => Format::Parquet,
            FormatArg::JsonlGz => Format::JsonlGz,
        }
    }
}

/// Archive settings: every field is a flag and an environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct SettingsArgs {
    /// Destination: a local directory or `s3://bucket/prefix`.
    #[arg(long, env = "ARCHIVE_DEST", default_value = DEFAULT_DEST)]
    pub dest: String,

    /// File format of archived changes.
    #[arg(long, env = "ARCHIVE_FORMAT", value_enum, default_value = "parquet")]
    pub format: FormatArg,

    /// Table name for records whose event does not name one (DynamoDB Streams
    /// `GetRecords` responses have no `eventSourceARN`).
    #[arg(long, env = "ARCHIVE_TABLE")]
    pub table: Option<String>,

    /// Largest file, in bytes of buffered change records, before a new file starts.
    #[arg(long, env = "ARCHIVE_MAX_FILE_BYTES", default_value_t = Settings::default().max_file_bytes)]
    pub max_file_bytes: usize,

    /// Most records in one file.
    #[arg(long, env = "ARCHIVE_MAX_FILE_RECORDS", default_value_t = Settings::default().max_file_records)]
    pub max_file_records: usize,

    /// Seconds a buffered change may wait before its file is written (long-running
    /// inputs such as stdin; a Lambda invocation always writes everything before it
    /// returns).
    #[arg(long, env = "ARCHIVE_MAX_FILE_AGE_SECS", default_value_t = Settings::default().max_file_age_secs)]
    pub max_file_age_secs: u64,

    /// Most bytes buffered across all partitions; past it the largest partition's file
    /// is written early.
    #[arg(long, env = "ARCHIVE_MAX_BUFFER_BYTES", default_value_t = Settings::default().max_buffer_bytes)]
    pub max_buffer_bytes: usize,

    /// KMS key (ID, ARN or alias) to encrypt S3 objects with (SSE-KMS); without it the
    /// bucket's default encryption applies. Only for `s3://` destinations.
    #[arg(long, env = "ARCHIVE_KMS_KEY_ID")]
    pub kms_key_id: Option<String>,

    /// Directory of schema files (`<name>.json`, one per DynamoDB table): Parquet files
    /// of those tables also carry their typed columns and `type_errors`.
    #[arg(long, env = "ARCHIVE_SCHEMAS", value_name = "DIR")]
    pub schemas: Option<std::path::PathBuf>,
}

impl SettingsArgs {
    /// The library's settings.
    pub fn to_settings(&self) -> Settings {
        Settings {
            dest: self.dest.clone(),
            format: self.format.into(),
            table: self.table.clone(),
            max_file_bytes: self.max_file_bytes,
            max_file_records: self.max_file_records,
            max_file_age_secs: self.max_file_age_secs,
            max_buffer_bytes: self.max_buffer_bytes,
            kms_key_id: self.kms_key_id.clone(),
            schemas: self.schemas.clone(),
        }
    }
}

/// The flag and the environment variable of a setting.
pub fn flag_and_variable(setting: Setting) -> (&'static str, &'static str) {
    match setting {
        Setting::Dest => ("--dest", "ARCHIVE_DEST"),
        Setting::Format => ("--format", "ARCHIVE_FORMAT"),
        Setting::Table => ("--table", "ARCHIVE_TABLE"),
        Setting::MaxFileBytes => ("--max-file-bytes", "ARCHIVE_MAX_FILE_BYTES"),
        Setting::MaxFileRecords => ("--max-file-records", "ARCHIVE_MAX_FILE_RECORDS"),
        Setting::MaxFileAgeSecs => ("--max-file-age-secs", "ARCHIVE_MAX_FILE_AGE_SECS"),
        Setting::MaxBufferBytes => ("--max-buffer-bytes", "ARCHIVE_MAX_BUFFER_BYTES"),
        Setting::KmsKeyId => ("--kms-key-id", "ARCHIVE_KMS_KEY_ID"),
        Setting::Schemas => ("--schemas", "ARCHIVE_SCHEMAS"),
    }
}

/// A settings error naming the flag and variable (`env_only`: the variable alone, for
/// the Lambda function, which has no flags).
pub fn describe(e: &SettingsError, env_only: bool) -> String {
    let (flag, var) = flag_and_variable(e.setting);
    if env_only {
        format!("invalid setting {var}: {}", e.reason)
    } else {
        format!("invalid setting {flag} / {var}: {}", e.reason)
    }
}

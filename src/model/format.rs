//! Format: the archive's two file formats, their names, extensions and content headers.

/// The archive's file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Apache Parquet built from Arrow record batches (`.parquet`).
    Parquet,
    /// Gzip-compressed JSON lines (`.json.gz`).
    JsonlGz,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 2] = [Format::Parquet, Format::JsonlGz];

    /// The format of an archive object, told by its key's extension; `None` for other
    /// objects.
    pub fn of_key(key: &str) -> Option<Self> {
        Format::ALL.into_iter().find(|f| {
            key.strip_suffix(f.extension())
                .is_some_and(|k| k.ends_with('.'))
        })
    }

    /// The format of a name as written in settings (`parquet`, `jsonl.gz`).
    pub fn from_name(name: &str) -> Option<Self> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The file name extension, without the leading dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::JsonlGz => "json.gz",
        }
    }

    /// The name used on the command line and in settings.
    pub fn name(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::JsonlGz => "jsonl.gz",
        }
    }

    /// The object's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Parquet => "application/vnd.apache.parquet",
            Format::JsonlGz => "application/x-ndjson",
        }
    }

    /// The object's `Content-Encoding`, if any.
    pub fn content_encoding(self) -> Option<&'static str> {
        match self {
            Format::Parquet => None,
            Format::JsonlGz => Some("gzip"),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

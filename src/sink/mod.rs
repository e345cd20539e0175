//! Sink: the one place where archive objects leave the process. [`ObjectSink`] is the
//! small trait at this I/O edge; [`local::LocalDirSink`] writes to a directory.
//! Every sink stores an object only if none exists under its key (S3's
//! `If-None-Match: *`): object names are deterministic, so an existing object already
//! holds exactly these records.

pub mod local;

use async_trait::async_trait;

use crate::encode::EncodedFile;

/// What a put did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PutOutcome {
    /// The object was stored.
    Written,
    /// An object was already there under that key: a previous attempt stored the same
    /// record set.
    AlreadyPresent,
}

/// A put that did not store the object.
#[derive(Debug, thiserror::Error)]
#[error("writing {location}: {message}")]
pub struct SinkError {
    /// Where the object was going (path or `s3://` URL).
    pub location: String,
    /// What went wrong.
    pub message: String,
}

/// Stores archive objects.
#[async_trait]
pub trait ObjectSink: Send + Sync {
    /// Stores `file` under its key, relative to the sink's root, unless an object is
    /// already there. Returns only once the object is durable.
    async fn put(&self, file: &EncodedFile) -> Result<PutOutcome, SinkError>;

    /// The full location of a key, for reports (a path or an `s3://` URL).
    fn location(&self, key: &str) -> String;
}

/// Opens the sink for a destination.
pub async fn for_destination(
    dest: &crate::settings::Destination,
) -> Result<std::sync::Arc<dyn ObjectSink>, SinkError> {
    match dest {
        crate::settings::Destination::Local(path) => {
            Ok(std::sync::Arc::new(local::LocalDirSink::new(path.clone())))
        }
        crate::settings::Destination::S3 { .. } => Err(SinkError {
            location: dest.to_string(),
            message: "S3 destinations are not supported by this build".to_string(),
        }),
    }
}

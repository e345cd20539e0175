//! Sink: the one place where archive objects leave the process. [`ObjectSink`] is the
//! small trait at this I/O edge; [`local::LocalDirSink`] writes to a directory and
//! [`s3::S3Sink`] to an S3 bucket, large objects as a multipart upload
//! (`multipart.rs`).
//! Every sink stores an object only if none exists under its key (S3's
//! `If-None-Match: *`): object names are deterministic, so an existing object already
//! holds exactly these records.

pub mod local;
mod multipart;
pub mod s3;

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

/// What a conditional [`ObjectSink::publish`] expects under the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// No object.
    Absent,
    /// The object read before, by its version tag (see
    /// [`crate::archive::source::ArchiveSource::get_tagged`]).
    Tag(String),
}

/// What a conditional publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// The object was stored.
    Stored,
    /// Something else is under the key now (another writer published first, or holds
    /// the lock): nothing was stored.
    Conflict(String),
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

/// The body of a streamed object, in order: `Some(bytes)` for each piece, then `None`
/// once it is complete. A channel that closes before `None` means the writer stopped:
/// nothing is stored.
pub type Pieces = tokio::sync::mpsc::Receiver<Option<bytes::Bytes>>;

/// Stores archive objects.
#[async_trait]
pub trait ObjectSink: Send + Sync {
    /// Stores `file` under its key, relative to the sink's root, unless an object is
    /// already there. Returns only once the object is durable.
    async fn put(&self, file: &EncodedFile) -> Result<PutOutcome, SinkError>;

    /// Stores `file` under its key, replacing any object there. Only for derived
    /// objects (a compacted day's manifest); the archive itself is never replaced.
    async fn replace(&self, file: &EncodedFile) -> Result<(), SinkError> {
        Err(SinkError {
            location: self.location(&file.key),
            message: "this sink does not replace objects".to_string(),
        })
    }

    /// Stores `file` under its key only if what is there is what `expect` says: the
    /// compare-and-swap that publishes a compacted day's manifest, so that of two
    /// writers racing on one day exactly one wins. Only for derived objects.
    async fn publish(&self, file: &EncodedFile, expect: &Expect) -> Result<Published, SinkError> {
        let _ = expect;
        Err(SinkError {
            location: self.location(&file.key),
            message: "this sink does not publish objects".to_string(),
        })
    }

    /// Stores the object whose body arrives as `pieces`, under `key`, replacing any
    /// object there, and returns once it is durable. Only for derived objects (a
    /// compacted file of a version not yet published). The S3 and directory sinks send
    /// each piece on as it comes and hold only a few; this default joins them and calls
    /// [`ObjectSink::replace`].
    async fn replace_streamed(
        &self,
        key: &str,
        content_type: &'static str,
        pieces: &mut Pieces,
    ) -> Result<(), SinkError> {
        let mut body = Vec::new();
        loop {
            match pieces.recv().await {
                Some(Some(piece)) => body.extend_from_slice(&piece),
                Some(None) => break,
                None => return Err(stopped(self.location(key))),
            }
        }
        let file = EncodedFile {
            key: key.to_string(),
            body: body.into(),
            content_type,
            content_encoding: None,
            records: 0,
        };
        self.replace(&file).await
    }

    /// Deletes the object under `key`; a missing object is no error. Only for derived
    /// objects (a superseded compaction); the archive itself is never deleted from.
    async fn delete(&self, key: &str) -> Result<(), SinkError> {
        Err(SinkError {
            location: self.location(key),
            message: "this sink does not delete objects".to_string(),
        })
    }

    /// The full location of a key, for reports (a path or an `s3://` URL).
    fn location(&self, key: &str) -> String;
}

/// What a sink says of a streamed body whose writer stopped before its end.
pub(crate) const BODY_STOPPED: &str = "the body stopped before its end: nothing was stored";

/// The error of a streamed body whose writer stopped before its end.
pub(crate) fn stopped(location: String) -> SinkError {
    SinkError {
        location,
        message: BODY_STOPPED.to_string(),
    }
}

/// Opens the sink for a destination; `kms_key_id` applies to S3 destinations (SSE-KMS).
/// An S3 client is built from the default AWS configuration chain (see
/// [`s3::S3Sink::client_from_env`]).
pub async fn open(
    dest: &crate::model::Location,
    kms_key_id: Option<&str>,
) -> Result<std::sync::Arc<dyn ObjectSink>, SinkError> {
    match dest {
        crate::model::Location::Local(path) => {
            Ok(std::sync::Arc::new(local::LocalDirSink::new(path.clone())))
        }
        crate::model::Location::S3 { bucket, prefix } => {
            let options = s3::S3Options {
                kms_key_id: kms_key_id.map(str::to_string),
                ..s3::S3Options::default()
            };
            let client = s3::S3Sink::client_from_env(&options).await;
            Ok(std::sync::Arc::new(s3::S3Sink::new(
                client,
                bucket.clone(),
                prefix.clone(),
                options,
            )))
        }
    }
}

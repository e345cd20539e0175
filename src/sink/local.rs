//! A local-directory sink: objects become files under a root directory, written to a
//! temporary file, flushed to disk and then linked into place without replacing an
//! existing file.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{Expect, ObjectSink, Pieces, Published, PutOutcome, SinkError};
use crate::encode::EncodedFile;

/// Writes objects as files under a root directory.
#[derive(Debug, Clone)]
pub struct LocalDirSink {
    root: PathBuf,
}

/// A failed write of `path`.
fn sink_error(path: &Path, e: std::io::Error) -> SinkError {
    SinkError {
        location: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Writes `body` to a hidden temporary file in `dir`, durably, then renames it over
/// `path` (atomic: a reader sees the old file or the new one, never a part).
fn replace_with(path: &Path, dir: &Path, body: &[u8]) -> std::io::Result<()> {
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(body)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

impl LocalDirSink {
    /// The path of a key, which must be a plain relative key
    /// ([`crate::model::key::check_relative`]).
    fn path_of(&self, key: &str) -> Result<PathBuf, SinkError> {
        crate::model::key::check_relative(key).map_err(|message| SinkError {
            location: format!("{}/{key}", self.root.display()),
            message,
        })?;
        Ok(self.root.join(key))
    }

    /// Under the lock: compares what is at `path` with `expect`, then renames a
    /// complete temporary file over it.
    fn swap_locked(
        &self,
        path: &Path,
        dir: &Path,
        file: &EncodedFile,
        expect: &Expect,
    ) -> std::io::Result<Published> {
        let current = match std::fs::read(path) {
            Ok(bytes) => Some(crate::model::hex::hex(
                &<sha2::Sha256 as sha2::Digest>::digest(&bytes),
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let matches = match (expect, &current) {
            (Expect::Absent, None) => true,
            (Expect::Tag(want), Some(have)) => want == have,
            _ => false,
        };
        if !matches {
            return Ok(Published::Conflict(format!(
                "{} changed since it was read",
                path.display()
            )));
        }
        replace_with(path, dir, &file.body)?;
        Ok(Published::Stored)
    }

    /// A sink writing under `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalDirSink { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn write(&self, path: &Path, body: &[u8]) -> std::io::Result<PutOutcome> {
        if path.exists() {
            return Ok(PutOutcome::AlreadyPresent);
        }
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
        tmp.write_all(body)?;
        tmp.as_file().sync_all()?;
        match tmp.persist_noclobber(path) {
            Ok(_) => Ok(PutOutcome::Written),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok(PutOutcome::AlreadyPresent)
            }
            Err(e) => Err(e.error),
        }
    }
}

#[async_trait]
impl ObjectSink for LocalDirSink {
    async fn put(&self, file: &EncodedFile) -> Result<PutOutcome, SinkError> {
        let path = self.path_of(&file.key)?;
        self.write(&path, &file.body)
            .map_err(|e| sink_error(&path, e))
    }

    async fn replace(&self, file: &EncodedFile) -> Result<(), SinkError> {
        let path = self.path_of(&file.key)?;
        let err = |e| sink_error(&path, e);
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).map_err(err)?;
        replace_with(&path, dir, &file.body).map_err(err)
    }

    async fn replace_streamed(
        &self,
        key: &str,
        _content_type: &'static str,
        pieces: &mut Pieces,
    ) -> Result<(), SinkError> {
        let path = self.path_of(key)?;
        let err = |e| sink_error(&path, e);
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).map_err(err)?;
        // Removed when dropped, unless complete and renamed into place.
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(dir)
            .map_err(err)?;
        loop {
            match pieces.recv().await {
                Some(Some(piece)) => tmp.write_all(&piece).map_err(err)?,
                Some(None) => break,
                None => return Err(super::stopped(path.display().to_string())),
            }
        }
        tmp.as_file().sync_all().map_err(err)?;
        tmp.persist(&path).map_err(|e| err(e.error))?;
        Ok(())
    }

    async fn publish(&self, file: &EncodedFile, expect: &Expect) -> Result<Published, SinkError> {
        let path = self.path_of(&file.key)?;
        let err = |e| sink_error(&path, e);
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).map_err(err)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The lock: created only if absent, removed when done; a hidden file, so never
        // listed as an object.
        let lock = dir.join(format!(".{name}.lock"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Ok(Published::Conflict(format!(
                    "another writer holds the lock {} (remove it if no compaction is running)",
                    lock.display()
                )))
            }
            Err(e) => return Err(err(e)),
        }
        let result = self.swap_locked(&path, dir, file, expect);
        let removed = std::fs::remove_file(&lock);
        let outcome = result.map_err(err)?;
        removed.map_err(|e| sink_error(&lock, e))?;
        Ok(outcome)
    }

    async fn delete(&self, key: &str) -> Result<(), SinkError> {
        let path = self.path_of(key)?;
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(sink_error(&path, e)),
            _ => Ok(()),
        }
    }

    fn location(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_clobber() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalDirSink::new(dir.path());
        let mut f = EncodedFile {
            key: "t/a/b.json.gz".into(),
            body: b"one".to_vec().into(),
            content_type: "x",
            content_encoding: None,
            records: 1,
        };
        assert_eq!(sink.put(&f).await.unwrap(), PutOutcome::Written);
        f.body = b"two".to_vec().into();
        assert_eq!(sink.put(&f).await.unwrap(), PutOutcome::AlreadyPresent);
        assert_eq!(
            std::fs::read(dir.path().join("t/a/b.json.gz")).unwrap(),
            b"one"
        );
    }

    /// Sends `pieces` (then the end, unless `stop_early`) to a streamed put of `key`.
    async fn stream(
        sink: &LocalDirSink,
        key: &str,
        pieces: &[&[u8]],
        stop_early: bool,
    ) -> Result<(), SinkError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(2);
        let pieces: Vec<bytes::Bytes> = pieces
            .iter()
            .map(|p| bytes::Bytes::copy_from_slice(p))
            .collect();
        let sender = tokio::spawn(async move {
            for p in pieces {
                tx.send(Some(p)).await.unwrap();
            }
            if !stop_early {
                tx.send(None).await.unwrap();
            }
        });
        let result = sink.replace_streamed(key, "x", &mut rx).await;
        sender.await.unwrap();
        result
    }

    #[tokio::test]
    async fn a_streamed_file_replaces_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalDirSink::new(dir.path());
        let key = "t/a/part.parquet";
        let path = dir.path().join(key);
        stream(&sink, key, &[b"old"], false).await.unwrap();
        stream(&sink, key, &[b"one ", b"two ", b"three"], false)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one two three");
        // A writer that stops before the end leaves the file as it was, and no
        // temporary file.
        let err = stream(&sink, key, &[b"half"], true).await.unwrap_err();
        assert!(err.message.contains("stopped before its end"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"one two three");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("part.parquet")]);
    }
}

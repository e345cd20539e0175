//! A local-directory sink: objects become files under a root directory, written to a
//! temporary file, flushed to disk and then linked into place without replacing an
//! existing file.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::{ObjectSink, PutOutcome, SinkError};
use crate::encode::EncodedFile;

/// Writes objects as files under a root directory.
#[derive(Debug, Clone)]
pub struct LocalDirSink {
    root: PathBuf,
}

impl LocalDirSink {
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
        let path = self.root.join(&file.key);
        self.write(&path, &file.body).map_err(|e| SinkError {
            location: path.display().to_string(),
            message: e.to_string(),
        })
    }

    async fn replace(&self, file: &EncodedFile) -> Result<(), SinkError> {
        let path = self.root.join(&file.key);
        let err = |e: std::io::Error| SinkError {
            location: path.display().to_string(),
            message: e.to_string(),
        };
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).map_err(err)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(dir)
            .map_err(err)?;
        tmp.write_all(&file.body).map_err(err)?;
        tmp.as_file().sync_all().map_err(err)?;
        tmp.persist(&path).map_err(|e| err(e.error))?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), SinkError> {
        let path = self.root.join(key);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(SinkError {
                location: path.display().to_string(),
                message: e.to_string(),
            }),
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
            body: b"one".to_vec(),
            content_type: "x",
            content_encoding: None,
            records: 1,
        };
        assert_eq!(sink.put(&f).await.unwrap(), PutOutcome::Written);
        f.body = b"two".to_vec();
        assert_eq!(sink.put(&f).await.unwrap(), PutOutcome::AlreadyPresent);
        assert_eq!(
            std::fs::read(dir.path().join("t/a/b.json.gz")).unwrap(),
            b"one"
        );
    }
}

//! A local folder standing in for NetCarrots' server.

use std::io::Read;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use domain::loyalty::ports::{FileDrop, TransferError};

/// A local folder standing in for the server: files land in `dir`,
/// members files are read from `dir/return`.
pub struct LocalDrop {
    dir: PathBuf,
}

impl LocalDrop {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, name: &str) -> Result<PathBuf, TransferError> {
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(TransferError::Refused(format!("bad file name {name:?}")));
        }
        Ok(self.dir.join(name))
    }
}

fn io(e: std::io::Error) -> TransferError {
    TransferError::Unavailable(e.to_string())
}

fn ensure_dir(d: &Path) -> Result<(), TransferError> {
    std::fs::create_dir_all(d).map_err(io)
}

#[async_trait]
impl FileDrop for LocalDrop {
    async fn exists(&self, name: &str) -> Result<bool, TransferError> {
        Ok(self.path(name)?.is_file())
    }

    async fn upload(&self, name: &str, bytes: &[u8]) -> Result<(), TransferError> {
        ensure_dir(&self.dir)?;
        std::fs::write(self.path(name)?, bytes).map_err(io)
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), TransferError> {
        std::fs::rename(self.path(from)?, self.path(to)?).map_err(io)
    }

    async fn list_returns(&self) -> Result<Vec<String>, TransferError> {
        let dir = self.dir.join("return");
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(e)),
        };
        let mut names = Vec::new();
        for e in entries {
            let e = e.map_err(io)?;
            if e.file_type().map_err(io)?.is_file() {
                names.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    async fn open_return(&self, name: &str) -> Result<Box<dyn Read + Send>, TransferError> {
        let path = self
            .dir
            .join("return")
            .join(self.path(name)?.file_name().unwrap_or_default());
        Ok(Box::new(std::fs::File::open(path).map_err(io)?))
    }

    async fn archive_return(&self, name: &str) -> Result<(), TransferError> {
        let ret = self.dir.join("return");
        ensure_dir(&ret.join("processed"))?;
        std::fs::rename(ret.join(name), ret.join("processed").join(name)).map_err(io)
    }
}

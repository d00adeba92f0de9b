//! Crash-safe writes: every artifact reaches its final name complete or not at all.
//!
//! A file is written to a temporary name in the SAME directory (so the rename cannot cross a
//! filesystem and the temp file lives on the output volume, which a scratch image needs),
//! flushed with fsync, renamed over the final name, and the directory is fsynced so the rename
//! itself survives a power cut. Temp names start with [`TEMP_PREFIX`]; readers ignore them and
//! writers sweep them.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Prefix of in-progress files. Never part of a marker's file list.
pub const TEMP_PREFIX: &str = ".tmp-";

/// A file being written; becomes visible at its final path only on [`AtomicFile::commit`].
/// Dropped without commit, the temp file is removed.
pub struct AtomicFile {
    temp: tempfile::NamedTempFile,
    target: PathBuf,
}

impl AtomicFile {
    /// Starts writing `target`, creating its parent directories.
    pub fn create(target: &Path) -> Result<AtomicFile> {
        let dir = parent_of(target)?;
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        let temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(dir)
            .map_err(|e| Error::io("create a temporary file in", dir, e))?;
        Ok(AtomicFile {
            temp,
            target: target.to_path_buf(),
        })
    }

    /// The open temp file, for streaming writes.
    pub fn file(&mut self) -> &mut File {
        self.temp.as_file_mut()
    }

    /// The temp file's path (e.g. to hand to a tool that writes by path).
    pub fn temp_path(&self) -> &Path {
        self.temp.path()
    }

    /// Flushes, renames into place and makes the rename durable.
    pub fn commit(self) -> Result<()> {
        let target = self.target;
        self.temp
            .as_file()
            .sync_all()
            .map_err(|e| Error::io("flush", &target, e))?;
        self.temp
            .persist(&target)
            .map_err(|e| Error::io("rename into place", &target, e.error))?;
        sync_dir(parent_of(&target)?)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.temp.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.temp.flush()
    }
}

/// Writes `bytes` to `target` atomically.
pub fn write_atomic(target: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(target)?;
    file.write_all(bytes)
        .map_err(|e| Error::io("write", target, e))?;
    file.commit()
}

/// Removes `path` durably (a marker is withdrawn before the files it vouches for change).
/// A missing file is not an error.
pub fn remove_durably(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_dir(parent_of(path)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

/// Deletes temp files left in `dir` (not recursive) by a killed writer.
pub fn sweep_temp_files(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        }
    }
    Ok(())
}

/// fsync of a directory, which makes renames and removals in it durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync directory", dir, e))
}

fn parent_of(path: &Path) -> Result<&Path> {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| Error::internal(format!("{} has no parent directory", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_writes_leave_nothing_and_commit_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub/report.md");
        write_atomic(&target, b"first").unwrap();
        {
            let mut f = AtomicFile::create(&target).unwrap();
            f.write_all(b"second, never committed").unwrap();
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"first");
        let leftovers: Vec<_> = std::fs::read_dir(target.parent().unwrap())
            .unwrap()
            .collect();
        assert_eq!(leftovers.len(), 1, "temp file was not removed");
        write_atomic(&target, b"third").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"third");
    }

    #[test]
    fn sweep_removes_only_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".tmp-abc"), b"x").unwrap();
        std::fs::write(dir.path().join("keep.md"), b"x").unwrap();
        sweep_temp_files(dir.path()).unwrap();
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["keep.md".to_string()]);
    }
}

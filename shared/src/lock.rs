//! One writer per company and stage on a shared tree (SPEC §4.4).
//!
//! Two runs for the same company must not interleave writes to the same stage. The lock is an
//! OS file lock (`flock`, through `std::fs::File::try_lock`) on `<slug>/.locks/<stage>.lock` in the
//! outputs root: the kernel releases it when the holder exits, even when killed, so a crash never
//! leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};

use crate::error::{Error, Result};
use crate::layout::{CompanyDir, Stage};

/// Held while a job writes a stage; released on drop.
#[derive(Debug)]
pub struct StageLock {
    _file: File,
}

impl StageLock {
    /// Takes the lock without waiting. If another process holds it, fails with a Busy error that
    /// says who holds it (the holder writes its pid and run id into the file).
    pub fn acquire(dir: &CompanyDir, stage: Stage, run_id: &str) -> Result<StageLock> {
        let path = dir.lock_file(stage);
        let parent = path.parent().unwrap_or(dir.root());
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::io("create lock directory", parent, e))?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("open lock file", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(Error::busy(format!(
                    "another `{}` run for {} is writing this stage ({}); wait for it to finish, then retry",
                    stage.job(),
                    dir.slug(),
                    holder.trim()
                )));
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("lock", &path, e)),
        }
        let holder = format!("pid {} run {run_id}", std::process::id());
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(holder.as_bytes()))
            .map_err(|e| Error::io("write lock file", &path, e))?;
        Ok(StageLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_writer_is_refused_until_the_first_releases() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CompanyDir::new(tmp.path(), "acme");
        let first = StageLock::acquire(&dir, Stage::Data, "run-a").unwrap();
        let err = StageLock::acquire(&dir, Stage::Data, "run-b").unwrap_err();
        assert_eq!(err.exit_code(), 6);
        assert!(err.to_string().contains("run run-a"), "{err}");
        // Other stages and other companies are independent.
        let _vectors = StageLock::acquire(&dir, Stage::Vectors, "run-b").unwrap();
        let _other =
            StageLock::acquire(&CompanyDir::new(tmp.path(), "other"), Stage::Data, "run-b")
                .unwrap();
        drop(first);
        StageLock::acquire(&dir, Stage::Data, "run-b").unwrap();
    }
}

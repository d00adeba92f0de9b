//! The run's progress file, `vector_ids/progress_<run_id>.json`: every file uploaded and the
//! vector store created so far, rewritten atomically after each change. A run killed at any
//! moment resumes from it without uploading a document twice, and `--cleanup` starts from it.
//! What a kill keeps out of it (the store created just before, the upload in flight) is found
//! at OpenAI by the store's metadata and the upload's name and size.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shared::layout::CompanyDir;
use shared::{Error, Result};

/// A document uploaded to the Files API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uploaded {
    pub file_id: String,
    /// Of the content uploaded: a changed document is uploaded again.
    pub sha256: String,
    pub filename: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub run_id: String,
    /// When the run first started uploading (Unix seconds): files uploaded since then under a
    /// document's name may be that run's, lost when it was killed.
    #[serde(default)]
    pub started_at: u64,
    #[serde(default)]
    pub vector_store_id: Option<String>,
    /// Document path (`data/...`) → its upload.
    #[serde(default)]
    pub files: BTreeMap<String, Uploaded>,
}

/// Where the progress of `run_id` is kept.
pub fn path(out: &CompanyDir, run_id: &str) -> PathBuf {
    out.vector_ids_dir().join(format!("progress_{run_id}.json"))
}

impl Progress {
    /// The saved progress, or a fresh one when there is none.
    pub fn load(path: &Path, run_id: &str) -> Result<Progress> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::storage(format!(
                    "progress file {} is unreadable ({e}); delete it to start over (files it lists stay \
                     in OpenAI until deleted)",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let started_at = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |elapsed| elapsed.as_secs());
                Ok(Progress { run_id: run_id.to_string(), started_at, ..Progress::default() })
            }
            Err(e) => Err(Error::io("read", path, e)),
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::internal(format!("cannot encode progress: {e}")))?;
        shared::atomic::write_atomic(path, &json)
    }
}

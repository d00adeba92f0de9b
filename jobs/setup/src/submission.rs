//! `debug/submission_<ts>_<run_id>.json`: the run's inputs as received and as resolved, and the
//! document source, so anyone can see later exactly what a run was asked to do.

use std::path::PathBuf;

use serde::Serialize;
use shared::inputs::Resolution;

/// Where the documents came from.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceInfo {
    Drive {
        link: String,
        id: String,
        /// The linked item's name and type, as Drive reported them.
        name: Option<String>,
        mime_type: Option<String>,
    },
    Local {
        dir: PathBuf,
    },
    None,
}

impl SourceInfo {
    /// `drive`, `local` or `none` (the `source` of `DataDetails` and of each origin).
    pub fn kind(&self) -> &'static str {
        match self {
            SourceInfo::Drive { .. } => "drive",
            SourceInfo::Local { .. } => "local",
            SourceInfo::None => "none",
        }
    }
}

/// The submission file's content.
#[derive(Debug, Clone, Serialize)]
pub struct Submission<'a> {
    pub run_id: &'a str,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub job: &'static str,
    pub job_version: &'static str,
    #[serde(flatten)]
    pub resolution: &'a Resolution,
    pub source: &'a SourceInfo,
}

//! The typed content of what one job hands the next, beyond the generic marker: so producer and
//! consumer agree at compile time on field names.
//!
//! - `data/.ready` (setup → vectorize, pipeline): each [`crate::markers::FileRecord`] of a document
//!   carries a [`DocumentOrigin`]; `details` is a [`DataDetails`].
//! - `vector_ids/vector_<ts>.json` (vectorize → pipeline): a [`VectorRecord`], listed by
//!   `vector_ids/.ready` whose `details` repeats it.
//! - `final/FINAL_REPORT_<slug>_<ts>.ready` (pipeline → upload): lists the report; `details` is a
//!   [`FinalDetails`].
//! - `final/upload_receipt_<run_id>.json` (upload's own marker): an [`UploadReceipt`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where a document in `data/` came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentOrigin {
    /// `drive` or `local`.
    pub source: String,
    /// The name the document had at its source (before sanitising).
    pub original_name: String,
    /// The source path: the Drive folder path, or the path under `--source-dir`.
    pub original_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drive_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5_checksum: Option<String>,
    /// The format a Google-native file was exported as (e.g. `text/markdown`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_format: Option<String>,
    /// For a table converted to Markdown: the sheet it came from, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
}

/// A document that was not made ready for indexing, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedDocument {
    pub original_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drive_id: Option<String>,
    pub reason: String,
}

/// `details` of `data/.ready`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataDetails {
    /// Relative path of the submission file this run used (also listed in `files`).
    pub submission: String,
    /// `drive`, `local` or `none`.
    pub source: String,
    #[serde(default)]
    pub skipped: Vec<SkippedDocument>,
}

/// One document in the vector store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedFile {
    /// The document's path relative to the company directory (`data/...`).
    pub path: String,
    pub file_id: String,
    /// The filename it was uploaded under: what model citations name.
    pub filename: String,
    /// `completed`, `failed` or `cancelled`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// `vector_ids/vector_<ts>.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VectorRecord {
    pub run_id: String,
    /// `None` when the data set was empty: the pipeline then works from the profile alone.
    pub vector_store_id: Option<String>,
    pub files: Vec<IndexedFile>,
    /// Counts by status (`completed`, `failed`, `cancelled`, `total`).
    pub counts: BTreeMap<String, u64>,
}

/// `details` of the final marker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FinalDetails {
    /// Relative path of the final report (also listed in `files`).
    pub report: String,
    pub model_set: String,
    pub use_cases_count: u32,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
}

/// `final/upload_receipt_<run_id>.json`: upload's marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadReceipt {
    pub run_id: String,
    pub slug: String,
    /// Relative path of the report that was uploaded.
    pub report: String,
    pub folder_id: String,
    pub file_id: String,
    pub name: String,
    pub web_view_link: String,
    pub bytes: u64,
    pub sha256: String,
    pub uploaded_at: chrono::DateTime<chrono::Utc>,
}

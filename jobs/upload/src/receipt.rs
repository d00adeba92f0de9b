//! `final/upload_receipt_<run_id>.json`: upload's marker. It is written last and atomically, once
//! the report is in Drive, and withdrawn before the Drive file it names is changed, so a receipt
//! on disk always describes a finished upload.

use std::path::Path;

use shared::records::UploadReceipt;
use shared::{Error, Result};

/// The receipt at `path`, if there is a readable one. An unreadable receipt is treated as absent
/// (the upload is then checked against Drive and redone if needed), with a warning.
pub fn read(path: &Path) -> Option<UploadReceipt> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!("ignoring upload receipt {}: {e}", path.display());
            return None;
        }
    };
    match serde_json::from_slice(&bytes) {
        Ok(receipt) => Some(receipt),
        Err(e) => {
            tracing::warn!(
                "ignoring upload receipt {}: not a valid receipt ({e})",
                path.display()
            );
            None
        }
    }
}

/// Writes the receipt atomically.
pub fn write(path: &Path, receipt: &UploadReceipt) -> Result<()> {
    let mut json = serde_json::to_vec_pretty(receipt)
        .map_err(|e| Error::internal(format!("cannot encode the upload receipt: {e}")))?;
    json.push(b'\n');
    shared::atomic::write_atomic(path, &json)
}

//! `--source-dir`: documents from a local directory (the same preprocessing as Drive's).
//!
//! The walk is sorted so that the listing, the fingerprint and duplicate numbering are the same
//! on every run. Hidden entries (`.DS_Store`, `.git`, …) are not documents. Symbolic links to
//! directories are not followed (a link cycle would never end).

use std::path::Path;

use serde_json::json;
use shared::{Error, Result};

use super::{Content, Document, Folder, Listing, ROOT};

/// Lists every file below `dir`.
pub fn list(dir: &Path) -> Result<Listing> {
    let meta = std::fs::metadata(dir).map_err(|e| {
        Error::bad_input(format!(
            "cannot read --source-dir {} ({e}); pass an existing directory",
            dir.display()
        ))
    })?;
    if !meta.is_dir() {
        return Err(Error::bad_input(format!(
            "--source-dir {} is not a directory; pass the folder that holds the documents",
            dir.display()
        )));
    }
    let mut listing = Listing::default();
    walk(dir, "", ROOT, &mut listing)?;
    Ok(listing)
}

fn walk(dir: &Path, prefix: &str, parent: &str, listing: &mut Listing) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::bad_input(format!(
            "cannot list {} ({e}); check its permissions",
            dir.display()
        ))
    })?;
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let relative = format!("{prefix}{name}");
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            listing.folders.push(Folder {
                id: relative.clone(),
                parent: parent.to_string(),
                name,
            });
            walk(&path, &format!("{relative}/"), &relative, listing)?;
        } else if let Some(meta) = std::fs::metadata(&path).ok().filter(|m| m.is_file()) {
            listing.documents.push(Document {
                id: relative.clone(),
                parent: parent.to_string(),
                name,
                original_path: relative,
                size: Some(meta.len()),
                content: Content::Local(path),
            });
        }
    }
    Ok(())
}

/// What identifies the local documents' content for the fingerprint: path, size, mtime.
pub fn fingerprint_entries(listing: &Listing) -> Vec<serde_json::Value> {
    listing
        .documents
        .iter()
        .map(|doc| {
            let modified = match &doc.content {
                Content::Local(path) => std::fs::metadata(path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_nanos().to_string()),
                Content::Drive(_) => None,
            };
            json!([doc.original_path, doc.size, modified])
        })
        .collect()
}

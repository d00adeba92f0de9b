//! The Drive source: a folder walked recursively (sub-folders become sub-directories), or a
//! single file. Paging, shared drives and trashed items are handled by `drive_client`.

use std::collections::{HashSet, VecDeque};

use drive_client::{DriveClient, DriveItem};
use serde_json::json;
use shared::{Error, Result};

use super::{Content, Document, Folder, Listing, ROOT};

/// The linked item and everything below it.
pub struct DriveListing {
    pub root: DriveItem,
    pub listing: Listing,
}

/// Lists the folder or file `id`.
pub async fn list(client: &DriveClient, id: &str) -> Result<DriveListing> {
    let root = client.get_metadata(id).await?;
    if root.trashed {
        return Err(Error::bad_input(format!(
            "the Drive item {id} ({:?}) is in the trash: restore it or link another folder",
            root.name
        )));
    }
    let mut listing = Listing::default();
    if !root.is_folder() {
        listing.documents.push(document(root.clone(), ROOT, ""));
        return Ok(DriveListing { root, listing });
    }
    let mut seen: HashSet<String> = HashSet::from([root.id.clone()]);
    let mut queue: VecDeque<(String, String, String)> =
        VecDeque::from([(root.id.clone(), ROOT.to_string(), String::new())]);
    while let Some((folder_id, key, prefix)) = queue.pop_front() {
        for child in client.list_children(&folder_id).await? {
            if child.is_folder() {
                // A folder reachable twice (Drive allows several parents) is walked once.
                if seen.insert(child.id.clone()) {
                    let path = format!("{prefix}{}/", child.name);
                    listing.folders.push(Folder {
                        id: child.id.clone(),
                        parent: key.clone(),
                        name: child.name.clone(),
                    });
                    queue.push_back((child.id.clone(), child.id.clone(), path));
                }
            } else {
                listing.documents.push(document(child, &key, &prefix));
            }
        }
    }
    Ok(DriveListing { root, listing })
}

fn document(item: DriveItem, parent: &str, prefix: &str) -> Document {
    Document {
        id: item.id.clone(),
        parent: parent.to_string(),
        name: item.name.clone(),
        original_path: format!("{prefix}{}", item.name),
        size: item.size,
        content: Content::Drive(item),
    }
}

/// What identifies the Drive content for the fingerprint: every item's id, path, modifiedTime
/// and md5Checksum (Google-native files have no checksum; their modifiedTime changes on edit).
pub fn fingerprint_entries(listing: &Listing) -> Vec<serde_json::Value> {
    let mut entries: Vec<serde_json::Value> = listing
        .documents
        .iter()
        .filter_map(|doc| match &doc.content {
            Content::Drive(item) => Some(json!([
                item.id,
                doc.original_path,
                item.modified_time,
                item.md5_checksum,
                item.size
            ])),
            Content::Local(_) => None,
        })
        .collect();
    entries.sort_by_key(|entry| entry.to_string());
    entries
}

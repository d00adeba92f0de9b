//! The Drive tree's items and how they look on the wire (the v3 `File` resource).

use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use md5::{Digest as _, Md5};
use serde_json::{Value, json};
use sha2::Sha256;

pub(crate) const FOLDER_MIME: &str = "application/vnd.google-apps.folder";
pub(crate) const DOC_MIME: &str = "application/vnd.google-apps.document";
pub(crate) const SHEET_MIME: &str = "application/vnd.google-apps.spreadsheet";
pub(crate) const SLIDES_MIME: &str = "application/vnd.google-apps.presentation";
const NATIVE_PREFIX: &str = "application/vnd.google-apps.";

/// What the service account may do with an item (set by the seeding folder suffixes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Writable,
    ReadOnly,
    /// Not shared with the service account: every call answers 404 as for a missing file.
    Hidden,
}

impl Access {
    fn as_str(self) -> &'static str {
        match self {
            Access::Writable => "writable",
            Access::ReadOnly => "readonly",
            Access::Hidden => "unshared",
        }
    }
}

/// One Drive item. `content` holds the bytes of a binary file; for Google-native files it holds
/// what exports are made from: a Doc's Markdown text, a Sheet's XLSX, a Slides deck's PDF.
#[derive(Clone, Debug)]
pub(crate) struct DriveFile {
    pub id: String,
    pub name: String,
    pub mime_type: String,
    pub parents: Vec<String>,
    pub content: Vec<u8>,
    pub app_properties: BTreeMap<String, String>,
    pub trashed: bool,
    pub drive_id: Option<String>,
    pub access: Access,
    pub created_time: DateTime<Utc>,
    pub modified_time: DateTime<Utc>,
    pub version: u64,
}

impl DriveFile {
    pub(crate) fn new(id: &str, name: &str, mime_type: &str, content: Vec<u8>) -> Self {
        let now = Utc::now();
        DriveFile {
            id: id.to_string(),
            name: name.to_string(),
            mime_type: mime_type.to_string(),
            parents: Vec::new(),
            content,
            app_properties: BTreeMap::new(),
            trashed: false,
            drive_id: None,
            access: Access::Writable,
            created_time: now,
            modified_time: now,
            version: 1,
        }
    }

    pub(crate) fn is_folder(&self) -> bool {
        self.mime_type == FOLDER_MIME
    }

    /// Google-native (Docs Editors files and folders): no bytes to download, no md5, no size.
    pub(crate) fn is_native(&self) -> bool {
        self.mime_type.starts_with(NATIVE_PREFIX)
    }

    /// A content change as Drive records it: new version, new modifiedTime (strictly later, so a
    /// client comparing timestamps always notices).
    pub(crate) fn set_content(&mut self, content: Vec<u8>) {
        self.content = content;
        self.touch();
    }

    /// Records a change of metadata or content.
    pub(crate) fn touch(&mut self) {
        let now = Utc::now();
        self.modified_time = if now > self.modified_time {
            now
        } else {
            self.modified_time + chrono::Duration::milliseconds(1)
        };
        self.version += 1;
    }

    pub(crate) fn md5_hex(&self) -> String {
        hex::encode(Md5::digest(&self.content))
    }

    pub(crate) fn web_view_link(&self) -> String {
        let id = &self.id;
        match self.mime_type.as_str() {
            FOLDER_MIME => format!("https://drive.google.com/drive/folders/{id}"),
            DOC_MIME => format!("https://docs.google.com/document/d/{id}/edit?usp=drivesdk"),
            SHEET_MIME => format!("https://docs.google.com/spreadsheets/d/{id}/edit?usp=drivesdk"),
            SLIDES_MIME => {
                format!("https://docs.google.com/presentation/d/{id}/edit?usp=drivesdk")
            }
            _ => format!("https://drive.google.com/file/d/{id}/view?usp=drivesdk"),
        }
    }

    /// The full v3 `File` resource; callers cut it down with the request's `fields`.
    pub(crate) fn resource(&self) -> Value {
        let mut value = json!({
            "kind": "drive#file",
            "id": self.id,
            "name": self.name,
            "mimeType": self.mime_type,
            "parents": self.parents,
            "trashed": self.trashed,
            "explicitlyTrashed": self.trashed,
            "createdTime": rfc3339(self.created_time),
            "modifiedTime": rfc3339(self.modified_time),
            "version": self.version.to_string(),
            "webViewLink": self.web_view_link(),
            "appProperties": self.app_properties,
            "capabilities": {
                "canDownload": !self.is_native(),
                "canEdit": self.access == Access::Writable,
                "canAddChildren": self.is_folder() && self.access == Access::Writable,
                "canListChildren": self.is_folder(),
            },
        });
        if !self.is_native() {
            // Drive sends int64 values as JSON strings.
            value["size"] = json!(self.content.len().to_string());
            value["md5Checksum"] = json!(self.md5_hex());
            value["webContentLink"] = json!(format!(
                "https://drive.google.com/uc?id={}&export=download",
                self.id
            ));
        }
        if let Some(drive_id) = &self.drive_id {
            value["driveId"] = json!(drive_id);
        }
        value
    }

    /// The test-facing view: every field a test compares, whatever Drive would show.
    pub(crate) fn dump(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "mimeType": self.mime_type,
            "parents": self.parents,
            "size": self.content.len(),
            "md5Checksum": self.md5_hex(),
            "appProperties": self.app_properties,
            "trashed": self.trashed,
            "driveId": self.drive_id,
            "access": self.access.as_str(),
            "modifiedTime": rfc3339(self.modified_time),
            "version": self.version,
        })
    }
}

pub(crate) fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A Drive-like id (33 characters of `[A-Za-z0-9_-]`, starting with `1`) derived from `seed`,
/// so the same seed always gives the same id.
pub(crate) fn drive_id_from(seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
    format!("1{}", &encoded[..32])
}

/// The id of the `sequence`-th item created through the API or a test hook.
pub(crate) fn created_id(sequence: u64) -> String {
    drive_id_from(&format!("created:{sequence}"))
}

//! Google emulation: the OAuth2 token endpoint that service accounts use, and the part of
//! Drive v3 the jobs use (list, get, download, export, create, update, resumable uploads).
//!
//! State lives in memory behind one mutex: a Drive tree (seeded from a local folder, see
//! `SEEDING.md`), the registered service accounts with their public keys, the issued access
//! tokens with their scopes, and the resumable upload sessions in progress. The real client
//! crates (google-drive3 + yup-oauth2, google-api-python-client + google-auth) talk to it
//! unchanged; only the base URLs and the key file's `token_uri` differ.

mod admin;
mod error;
mod export;
mod fields;
mod files;
mod oauth;
mod query;
mod seed;
mod tree;
mod upload;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use serde_json::{Value, json};

use oauth::{IssuedToken, ServiceAccount};
use tree::{Access, DriveFile, FOLDER_MIME};
use upload::UploadSession;

/// In-memory Google state: service accounts, issued tokens, the Drive tree and upload sessions.
pub struct GoogleState {
    base_url: String,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    accounts: BTreeMap<String, ServiceAccount>,
    tokens: HashMap<String, IssuedToken>,
    files: BTreeMap<String, DriveFile>,
    uploads: HashMap<String, UploadSession>,
    tokens_issued: u64,
    token_requests_rejected: u64,
    /// Feeds the ids of created files and tokens, so they are unique and reproducible.
    sequence: u64,
}

impl Inner {
    fn next_sequence(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }
}

impl GoogleState {
    /// `base_url` is the emulator's own "http://ADDR" (no trailing slash): token_uri = base_url + "/token".
    pub fn new(base_url: &str) -> Arc<GoogleState> {
        Arc::new(GoogleState {
            base_url: base_url.trim_end_matches('/').to_string(),
            inner: Mutex::new(Inner::default()),
        })
    }

    /// The OAuth2 token endpoint written into service account keys.
    pub fn token_uri(&self) -> String {
        format!("{}/token", self.base_url)
    }

    /// Seeds a folder tree from a local directory (naming convention in SEEDING.md); returns the
    /// Drive id of the folder made for `dir` itself.
    pub fn seed_from_dir(&self, dir: &Path) -> std::io::Result<String> {
        let seeded = seed::read_tree(dir)?;
        let mut inner = self.lock();
        let root_id = seeded.root_id.clone();
        for file in seeded.files {
            inner.files.insert(file.id.clone(), file);
        }
        Ok(root_id)
    }

    /// Creates an empty folder (e.g. the final-report folder); returns its id.
    pub fn create_folder(&self, name: &str, parent: Option<&str>) -> String {
        let mut inner = self.lock();
        let parent_file = parent.and_then(|id| inner.files.get(id));
        let drive_id = parent_file.and_then(|p| p.drive_id.clone());
        let access = parent_file.map_or(Access::Writable, |p| p.access);
        let id = tree::created_id(inner.next_sequence());
        let mut folder = DriveFile::new(&id, name, FOLDER_MIME, Vec::new());
        folder.parents = parent.map(str::to_string).into_iter().collect();
        folder.drive_id = drive_id;
        folder.access = access;
        inner.files.insert(id.clone(), folder);
        id
    }

    /// Adds a binary file under `parent` (any name, even one no file system allows); returns
    /// its id, or `None` when the parent does not exist.
    pub fn add_file(
        &self,
        parent: &str,
        name: &str,
        mime_type: &str,
        content: Vec<u8>,
    ) -> Option<String> {
        let mut inner = self.lock();
        let parent_file = inner.files.get(parent)?;
        let drive_id = parent_file.drive_id.clone();
        let access = parent_file.access;
        let id = tree::created_id(inner.next_sequence());
        let mut file = DriveFile::new(&id, name, mime_type, content);
        file.parents = vec![parent.to_string()];
        file.drive_id = drive_id;
        file.access = access;
        inner.files.insert(id.clone(), file);
        Some(id)
    }

    /// Replaces a file's content as if someone edited it in Drive: md5Checksum, size, version
    /// and modifiedTime change. Returns false when there is no such file.
    pub fn replace_content(&self, id: &str, content: Vec<u8>) -> bool {
        let mut inner = self.lock();
        match inner.files.get_mut(id) {
            Some(file) => {
                file.set_content(content);
                true
            }
            None => false,
        }
    }

    /// The stored bytes of a file (for Google Docs: the document's Markdown text).
    pub fn file_bytes(&self, id: &str) -> Option<Vec<u8>> {
        self.lock().files.get(id).map(|f| f.content.clone())
    }

    /// The id of the child of `parent` named `name` (trashed or not), if any.
    pub fn find_child(&self, parent: &str, name: &str) -> Option<String> {
        self.lock()
            .files
            .values()
            .find(|f| f.name == name && f.parents.iter().any(|p| p == parent))
            .map(|f| f.id.clone())
    }

    /// Generates an RSA service account, registers its public key, writes the key JSON
    /// (type, project_id, private_key_id, private_key, client_email, client_id, token_uri, ...).
    pub fn write_service_account_key(&self, path: &Path) -> std::io::Result<()> {
        let number = self.lock().next_sequence();
        let (account, key_json) = oauth::new_service_account(number, &self.token_uri())?;
        let text = serde_json::to_string_pretty(&key_json).map_err(std::io::Error::other)?;
        oauth::write_private_file(path, text.as_bytes())?;
        self.lock().accounts.insert(account.email.clone(), account);
        Ok(())
    }

    /// Revokes a service account: its JWTs are refused and its access tokens stop working.
    /// Returns false when no such account is registered.
    pub fn revoke_service_account(&self, email: &str) -> bool {
        let mut inner = self.lock();
        match inner.accounts.get_mut(email) {
            Some(account) => {
                account.revoked = true;
                inner.tokens.retain(|_, token| token.email != email);
                true
            }
            None => false,
        }
    }

    /// Everything a test asserts on: the Drive tree with appProperties, issued tokens count, etc.
    pub fn dump(&self) -> Value {
        let inner = self.lock();
        let accounts: Vec<Value> = inner
            .accounts
            .values()
            .map(|a| json!({ "client_email": a.email, "revoked": a.revoked }))
            .collect();
        let files: Vec<Value> = inner.files.values().map(DriveFile::dump).collect();
        json!({
            "token_uri": self.token_uri(),
            "service_accounts": accounts,
            "tokens_issued": inner.tokens_issued,
            "live_tokens": oauth::token_scopes(&inner.tokens),
            "token_requests_rejected": inner.token_requests_rejected,
            "uploads_in_progress": inner.uploads.len(),
            "files": files,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters to an emulator, so a poisoned lock is simply taken over.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// All Google routes: /token, /drive/v3/..., /upload/drive/v3/..., /resumable/upload/drive/v3/...
/// and the test hooks under /_admin/google/... . State already applied.
pub fn router(state: Arc<GoogleState>) -> Router {
    Router::new()
        .merge(oauth::routes())
        .merge(files::routes())
        .merge(upload::routes())
        .merge(admin::routes())
        .with_state(state)
}

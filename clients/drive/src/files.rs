//! The Drive operations `setup` and `upload` share: listing a folder page by page, reading
//! metadata, and streaming downloads and exports to disk.
//!
//! Downloads never hold a whole file in memory: the body is written chunk by chunk to a temp file
//! next to the target ([`shared::atomic::AtomicFile`]) that is renamed into place only when
//! complete and, for binary files, only when its MD5 matches Drive's `md5Checksum`. A body that
//! breaks off mid-way is fetched again with the same backoff as the request itself.

use std::path::Path;
use std::time::Duration;

use google_drive3::api::File;
use google_drive3::common::Response;
use http_body_util::BodyExt;
use md5::{Digest, Md5};
use shared::atomic::AtomicFile;
use shared::{Error, Result};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::retry::RetryDelegate;
use crate::{DriveClient, DriveFailure};

/// The mime type of folders.
pub const FOLDER_MIME: &str = "application/vnd.google-apps.folder";
/// The properties every helper asks for.
pub const ITEM_FIELDS: &str = "id,name,mimeType,modifiedTime,md5Checksum,size,trashed,driveId";
/// `fields` of a listing: the item properties plus the paging token.
pub const LIST_FIELDS: &str =
    "nextPageToken,files(id,name,mimeType,modifiedTime,md5Checksum,size,trashed,driveId)";
/// Drive's largest page.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// A file or folder as the helpers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveItem {
    pub id: String,
    pub name: String,
    pub mime_type: String,
    /// RFC 3339, as Drive sent it.
    pub modified_time: Option<String>,
    /// Only binary files have one; Google-native files do not.
    pub md5_checksum: Option<String>,
    pub size: Option<u64>,
    pub trashed: bool,
    /// The shared drive the item lives in, if any.
    pub drive_id: Option<String>,
}

impl DriveItem {
    fn from_file(file: File) -> Option<DriveItem> {
        Some(DriveItem {
            id: file.id?,
            name: file.name.unwrap_or_default(),
            mime_type: file.mime_type.unwrap_or_default(),
            modified_time: file
                .modified_time
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            md5_checksum: file.md5_checksum,
            size: file.size.and_then(|s| u64::try_from(s).ok()),
            trashed: file.trashed.unwrap_or(false),
            drive_id: file.drive_id,
        })
    }

    pub fn is_folder(&self) -> bool {
        self.mime_type == FOLDER_MIME
    }

    /// Docs, Sheets, Slides and other editor files: they have no bytes of their own and must be
    /// exported.
    pub fn is_google_native(&self) -> bool {
        self.mime_type.starts_with("application/vnd.google-apps.") && !self.is_folder()
    }
}

/// What a completed download or export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    pub bytes: u64,
    /// Lowercase hex MD5 of the bytes written.
    pub md5: String,
}

/// The result of an export: Drive refuses exports over its 10 MB cap, which is a per-file fact
/// (the caller may try another format), not a failure of the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportOutcome {
    Exported(Downloaded),
    TooLarge,
}

/// What kind of body to fetch.
enum Fetch<'a> {
    Media,
    Export { mime_type: &'a str },
}

/// A failed attempt, before it becomes a one-line error.
pub(crate) enum Failed {
    Drive(google_drive3::Error),
    Transient(String),
}

impl DriveClient {
    /// Metadata of one file or folder (shared drives included).
    pub async fn get_metadata(&self, id: &str) -> Result<DriveItem> {
        let (_, file) = self
            .call("read Drive metadata of", Some(id), async |dlg| {
                self.hub()
                    .files()
                    .get(id)
                    .supports_all_drives(true)
                    .param("fields", ITEM_FIELDS)
                    .add_scope(self.scope().scope())
                    .delegate(dlg)
                    .doit()
                    .await
            })
            .await?;
        DriveItem::from_file(file).ok_or_else(|| {
            Error::external(format!(
                "Google Drive sent metadata of {id} without an id; try again later"
            ))
        })
    }

    /// Every child of a folder that is not trashed, across all pages, in Drive's order. Items of
    /// shared drives are included.
    pub async fn list_children(&self, folder_id: &str) -> Result<Vec<DriveItem>> {
        let query = format!(
            "'{}' in parents and trashed = false",
            folder_id.replace('\\', "\\\\").replace('\'', "\\'")
        );
        let mut items = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let token = page_token.clone();
            let (_, list) = self
                .call("list Drive folder", Some(folder_id), async |dlg| {
                    let mut call = self
                        .hub()
                        .files()
                        .list()
                        .q(&query)
                        .supports_all_drives(true)
                        .include_items_from_all_drives(true)
                        .page_size(self.page_size as i32)
                        .param("fields", LIST_FIELDS)
                        .add_scope(self.scope().scope())
                        .delegate(dlg);
                    if let Some(token) = &token {
                        call = call.page_token(token);
                    }
                    call.doit().await
                })
                .await?;
            items.extend(
                list.files
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(DriveItem::from_file)
                    .filter(|i| !i.trashed),
            );
            match list.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) => page_token = Some(next),
                None => return Ok(items),
            }
        }
    }

    /// Streams a binary file's content into `writer` (one attempt at the body; the request
    /// itself is retried). Prefer [`DriveClient::download_to_file`], which also retries a body
    /// that breaks off.
    pub async fn download<W: AsyncWrite + Unpin>(
        &self,
        id: &str,
        writer: &mut W,
    ) -> Result<Downloaded> {
        let what = "download Drive file";
        let response = self
            .call(what, Some(id), async |dlg| {
                self.request(&Fetch::Media, id, dlg).await
            })
            .await?;
        stream_body(response, writer, self.idle_timeout())
            .await
            .map_err(|e| e.into_error(what, id))
    }

    /// Downloads a binary file to `target` atomically: the file appears complete (and, when
    /// `expected_md5` is given, verified) or not at all. Interrupted bodies are fetched again.
    pub async fn download_to_file(
        &self,
        id: &str,
        expected_md5: Option<&str>,
        target: &Path,
    ) -> Result<Downloaded> {
        match self
            .fetch_to_file(
                "download Drive file",
                id,
                Fetch::Media,
                expected_md5,
                target,
            )
            .await?
        {
            ExportOutcome::Exported(done) => Ok(done),
            ExportOutcome::TooLarge => Err(Error::internal(format!(
                "download of {id} reported an export limit"
            ))),
        }
    }

    /// Exports a Google-native file as `mime_type` to `target` atomically.
    pub async fn export_to_file(
        &self,
        id: &str,
        mime_type: &str,
        target: &Path,
    ) -> Result<ExportOutcome> {
        self.fetch_to_file(
            "export Drive file",
            id,
            Fetch::Export { mime_type },
            None,
            target,
        )
        .await
    }

    async fn fetch_to_file(
        &self,
        what: &str,
        id: &str,
        fetch: Fetch<'_>,
        expected_md5: Option<&str>,
        target: &Path,
    ) -> Result<ExportOutcome> {
        let _permit = self.permit().await?;
        let mut delegate = RetryDelegate::new(what, &self.settings().retry);
        loop {
            let response = match self
                .attempts(&mut delegate, async |dlg| {
                    self.request(&fetch, id, dlg).await
                })
                .await
            {
                Ok(response) => response,
                Err(Failed::Drive(err)) if DriveFailure::of(&err).is_export_too_large() => {
                    return Ok(ExportOutcome::TooLarge);
                }
                Err(failed) => return Err(self.failed(what, Some(id), failed, delegate.retries())),
            };
            let mut file = AtomicFile::create(target)?;
            let handle = file
                .file()
                .try_clone()
                .map_err(|e| Error::io("write", file.temp_path(), e))?;
            let mut writer = tokio::fs::File::from_std(handle);
            let outcome = match stream_body(response, &mut writer, self.idle_timeout()).await {
                Ok(done)
                    if expected_md5.is_some_and(|want| !want.eq_ignore_ascii_case(&done.md5)) =>
                {
                    Err(format!(
                        "content MD5 {} differs from Drive's md5Checksum",
                        done.md5
                    ))
                }
                Ok(done) => Ok(done),
                Err(StreamError::Write(e)) => return Err(Error::io("write", target, e)),
                Err(StreamError::Interrupted(detail)) => Err(detail),
            };
            match outcome {
                Ok(done) => {
                    writer
                        .flush()
                        .await
                        .map_err(|e| Error::io("write", target, e))?;
                    drop(writer);
                    tokio::task::spawn_blocking(move || file.commit())
                        .await
                        .map_err(|e| Error::internal(format!("file commit task failed: {e}")))??;
                    return Ok(ExportOutcome::Exported(done));
                }
                Err(detail) => match delegate.next_wait(detail.clone(), None) {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => {
                        return Err(self.failed(
                            what,
                            Some(id),
                            Failed::Transient(detail),
                            delegate.retries(),
                        ));
                    }
                },
            }
        }
    }

    async fn request(
        &self,
        fetch: &Fetch<'_>,
        id: &str,
        dlg: &mut RetryDelegate,
    ) -> google_drive3::Result<Response> {
        let scope = self.scope().scope();
        match fetch {
            Fetch::Media => self
                .hub()
                .files()
                .get(id)
                .supports_all_drives(true)
                .param("alt", "media")
                .add_scope(scope)
                .delegate(dlg)
                .doit()
                .await
                .map(|(response, _)| response),
            Fetch::Export { mime_type } => {
                self.hub()
                    .files()
                    .export(id, mime_type)
                    .add_scope(scope)
                    .delegate(dlg)
                    .doit()
                    .await
            }
        }
    }

    fn idle_timeout(&self) -> Duration {
        crate::idle_timeout(self.settings())
    }
}

/// Why copying a body stopped.
enum StreamError {
    /// The connection broke or stalled: worth another attempt.
    Interrupted(String),
    /// The local write failed (disk full, read-only): retrying cannot help.
    Write(std::io::Error),
}

impl StreamError {
    fn into_error(self, what: &str, id: &str) -> Error {
        match self {
            StreamError::Interrupted(detail) => {
                Error::external(format!("{what} {id} broke off ({detail}); try again later"))
            }
            StreamError::Write(e) => {
                Error::storage(format!("{what} {id}: cannot write the content: {e}"))
            }
        }
    }
}

/// Copies a response body to `writer` frame by frame, hashing as it goes. A frame that does not
/// arrive within `idle` fails the attempt.
async fn stream_body<W: AsyncWrite + Unpin>(
    response: Response,
    writer: &mut W,
    idle: Duration,
) -> std::result::Result<Downloaded, StreamError> {
    let mut body = response.into_body();
    let mut hasher = Md5::new();
    let mut bytes = 0u64;
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(StreamError::Interrupted(format!("no data for {idle:?}"))),
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(StreamError::Interrupted(format!(
                    "body interrupted: {}",
                    crate::retry::describe(&e)
                )));
            }
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            hasher.update(&data);
            bytes += data.len() as u64;
            writer.write_all(&data).await.map_err(StreamError::Write)?;
        }
    }
    writer.flush().await.map_err(StreamError::Write)?;
    Ok(Downloaded {
        bytes,
        md5: hex::encode(hasher.finalize()),
    })
}

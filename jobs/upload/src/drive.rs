//! The Drive side of the upload: the destination folder checked, this run's file found by its
//! appProperties, the report created or its content updated with a resumable upload.
//!
//! Every call goes through [`DriveClient::call`] (one scope, timeouts, retries of transient
//! failures, one-line errors). The two failures a user must fix in Drive's sharing settings — the
//! folder is missing or not shared (404), or shared read-only (403) — get messages that name the
//! folder and the service account's address, and exit 2 like any unusable input.

use std::collections::HashMap;

use drive_client::{DriveClient, DriveFailure, DriveScope};
use google_drive3::api::File;
use shared::http::HttpSettings;
use shared::{Error, Result};

use crate::report::FinalReport;

/// What Drive converts an HTML upload into with `--as-google-doc`.
const GOOGLE_DOC_MIME: &str = "application/vnd.google-apps.document";
const FOLDER_MIME: &str = "application/vnd.google-apps.folder";
/// The file properties every answer carries (Drive returns only `id,name,mimeType` unless asked).
const FILE_FIELDS: &str = "id,name,mimeType,parents,trashed,size,webViewLink,appProperties";

/// The report as it goes to Drive.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The Drive file's name: the report's file name, or its title for a Google Doc.
    pub name: String,
    pub media: Vec<u8>,
    pub media_type: mime::Mime,
    pub as_google_doc: bool,
    /// `run_id`, `sha256` (of the local report) and `slug`: how a re-run finds this file.
    pub app_properties: HashMap<String, String>,
    pub sha256: String,
}

impl Upload {
    pub fn of(report: &FinalReport, as_google_doc: bool) -> Upload {
        let app_properties = HashMap::from([
            ("run_id".to_string(), report.run_id.clone()),
            ("sha256".to_string(), report.sha256.clone()),
            ("slug".to_string(), report.slug.clone()),
        ]);
        let (name, media, media_type) = if as_google_doc {
            let markdown = String::from_utf8_lossy(&report.content);
            let html = crate::render::markdown_to_html(report.title(), &markdown);
            (
                report.title().to_string(),
                html.into_bytes(),
                mime::TEXT_HTML_UTF_8,
            )
        } else {
            let markdown: mime::Mime = "text/markdown; charset=utf-8"
                .parse()
                .unwrap_or(mime::TEXT_PLAIN_UTF_8);
            (report.file_name.clone(), report.content.clone(), markdown)
        };
        Upload {
            name,
            media,
            media_type,
            as_google_doc,
            app_properties,
            sha256: report.sha256.clone(),
        }
    }

    /// How the report lands in Drive, for the plan and the logs.
    pub fn kind(&self) -> &'static str {
        if self.as_google_doc {
            "converted to a Google Doc"
        } else {
            "Markdown file"
        }
    }

    /// Whether a Drive file of this MIME type is the kind this upload makes.
    fn same_kind(&self, mime_type: Option<&str>) -> bool {
        (mime_type == Some(GOOGLE_DOC_MIME)) == self.as_google_doc
    }
}

/// A Drive file of this run, as far as upload cares.
#[derive(Debug, Clone)]
pub struct RunFile {
    pub id: String,
    pub name: String,
    pub web_view_link: String,
    /// The `sha256` appProperty: the checksum of the report it holds.
    pub sha256: Option<String>,
}

impl RunFile {
    fn of(file: File) -> Result<RunFile> {
        let id = file.id.ok_or_else(|| {
            Error::external("Google Drive answered without a file id; try again later")
        })?;
        let sha256 = file
            .app_properties
            .as_ref()
            .and_then(|p| p.get("sha256").cloned());
        Ok(RunFile {
            name: file.name.unwrap_or_default(),
            web_view_link: file
                .web_view_link
                .unwrap_or_else(|| format!("https://drive.google.com/file/d/{id}/view")),
            sha256,
            id,
        })
    }
}

/// Create a new file in the folder, or replace the content of this run's existing file.
#[derive(Debug, Clone, Copy)]
pub enum UploadTarget<'a> {
    Create,
    Update(&'a str),
}

/// A connected Drive client with write access.
pub struct Drive {
    client: DriveClient,
}

impl Drive {
    /// Checks the service account key and fetches a first token (the first network call).
    pub async fn connect() -> Result<Drive> {
        Ok(Drive {
            client: DriveClient::connect(DriveScope::Full, &HttpSettings::default()).await?,
        })
    }

    /// Whether file `file_id` still holds this upload: it exists, is not trashed, carries the
    /// same `sha256` and is of the same kind (Markdown file or Google Doc).
    pub async fn is_current(&self, file_id: &str, upload: &Upload) -> Result<bool> {
        let client = &self.client;
        let found = client
            .call("look up the uploaded report", Some(file_id), async |dlg| {
                let answer = client
                    .hub()
                    .files()
                    .get(file_id)
                    .supports_all_drives(true)
                    .param("fields", FILE_FIELDS)
                    .add_scope(client.scope().scope())
                    .delegate(dlg)
                    .doit()
                    .await;
                match answer {
                    Ok((_, file)) => Ok(Some(file)),
                    Err(err) if DriveFailure::of(&err).is_not_found() => Ok(None),
                    Err(err) => Err(err),
                }
            })
            .await?;
        Ok(found.is_some_and(|file| {
            file.trashed != Some(true)
                && upload.same_kind(file.mime_type.as_deref())
                && file.app_properties.as_ref().and_then(|p| p.get("sha256"))
                    == Some(&upload.sha256)
        }))
    }

    /// Checks that `folder_id` is a folder the service account may add files to.
    pub async fn check_folder(&self, folder_id: &str) -> Result<()> {
        let client = &self.client;
        let folder = client
            .call(
                "open the final-report folder",
                Some(folder_id),
                async |dlg| {
                    client
                        .hub()
                        .files()
                        .get(folder_id)
                        .supports_all_drives(true)
                        .param(
                            "fields",
                            "id,name,mimeType,trashed,capabilities(canAddChildren)",
                        )
                        .add_scope(client.scope().scope())
                        .delegate(dlg)
                        .doit()
                        .await
                        .map(|(_, file)| file)
                },
            )
            .await
            .map_err(|err| self.explain(err, folder_id))?;
        if folder.mime_type.as_deref() != Some(FOLDER_MIME) || folder.trashed == Some(true) {
            return Err(Error::bad_input(format!(
                "GDRIVE_FINAL_REPORT_FOLDER {folder_id} is {} not a folder: set it to the URL or id of a Drive folder",
                if folder.trashed == Some(true) {
                    "a trashed item,"
                } else {
                    "a file,"
                }
            )));
        }
        if folder.capabilities.and_then(|c| c.can_add_children) == Some(false) {
            return Err(self.read_only(folder_id));
        }
        Ok(())
    }

    /// This run's file in the folder, of the same kind as `upload`, if a previous run made one.
    pub async fn find_run_file(
        &self,
        folder_id: &str,
        run_id: &str,
        upload: &Upload,
    ) -> Result<Option<RunFile>> {
        // Folder and run ids are `[A-Za-z0-9_-]` (checked on input): no quoting needed.
        let kind = if upload.as_google_doc { "=" } else { "!=" };
        let query = format!(
            "'{folder_id}' in parents and trashed=false and mimeType {kind} '{GOOGLE_DOC_MIME}' and \
             appProperties has {{ key='run_id' and value='{run_id}' }}"
        );
        let client = &self.client;
        let list = client
            .call(
                "search the final-report folder",
                Some(folder_id),
                async |dlg| {
                    client
                        .hub()
                        .files()
                        .list()
                        .q(&query)
                        .supports_all_drives(true)
                        .include_items_from_all_drives(true)
                        .order_by("createdTime")
                        .page_size(10)
                        .param("fields", &format!("files({FILE_FIELDS})"))
                        .add_scope(client.scope().scope())
                        .delegate(dlg)
                        .doit()
                        .await
                        .map(|(_, list)| list)
                },
            )
            .await
            .map_err(|err| self.explain(err, folder_id))?;
        let mut files = list.files.unwrap_or_default().into_iter();
        let Some(first) = files.next() else {
            return Ok(None);
        };
        let others: Vec<String> = files.filter_map(|f| f.id).collect();
        if !others.is_empty() {
            tracing::warn!(
                "the folder holds more than one file of run {run_id}; updating the oldest and leaving {} alone",
                others.join(", ")
            );
        }
        RunFile::of(first).map(Some)
    }

    /// Uploads the report (resumable, `supportsAllDrives`) as a new file in `folder_id` or as the
    /// new content of an existing file, with its appProperties.
    pub async fn upload(
        &self,
        target: UploadTarget<'_>,
        folder_id: &str,
        upload: &Upload,
    ) -> Result<RunFile> {
        let client = &self.client;
        let mut metadata = File {
            name: Some(upload.name.clone()),
            app_properties: Some(upload.app_properties.clone()),
            ..File::default()
        };
        let subject = match target {
            UploadTarget::Create => {
                metadata.parents = Some(vec![folder_id.to_string()]);
                // Asking for a Google Doc makes Drive convert the HTML media into one.
                metadata.mime_type = upload.as_google_doc.then(|| GOOGLE_DOC_MIME.to_string());
                folder_id
            }
            UploadTarget::Update(file_id) => file_id,
        };
        let file = client
            .call("upload the final report", Some(subject), async |dlg| {
                let media = std::io::Cursor::new(upload.media.as_slice());
                let files = client.hub().files();
                let answer = match target {
                    UploadTarget::Create => {
                        files
                            .create(metadata.clone())
                            .supports_all_drives(true)
                            .param("fields", FILE_FIELDS)
                            .add_scope(client.scope().scope())
                            .delegate(dlg)
                            .upload_resumable(media, upload.media_type.clone())
                            .await
                    }
                    UploadTarget::Update(file_id) => {
                        files
                            .update(metadata.clone(), file_id)
                            .supports_all_drives(true)
                            .param("fields", FILE_FIELDS)
                            .add_scope(client.scope().scope())
                            .delegate(dlg)
                            .upload_resumable(media, upload.media_type.clone())
                            .await
                    }
                };
                answer.map(|(_, file)| file)
            })
            .await
            .map_err(|err| self.explain(err, subject))?;
        // Drive converts a Google Doc (no size); a plain file must arrive whole.
        if !upload.as_google_doc
            && let Some(size) = file.size
            && size != upload.media.len() as i64
        {
            return Err(Error::external(format!(
                "Google Drive stored {size} bytes of the {}-byte report; run `upload --force` again",
                upload.media.len()
            )));
        }
        RunFile::of(file)
    }

    /// Rewrites the sharing failures of a call about `id` into what the user must do.
    fn explain(&self, err: Error, id: &str) -> Error {
        let failure = std::error::Error::source(&err)
            .and_then(|source| source.downcast_ref::<google_drive3::Error>())
            .map(DriveFailure::of);
        match failure {
            Some(failure) if failure.is_not_found() => Error::bad_input(format!(
                "Drive folder or file {id} not found or not shared with the service account {}: \
                 share the folder named by GDRIVE_FINAL_REPORT_FOLDER with that address as Editor, \
                 or fix GDRIVE_FINAL_REPORT_FOLDER",
                self.client.client_email()
            )),
            Some(failure)
                if failure.status == Some(403)
                    && failure.reason.as_deref() == Some("insufficientFilePermissions") =>
            {
                self.read_only(id)
            }
            _ => err,
        }
    }

    fn read_only(&self, id: &str) -> Error {
        Error::bad_input(format!(
            "the service account {} may only read Drive folder {id}, not add files to it: give that \
             address Editor access to the folder named by GDRIVE_FINAL_REPORT_FOLDER",
            self.client.client_email()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::records::FinalDetails;

    fn report(markdown: &str) -> FinalReport {
        FinalReport {
            run_id: "run-1".into(),
            slug: "acme".into(),
            relative: "final/FINAL_REPORT_acme_20260102_030405.md".into(),
            path: "/outputs/acme/final/FINAL_REPORT_acme_20260102_030405.md".into(),
            marker_path: "/outputs/acme/final/FINAL_REPORT_acme_20260102_030405.ready".into(),
            file_name: "FINAL_REPORT_acme_20260102_030405.md".into(),
            content: markdown.as_bytes().to_vec(),
            sha256: shared::markers::sha256_hex(markdown.as_bytes()),
            details: FinalDetails {
                report: "final/FINAL_REPORT_acme_20260102_030405.md".into(),
                model_set: "gpt5".into(),
                use_cases_count: 1,
                input_tokens: 1,
                output_tokens: 1,
                cost_usd: 0.0,
            },
        }
    }

    #[test]
    fn a_google_doc_upload_is_html_and_a_plain_one_the_markdown_bytes() {
        let markdown = "# Report\n\nOrders wait **4.2 days**.\n\n| KPI | Value |\n|---|---|\n| Lead time | 4.2 days |\n";
        let doc = Upload::of(&report(markdown), true);
        assert_eq!(doc.media_type.essence_str(), "text/html");
        let html = String::from_utf8(doc.media.clone()).unwrap();
        assert!(html.contains("<strong>4.2 days</strong>"), "{html}");
        assert!(html.contains("<td>Lead time</td>"), "{html}");
        assert!(!html.contains("**") && !html.contains("|---|"), "{html}");
        assert_eq!(doc.name, "FINAL_REPORT_acme_20260102_030405");

        let plain = Upload::of(&report(markdown), false);
        assert_eq!(plain.media_type.essence_str(), "text/markdown");
        assert_eq!(plain.media, markdown.as_bytes());
        assert_eq!(plain.name, "FINAL_REPORT_acme_20260102_030405.md");
        assert_eq!(plain.app_properties["sha256"], doc.sha256);
    }
}

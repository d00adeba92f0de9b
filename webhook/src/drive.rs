//! Where submitted documents go: a new Drive folder per submission, under the configured parent,
//! so the run's `setup` job fetches them through its Drive link like any other documents.
//!
//! The folder carries the submission's facts (company, run id, confirmation code) as
//! `appProperties`, not as a file, so nothing but the documents gets indexed into the report.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Arc;

use drive_client::{DriveClient, FOLDER_MIME};
use google_drive3::api::File;
use shared::{Error, Result};

use crate::submission::Document;

/// A Drive client and the folder under which submission folders are made.
#[derive(Clone)]
pub struct DriveTarget {
    pub client: Arc<DriveClient>,
    pub parent_id: String,
}

/// The folder made for one submission.
#[derive(Debug, Clone)]
pub struct StoredFolder {
    pub id: String,
    /// The link given to the run as `google_drive_link`.
    pub link: String,
}

impl DriveTarget {
    /// Creates the folder `name` with `properties` and uploads `documents` into it.
    ///
    /// Runs on a blocking thread of its own: the futures of [`DriveClient::call`]'s async
    /// closures cannot be proven `Send`, which a request handler's future must be.
    pub async fn store(
        &self,
        name: String,
        properties: HashMap<String, String>,
        documents: Vec<Document>,
    ) -> Result<StoredFolder> {
        let target = self.clone();
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            runtime.block_on(target.store_here(&name, properties, &documents))
        })
        .await
        .map_err(|e| Error::internal(format!("the Drive upload task failed: {e}")))?
    }

    async fn store_here(
        &self,
        name: &str,
        properties: HashMap<String, String>,
        documents: &[Document],
    ) -> Result<StoredFolder> {
        let client = &self.client;
        let folder = File {
            name: Some(name.to_string()),
            mime_type: Some(FOLDER_MIME.to_string()),
            parents: Some(vec![self.parent_id.clone()]),
            app_properties: Some(properties),
            ..File::default()
        };
        let folder_mime = mime(FOLDER_MIME)?;
        let (_, created) = client
            .call(
                "create the submission folder",
                Some(&self.parent_id),
                async |dlg| {
                    client
                        .hub()
                        .files()
                        .create(folder.clone())
                        .supports_all_drives(true)
                        .add_scope(client.scope().scope())
                        .delegate(dlg)
                        .upload(Cursor::new(Vec::new()), folder_mime.clone())
                        .await
                },
            )
            .await?;
        let folder_id = created
            .id
            .ok_or_else(|| Error::external("Drive created the submission folder without an id"))?;
        for document in documents {
            let metadata = File {
                name: Some(document.name.clone()),
                parents: Some(vec![folder_id.clone()]),
                ..File::default()
            };
            let content_type =
                mime(&document.content_type).or_else(|_| mime("application/octet-stream"))?;
            client
                .call(
                    &format!("upload {:?}", document.name),
                    Some(&folder_id),
                    async |dlg| {
                        client
                            .hub()
                            .files()
                            .create(metadata.clone())
                            .supports_all_drives(true)
                            .add_scope(client.scope().scope())
                            .delegate(dlg)
                            .upload(Cursor::new(document.bytes.to_vec()), content_type.clone())
                            .await
                    },
                )
                .await?;
        }
        Ok(StoredFolder {
            link: format!("https://drive.google.com/drive/folders/{folder_id}"),
            id: folder_id,
        })
    }
}

fn mime(text: &str) -> Result<mime::Mime> {
    text.parse()
        .map_err(|_| Error::internal(format!("invalid MIME type {text:?}")))
}

//! The OpenAI calls of the job: upload documents, create or find the run's vector store, attach
//! files in batches, poll until processing ends, list the store's files, delete what a run made.
//! Retries and timeouts live in `openai-client`; this module bounds concurrency and decides what
//! to do with each answer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::try_join_all;
use openai_client::async_openai::traits::RequestOptionsBuilder;
use openai_client::async_openai::types::files::{CreateFileRequestArgs, FilePurpose, OpenAIFile};
use openai_client::async_openai::types::vectorstores::{
    CreateVectorStoreFileBatchRequestArgs, CreateVectorStoreRequestArgs,
    VectorStoreExpirationAfter, VectorStoreFileObject, VectorStoreFileStatus, VectorStoreStatus,
};
use openai_client::{OpenAi, map_error};
use shared::{Error, Result};
use tokio::sync::{Mutex, Semaphore};

use crate::plan::Document;
use crate::progress::{Progress, Uploaded};

/// Page size of vector-store file listings (OpenAI's maximum).
const PAGE_SIZE: usize = 100;

/// What the uploads of this run sent.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sent {
    pub files: u64,
    pub bytes: u64,
}

/// Uploads `documents` (at most `concurrency` at once), recording each in the progress file as
/// soon as OpenAI has it. `source` gives the path to stream a document from.
pub async fn upload_all(
    client: &OpenAi,
    documents: &[Document],
    source: impl Fn(&Document) -> PathBuf,
    progress: &Mutex<Progress>,
    progress_path: &Path,
    concurrency: usize,
) -> Result<Sent> {
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let sent = Mutex::new(Sent::default());
    let total = documents.len();
    let uploads = documents.iter().map(|document| {
        let limit = limit.clone();
        let path = source(document);
        let sent = &sent;
        async move {
            let _permit = limit
                .acquire()
                .await
                .map_err(|_| Error::internal("upload limiter closed"))?;
            let request = CreateFileRequestArgs::default()
                .file(path)
                .purpose(FilePurpose::Assistants)
                .build()
                .map_err(|e| map_error(e, &format!("upload {}", document.path)))?;
            let file = client
                .files()
                .create(request)
                .await
                .map_err(|e| map_error(e, &format!("upload {}", document.path)))?;
            let done = {
                let mut progress = progress.lock().await;
                progress.files.insert(
                    document.path.clone(),
                    Uploaded {
                        file_id: file.id.clone(),
                        sha256: document.sha256.clone(),
                        filename: document.filename.clone(),
                        bytes: document.bytes,
                    },
                );
                progress.save(progress_path)?;
                let mut sent = sent.lock().await;
                sent.files += 1;
                sent.bytes += document.bytes;
                sent.files
            };
            tracing::info!(
                file_id = %file.id,
                bytes = document.bytes,
                "uploaded {} as {} ({done}/{total} this run)",
                document.path,
                document.filename
            );
            Ok::<(), Error>(())
        }
    });
    try_join_all(uploads).await?;
    Ok(sent.into_inner())
}

/// Files of an interrupted run that OpenAI received but the run did not live to record: uploaded
/// since `since` under a document's upload name with its size. Adopting them keeps a resumed
/// run from uploading those documents a second time.
pub async fn find_unrecorded_uploads(
    client: &OpenAi,
    documents: &[Document],
    since: u64,
) -> Result<BTreeMap<String, Uploaded>> {
    let wanted: BTreeMap<&str, &Document> =
        documents.iter().map(|d| (d.filename.as_str(), d)).collect();
    let mut found = BTreeMap::new();
    for file in list_uploaded_files(client).await? {
        let Some(document) = wanted.get(file.filename.as_str()) else {
            continue;
        };
        if is_upload_of(&file, &document.filename, document.bytes, since) {
            found.insert(
                document.path.clone(),
                Uploaded {
                    file_id: file.id.clone(),
                    sha256: document.sha256.clone(),
                    filename: document.filename.clone(),
                    bytes: document.bytes,
                },
            );
        }
    }
    Ok(found)
}

/// Every file that may be an upload of a run: uploaded since `since` under one of the run's
/// upload names (`names`: upload name → size) with that size. This finds what no id was
/// recorded for: the upload in flight when a run was killed, and the copy a retried upload
/// leaves when the attempt that timed out had reached OpenAI.
pub async fn find_run_uploads(
    client: &OpenAi,
    names: &BTreeMap<String, u64>,
    since: u64,
) -> Result<BTreeSet<String>> {
    Ok(list_uploaded_files(client)
        .await?
        .into_iter()
        .filter(|file| {
            names
                .get(&file.filename)
                .is_some_and(|bytes| is_upload_of(file, &file.filename, *bytes, since))
        })
        .map(|file| file.id)
        .collect())
}

fn is_upload_of(file: &OpenAIFile, filename: &str, bytes: u64, since: u64) -> bool {
    file.filename == filename
        && file.created_at >= since
        && file.bytes.map(u64::from) == Some(bytes)
}

/// The ids of every file with purpose `assistants` that OpenAI still holds.
pub async fn existing_file_ids(client: &OpenAi) -> Result<BTreeSet<String>> {
    Ok(list_uploaded_files(client)
        .await?
        .into_iter()
        .map(|f| f.id)
        .collect())
}

/// Every file with purpose `assistants`, all pages.
async fn list_uploaded_files(client: &OpenAi) -> Result<Vec<OpenAIFile>> {
    let what = "list uploaded files";
    let mut files = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = vec![
            ("purpose", "assistants".to_string()),
            ("limit", "10000".to_string()),
        ];
        if let Some(cursor) = &after {
            query.push(("after", cursor.clone()));
        }
        let page = client
            .files()
            .query(&query)
            .map_err(|e| map_error(e, what))?
            .list()
            .await
            .map_err(|e| map_error(e, what))?;
        after = page
            .last_id
            .clone()
            .or_else(|| page.data.last().map(|f| f.id.clone()));
        let done = !page.has_more || page.data.is_empty();
        files.extend(page.data);
        if done {
            return Ok(files);
        }
    }
}

/// The run's vector store if it still serves: `None` when it was deleted (404) or expired.
pub async fn live_store(client: &OpenAi, id: &str) -> Result<Option<String>> {
    match client.vector_stores().retrieve(id).await {
        Ok(store) if store.status == VectorStoreStatus::Expired => {
            tracing::warn!(vector_store_id = id, "vector store {id} has expired");
            Ok(None)
        }
        Ok(store) => Ok(Some(store.id)),
        Err(e) if openai_client::status(&e) == Some(404) => {
            tracing::warn!(vector_store_id = id, "vector store {id} no longer exists");
            Ok(None)
        }
        Err(e) => Err(map_error(e, &format!("retrieve vector store {id}"))),
    }
}

/// A vector store tagged with a run's slug and run id (see [`create_store`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStore {
    pub id: String,
    pub expired: bool,
}

/// The vector stores created for `slug`'s run `run_id`, newest first, found by their metadata:
/// this finds a store whose id the run did not live to record (killed right after creating it).
pub async fn find_run_stores(client: &OpenAi, slug: &str, run_id: &str) -> Result<Vec<RunStore>> {
    let what = "list vector stores";
    let mut stores = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = vec![
            ("limit", PAGE_SIZE.to_string()),
            ("order", "desc".to_string()),
        ];
        if let Some(cursor) = &after {
            query.push(("after", cursor.clone()));
        }
        let page = client
            .vector_stores()
            .query(&query)
            .map_err(|e| map_error(e, what))?
            .list()
            .await
            .map_err(|e| map_error(e, what))?;
        let has_more = page.has_more && !page.data.is_empty();
        after = page
            .last_id
            .clone()
            .or_else(|| page.data.last().map(|s| s.id.clone()));
        for store in page.data {
            let metadata = serde_json::to_value(&store.metadata).unwrap_or_default();
            if metadata["slug"] == slug && metadata["run_id"] == run_id {
                stores.push(RunStore {
                    expired: store.status == VectorStoreStatus::Expired,
                    id: store.id,
                });
            }
        }
        if !has_more {
            return Ok(stores);
        }
    }
}

/// Creates the run's vector store: named after slug and run id, tagged with them and the data
/// fingerprint, expiring `days` after it was last used so an abandoned store stops costing.
pub async fn create_store(
    client: &OpenAi,
    slug: &str,
    run_id: &str,
    data_fingerprint: &str,
    days: u16,
) -> Result<String> {
    let request = CreateVectorStoreRequestArgs::default()
        .name(format!("{slug}-{run_id}"))
        .metadata(serde_json::json!({"slug": slug, "run_id": run_id, "data_fingerprint": data_fingerprint}))
        .expires_after(VectorStoreExpirationAfter { anchor: "last_active_at".to_string(), days })
        .build()
        .map_err(|e| map_error(e, "create the vector store"))?;
    let store = client
        .vector_stores()
        .create(request)
        .await
        .map_err(|e| map_error(e, "create the vector store"))?;
    tracing::info!(vector_store_id = %store.id, "created vector store {} ({slug}-{run_id})", store.id);
    Ok(store.id)
}

/// Every file attached to the store, through all pages.
pub async fn list_store_files(
    client: &OpenAi,
    store_id: &str,
) -> Result<Vec<VectorStoreFileObject>> {
    let what = format!("list the files of vector store {store_id}");
    let mut files = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = vec![("limit", PAGE_SIZE.to_string())];
        if let Some(cursor) = &after {
            query.push(("after", cursor.clone()));
        }
        let page = client
            .vector_stores()
            .files(store_id)
            .query(&query)
            .map_err(|e| map_error(e, &what))?
            .list()
            .await
            .map_err(|e| map_error(e, &what))?;
        let has_more = page.has_more && !page.data.is_empty();
        after = page
            .last_id
            .or_else(|| page.data.last().map(|f| f.id.clone()));
        files.extend(page.data);
        if !has_more {
            return Ok(files);
        }
    }
}

/// Attaches `file_ids` in batches of at most `max_batch` ids.
pub async fn attach(
    client: &OpenAi,
    store_id: &str,
    file_ids: &[String],
    max_batch: usize,
) -> Result<()> {
    for (n, chunk) in file_ids.chunks(max_batch.max(1)).enumerate() {
        let what = format!("attach {} files to vector store {store_id}", chunk.len());
        let request = CreateVectorStoreFileBatchRequestArgs::default()
            .file_ids(chunk.to_vec())
            .build()
            .map_err(|e| map_error(e, &what))?;
        let batch = client
            .vector_stores()
            .file_batches(store_id)
            .create(request)
            .await
            .map_err(|e| map_error(e, &what))?;
        tracing::info!(batch_id = %batch.id, "file batch {} of {}: {} files", n + 1, file_ids.len().div_ceil(max_batch.max(1)), chunk.len());
    }
    Ok(())
}

/// How polling waits: from `first`, growing by half each time up to `max`, for at most `timeout`.
#[derive(Debug, Clone, Copy)]
pub struct Polling {
    pub first: Duration,
    pub max: Duration,
    pub timeout: Duration,
}

/// Waits until no file of the store is `in_progress`, then returns each file's final state.
pub async fn wait_until_processed(
    client: &OpenAi,
    store_id: &str,
    polling: Polling,
) -> Result<BTreeMap<String, VectorStoreFileObject>> {
    let started = Instant::now();
    let mut interval = polling.first;
    loop {
        let store = client
            .vector_stores()
            .retrieve(store_id)
            .await
            .map_err(|e| map_error(e, &format!("retrieve vector store {store_id}")))?;
        let counts = &store.file_counts;
        if store.status == VectorStoreStatus::Expired {
            return Err(Error::external(format!(
                "vector store {store_id} expired while its files were processed; re-run vectorize"
            )));
        }
        if counts.in_progress == 0 {
            let files = list_store_files(client, store_id).await?;
            // The listing is the authority: counts may lag behind per-file states.
            if files
                .iter()
                .all(|f| f.status != VectorStoreFileStatus::InProgress)
            {
                return Ok(files.into_iter().map(|f| (f.id.clone(), f)).collect());
            }
        }
        tracing::info!(
            vector_store_id = store_id,
            "processing: {} completed, {} failed, {} in progress of {}",
            counts.completed,
            counts.failed,
            counts.in_progress,
            counts.total
        );
        if started.elapsed() >= polling.timeout {
            return Err(Error::external(format!(
                "vector store {store_id} still has {} files in progress after {} s; re-run vectorize later \
                 (it resumes) or raise --poll-timeout-secs",
                counts.in_progress,
                polling.timeout.as_secs()
            )));
        }
        tokio::time::sleep(interval).await;
        interval = (interval + interval / 2).min(polling.max);
    }
}

/// Deletes a vector store; one that is already gone is fine.
pub async fn delete_store(client: &OpenAi, id: &str) -> Result<bool> {
    match client.vector_stores().delete(id).await {
        Ok(_) => Ok(true),
        Err(e) if openai_client::status(&e) == Some(404) => Ok(false),
        Err(e) => Err(map_error(e, &format!("delete vector store {id}"))),
    }
}

/// Deletes uploaded files (at most `concurrency` at once); ones already gone are fine. Returns
/// how many were deleted.
pub async fn delete_files(
    client: &OpenAi,
    file_ids: &[String],
    concurrency: usize,
) -> Result<usize> {
    let limit = Arc::new(Semaphore::new(concurrency.max(1)));
    let deletions = file_ids.iter().map(|id| {
        let limit = limit.clone();
        async move {
            let _permit = limit
                .acquire()
                .await
                .map_err(|_| Error::internal("delete limiter closed"))?;
            match client.files().delete(id).await {
                Ok(_) => Ok(true),
                Err(e) if openai_client::status(&e) == Some(404) => Ok(false),
                Err(e) => Err(map_error(e, &format!("delete file {id}"))),
            }
        }
    });
    Ok(try_join_all(deletions)
        .await?
        .into_iter()
        .filter(|deleted| *deleted)
        .count())
}

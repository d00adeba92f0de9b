//! `/v1/vector_stores`: stores, their files and file batches. A file's processing outcome is
//! decided when it is attached (extraction, unsupported type, configured failure) and shown
//! after the processing delay, so clients have to poll as they do against OpenAI.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    ApiError, FileBatch, FileErrorCode, Inner, JsonBody, ListQuery, OpenAiState, StoreFile,
    VectorStore, paged, unix_now,
};
use crate::extract;
use crate::generate;

/// Most file ids one batch may carry.
const MAX_BATCH_FILES: usize = 2_000;

/// A vector-store file's status at `now`.
fn file_status(file: &StoreFile, now: Instant) -> &'static str {
    if file.cancelled {
        "cancelled"
    } else if now < file.ready_at {
        "in_progress"
    } else if file.outcome.is_ok() {
        "completed"
    } else {
        "failed"
    }
}

fn counts<'a>(files: impl Iterator<Item = &'a StoreFile>, now: Instant) -> Value {
    let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
    let mut total = 0;
    for file in files {
        *by_status.entry(file_status(file, now)).or_insert(0) += 1;
        total += 1;
    }
    let get = |status: &str| by_status.get(status).copied().unwrap_or(0);
    json!({
        "in_progress": get("in_progress"),
        "completed": get("completed"),
        "failed": get("failed"),
        "cancelled": get("cancelled"),
        "total": total,
    })
}

pub(super) fn store_json(store: &VectorStore, now: Instant) -> Value {
    let status = if store.expired {
        "expired"
    } else if store
        .files
        .values()
        .any(|file| file_status(file, now) == "in_progress")
    {
        "in_progress"
    } else {
        "completed"
    };
    let usage_bytes: u64 = store
        .files
        .values()
        .filter(|file| file_status(file, now) == "completed")
        .map(|file| file.usage_bytes)
        .sum();
    let expires_at = store
        .expires_after
        .as_ref()
        .and_then(|policy| policy.get("days"))
        .and_then(Value::as_u64)
        .map(|days| store.last_active_at + days * 86_400);
    json!({
        "id": store.id,
        "object": "vector_store",
        "created_at": store.created_at,
        "name": store.name,
        "description": store.description,
        "usage_bytes": usage_bytes,
        "file_counts": counts(store.files.values(), now),
        "status": status,
        "expires_after": store.expires_after,
        "expires_at": expires_at,
        "last_active_at": store.last_active_at,
        "metadata": store.metadata,
    })
}

pub(super) fn store_file_json(store_id: &str, file: &StoreFile, now: Instant) -> Value {
    let status = file_status(file, now);
    let last_error = match (&file.outcome, status) {
        (Err((code, message)), "failed") => json!({"code": code, "message": message}),
        _ => Value::Null,
    };
    json!({
        "id": file.file_id,
        "object": "vector_store.file",
        "usage_bytes": if status == "completed" { file.usage_bytes } else { 0 },
        "created_at": file.created_at,
        "vector_store_id": store_id,
        "status": status,
        "last_error": last_error,
        "chunking_strategy": {
            "type": "static",
            "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400},
        },
        "attributes": file.attributes,
    })
}

fn batch_json(store: &VectorStore, batch: &FileBatch, now: Instant) -> Value {
    let files: Vec<&StoreFile> = store
        .files
        .values()
        .filter(|file| file.batch_id.as_deref() == Some(batch.id.as_str()))
        .collect();
    let file_counts = counts(files.iter().copied(), now);
    let status = if batch.cancelled {
        "cancelled"
    } else if file_counts["in_progress"].as_u64().unwrap_or(0) > 0 {
        "in_progress"
    } else {
        "completed"
    };
    json!({
        "id": batch.id,
        "object": "vector_store.files_batch",
        "created_at": batch.created_at,
        "vector_store_id": store.id,
        "status": status,
        "file_counts": file_counts,
    })
}

fn no_such_store(id: &str) -> ApiError {
    ApiError::not_found(format!("No vector store found with id '{id}'."))
}

fn store_mut<'a>(inner: &'a mut Inner, id: &str) -> Result<&'a mut VectorStore, ApiError> {
    inner.stores.get_mut(id).ok_or_else(|| no_such_store(id))
}

fn writable_store<'a>(inner: &'a mut Inner, id: &str) -> Result<&'a mut VectorStore, ApiError> {
    let store = store_mut(inner, id)?;
    if store.expired {
        return Err(ApiError::invalid_request(
            format!("Vector store {id} is expired. Create a new vector store."),
            Some("vector_store_id"),
            Some("vector_store_expired"),
        ));
    }
    Ok(store)
}

/// Body of create and modify.
#[derive(Debug, Default, Deserialize)]
pub(super) struct StoreBody {
    name: Option<String>,
    description: Option<String>,
    metadata: Option<Value>,
    expires_after: Option<Value>,
    file_ids: Option<Vec<String>>,
}

fn check_expires_after(policy: &Value) -> Result<(), ApiError> {
    let anchor_ok = policy.get("anchor").and_then(Value::as_str) == Some("last_active_at");
    let days_ok = policy
        .get("days")
        .and_then(Value::as_u64)
        .is_some_and(|days| (1..=365).contains(&days));
    if anchor_ok && days_ok {
        Ok(())
    } else {
        Err(ApiError::invalid_request(
            "Invalid 'expires_after': expected {\"anchor\": \"last_active_at\", \"days\": 1..=365}.",
            Some("expires_after"),
            Some("invalid_value"),
        ))
    }
}

fn check_metadata(metadata: &Value) -> Result<(), ApiError> {
    let valid = metadata.as_object().is_some_and(|map| {
        map.len() <= 16
            && map.iter().all(|(key, value)| {
                key.len() <= 64 && value.as_str().is_some_and(|v| v.len() <= 512)
            })
    });
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid_request(
            "Invalid 'metadata': at most 16 string values, keys up to 64 and values up to 512 characters.",
            Some("metadata"),
            Some("invalid_value"),
        ))
    }
}

/// Attaches `file_id` to `store_id`, deciding the processing outcome now.
fn attach(
    inner: &mut Inner,
    store_id: &str,
    file_id: &str,
    attributes: Value,
    batch_id: Option<&str>,
) -> Result<Value, ApiError> {
    let file = inner
        .files
        .get(file_id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("No file found with id '{file_id}'.")))?;
    let settings = inner.settings.clone();
    let outcome = if let Some(code) = settings.failing_files.get(&file.filename) {
        Err((*code, format!("Processing of {} failed.", file.filename)))
    } else if !extract::is_indexable(&file.filename) {
        Err((
            FileErrorCode::UnsupportedFile,
            format!(
                "The file type of {} is not supported for retrieval.",
                file.filename
            ),
        ))
    } else {
        match extract::extract_text(&file.filename, &file.bytes) {
            Ok(text) if text.trim().is_empty() => Err((
                FileErrorCode::InvalidFile,
                format!("{} contains no extractable text.", file.filename),
            )),
            Ok(text) => Ok(generate::split_passages(&text)),
            Err(reason) => Err((FileErrorCode::InvalidFile, reason)),
        }
    };
    let usage_bytes = match &outcome {
        Ok(passages) => passages.iter().map(|p| p.text.len() as u64).sum(),
        Err(_) => 0,
    };
    let (_, seq) = inner.next_id("vsf-");
    let now = Instant::now();
    let store = writable_store(inner, store_id)?;
    store.last_active_at = unix_now();
    let store_file = StoreFile {
        file_id: file.id.clone(),
        filename: file.filename.clone(),
        seq,
        created_at: unix_now(),
        ready_at: now + settings.file_processing_delay,
        outcome,
        usage_bytes,
        attributes: if attributes.is_null() {
            json!({})
        } else {
            attributes
        },
        batch_id: batch_id.map(str::to_string),
        cancelled: false,
    };
    let body = store_file_json(store_id, &store_file, now);
    store.files.insert(file.id, store_file);
    Ok(body)
}

pub(super) async fn create(
    State(state): State<Arc<OpenAiState>>,
    JsonBody(body): JsonBody<StoreBody>,
) -> Result<Json<Value>, ApiError> {
    if let Some(policy) = &body.expires_after {
        check_expires_after(policy)?;
    }
    if let Some(metadata) = &body.metadata {
        check_metadata(metadata)?;
    }
    let mut inner = state.lock();
    let (id, seq) = inner.next_id("vs_");
    let now = unix_now();
    inner.stores.insert(
        id.clone(),
        VectorStore {
            id: id.clone(),
            seq,
            name: body.name,
            description: body.description,
            metadata: body.metadata.unwrap_or_else(|| json!({})),
            expires_after: body.expires_after,
            created_at: now,
            last_active_at: now,
            expired: false,
            files: BTreeMap::new(),
            batches: BTreeMap::new(),
        },
    );
    for file_id in body.file_ids.unwrap_or_default() {
        attach(&mut inner, &id, &file_id, Value::Null, None)?;
    }
    let store = store_mut(&mut inner, &id)?;
    Ok(Json(store_json(store, Instant::now())))
}

pub(super) async fn list(
    State(state): State<Arc<OpenAiState>>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let inner = state.lock();
    let now = Instant::now();
    let items = inner
        .stores
        .values()
        .map(|store| (store.id.clone(), store.seq, store_json(store, now)))
        .collect();
    Ok(Json(paged(items, &query, 20)?))
}

pub(super) async fn retrieve(
    State(state): State<Arc<OpenAiState>>,
    Path(store_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut inner = state.lock();
    let store = store_mut(&mut inner, &store_id)?;
    Ok(Json(store_json(store, Instant::now())))
}

pub(super) async fn modify(
    State(state): State<Arc<OpenAiState>>,
    Path(store_id): Path<String>,
    JsonBody(body): JsonBody<StoreBody>,
) -> Result<Json<Value>, ApiError> {
    if let Some(policy) = &body.expires_after {
        check_expires_after(policy)?;
    }
    if let Some(metadata) = &body.metadata {
        check_metadata(metadata)?;
    }
    let mut inner = state.lock();
    let store = writable_store(&mut inner, &store_id)?;
    if let Some(name) = body.name {
        store.name = Some(name);
    }
    if let Some(metadata) = body.metadata {
        store.metadata = metadata;
    }
    if let Some(policy) = body.expires_after {
        store.expires_after = Some(policy);
    }
    store.last_active_at = unix_now();
    Ok(Json(store_json(store, Instant::now())))
}

pub(super) async fn delete(
    State(state): State<Arc<OpenAiState>>,
    Path(store_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut inner = state.lock();
    inner
        .stores
        .remove(&store_id)
        .ok_or_else(|| no_such_store(&store_id))?;
    Ok(Json(
        json!({"id": store_id, "object": "vector_store.deleted", "deleted": true}),
    ))
}

#[derive(Debug, Deserialize)]
pub(super) struct AttachBody {
    file_id: String,
    #[serde(default)]
    attributes: Value,
}

pub(super) async fn attach_file(
    State(state): State<Arc<OpenAiState>>,
    Path(store_id): Path<String>,
    JsonBody(body): JsonBody<AttachBody>,
) -> Result<Json<Value>, ApiError> {
    let mut inner = state.lock();
    Ok(Json(attach(
        &mut inner,
        &store_id,
        &body.file_id,
        body.attributes,
        None,
    )?))
}

/// Lists a store's files, optionally only those of one batch, filtered by `filter` (status).
fn list_store_files(
    inner: &mut Inner,
    store_id: &str,
    batch_id: Option<&str>,
    query: &ListQuery,
) -> Result<Value, ApiError> {
    let now = Instant::now();
    let store = store_mut(inner, store_id)?;
    if let Some(batch_id) = batch_id
        && !store.batches.contains_key(batch_id)
    {
        return Err(ApiError::not_found(format!(
            "No file batch found with id '{batch_id}'."
        )));
    }
    let items = store
        .files
        .values()
        .filter(|file| batch_id.is_none_or(|id| file.batch_id.as_deref() == Some(id)))
        .filter(|file| {
            query
                .filter
                .as_deref()
                .is_none_or(|wanted| file_status(file, now) == wanted)
        })
        .map(|file| {
            (
                file.file_id.clone(),
                file.seq,
                store_file_json(&store.id, file, now),
            )
        })
        .collect();
    paged(items, query, 20)
}

pub(super) async fn list_files(
    State(state): State<Arc<OpenAiState>>,
    Path(store_id): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let mut inner = state.lock();
    Ok(Json(list_store_files(&mut inner, &store_id, None, &query)?))
}

fn no_such_store_file(store_id: &str, file_id: &str) -> ApiError {
    ApiError::not_found(format!(
        "No file found with id '{file_id}' in vector store '{store_id}'."
    ))
}

pub(super) async fn retrieve_file(
    State(state): State<Arc<OpenAiState>>,
    Path((store_id, file_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let mut inner = state.lock();
    let store = store_mut(&mut inner, &store_id)?;
    let file = store
        .files
        .get(&file_id)
        .ok_or_else(|| no_such_store_file(&store_id, &file_id))?;
    Ok(Json(store_file_json(&store_id, file, Instant::now())))
}

pub(super) async fn delete_file(
    State(state): State<Arc<OpenAiState>>,
    Path((store_id, file_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let mut inner = state.lock();
    let store = store_mut(&mut inner, &store_id)?;
    store
        .files
        .remove(&file_id)
        .ok_or_else(|| no_such_store_file(&store_id, &file_id))?;
    Ok(Json(
        json!({"id": file_id, "object": "vector_store.file.deleted", "deleted": true}),
    ))
}

#[derive(Debug, Deserialize)]
pub(super) struct BatchBody {
    file_ids: Option<Vec<String>>,
    files: Option<Vec<AttachBody>>,
    #[serde(default)]
    attributes: Value,
}

pub(super) async fn create_batch(
    State(state): State<Arc<OpenAiState>>,
    Path(store_id): Path<String>,
    JsonBody(body): JsonBody<BatchBody>,
) -> Result<Json<Value>, ApiError> {
    let entries: Vec<(String, Value)> = match (body.file_ids, body.files) {
        (Some(ids), None) => ids
            .into_iter()
            .map(|id| (id, body.attributes.clone()))
            .collect(),
        (None, Some(files)) => files
            .into_iter()
            .map(|file| (file.file_id, file.attributes))
            .collect(),
        _ => {
            return Err(ApiError::invalid_request(
                "Provide exactly one of 'file_ids' or 'files'.",
                Some("file_ids"),
                Some("invalid_value"),
            ));
        }
    };
    if entries.is_empty() || entries.len() > MAX_BATCH_FILES {
        return Err(ApiError::invalid_request(
            format!(
                "A file batch needs 1 to {MAX_BATCH_FILES} files; got {}.",
                entries.len()
            ),
            Some("file_ids"),
            Some("invalid_value"),
        ));
    }
    let mut inner = state.lock();
    writable_store(&mut inner, &store_id)?;
    // Every id must exist before anything is attached: a bad batch changes nothing.
    if let Some((missing, _)) = entries.iter().find(|(id, _)| !inner.files.contains_key(id)) {
        return Err(ApiError::not_found(format!(
            "No file found with id '{missing}'."
        )));
    }
    let (batch_id, _) = inner.next_id("vsfb_");
    for (file_id, attributes) in entries {
        attach(&mut inner, &store_id, &file_id, attributes, Some(&batch_id))?;
    }
    let store = store_mut(&mut inner, &store_id)?;
    let batch = FileBatch {
        id: batch_id.clone(),
        created_at: unix_now(),
        cancelled: false,
    };
    let body = batch_json(store, &batch, Instant::now());
    store.batches.insert(batch_id, batch);
    Ok(Json(body))
}

fn batch_of<'a>(store: &'a VectorStore, batch_id: &str) -> Result<&'a FileBatch, ApiError> {
    store
        .batches
        .get(batch_id)
        .ok_or_else(|| ApiError::not_found(format!("No file batch found with id '{batch_id}'.")))
}

pub(super) async fn retrieve_batch(
    State(state): State<Arc<OpenAiState>>,
    Path((store_id, batch_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let mut inner = state.lock();
    let store = store_mut(&mut inner, &store_id)?;
    let batch = batch_of(store, &batch_id)?;
    Ok(Json(batch_json(store, batch, Instant::now())))
}

pub(super) async fn cancel_batch(
    State(state): State<Arc<OpenAiState>>,
    Path((store_id, batch_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let mut inner = state.lock();
    let now = Instant::now();
    let store = store_mut(&mut inner, &store_id)?;
    batch_of(store, &batch_id)?;
    for file in store.files.values_mut() {
        if file.batch_id.as_deref() == Some(batch_id.as_str())
            && file_status(file, now) == "in_progress"
        {
            file.cancelled = true;
        }
    }
    let batch = store
        .batches
        .get_mut(&batch_id)
        .ok_or_else(|| ApiError::not_found(format!("No file batch found with id '{batch_id}'.")))?;
    batch.cancelled = true;
    let batch = batch.clone();
    Ok(Json(batch_json(store, &batch, now)))
}

pub(super) async fn list_batch_files(
    State(state): State<Arc<OpenAiState>>,
    Path((store_id, batch_id)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let mut inner = state.lock();
    Ok(Json(list_store_files(
        &mut inner,
        &store_id,
        Some(&batch_id),
        &query,
    )?))
}

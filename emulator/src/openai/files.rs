//! `/v1/files`: multipart upload, list, retrieve, content download and delete.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{ApiError, ListQuery, OpenAiState, StoredFile, paged, unix_now};

/// The purposes `POST /v1/files` accepts (the official `CreateFileRequest.purpose` enum).
const PURPOSES: &[&str] = &[
    "assistants",
    "batch",
    "fine-tune",
    "vision",
    "user_data",
    "evals",
];

/// OpenAI's per-file upload limit.
const MAX_FILE_BYTES: usize = 512 * 1024 * 1024;

pub(super) fn file_json(file: &StoredFile) -> Value {
    let mut value = json!({
        "id": file.id,
        "object": "file",
        "bytes": file.bytes.len(),
        "created_at": file.created_at,
        "filename": file.filename,
        "purpose": file.purpose,
        "status": "processed",
    });
    if let Some(expires_at) = file.expires_at {
        value["expires_at"] = json!(expires_at);
    }
    value
}

fn bad_multipart(error: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_request(
        format!("Could not parse multipart form: {error}"),
        None,
        None,
    )
}

pub(super) async fn create(
    State(state): State<Arc<OpenAiState>>,
    mut form: Multipart,
) -> Result<Json<Value>, ApiError> {
    let mut upload: Option<(String, bytes::Bytes)> = None;
    let mut purpose: Option<String> = None;
    let mut expires_seconds: Option<u64> = None;
    while let Some(field) = form.next_field().await.map_err(bad_multipart)? {
        match field.name().unwrap_or_default() {
            "file" => {
                let filename = field.file_name().unwrap_or("upload").to_string();
                let bytes = field.bytes().await.map_err(bad_multipart)?;
                upload = Some((filename, bytes));
            }
            "purpose" => purpose = Some(field.text().await.map_err(bad_multipart)?),
            "expires_after[seconds]" => {
                let text = field.text().await.map_err(bad_multipart)?;
                expires_seconds = Some(text.trim().parse().map_err(|_| {
                    ApiError::invalid_request(
                        format!("Invalid 'expires_after[seconds]': {text:?} is not an integer."),
                        Some("expires_after.seconds"),
                        Some("invalid_value"),
                    )
                })?);
            }
            _ => {}
        }
    }
    let purpose = purpose.ok_or_else(|| {
        ApiError::invalid_request(
            "Missing required parameter: 'purpose'.",
            Some("purpose"),
            Some("missing_required_parameter"),
        )
    })?;
    if !PURPOSES.contains(&purpose.as_str()) {
        return Err(ApiError::invalid_request(
            format!("'{purpose}' is not one of {PURPOSES:?} - 'purpose'"),
            Some("purpose"),
            Some("invalid_value"),
        ));
    }
    let (filename, bytes) = upload.ok_or_else(|| {
        ApiError::invalid_request(
            "Missing required parameter: 'file'.",
            Some("file"),
            Some("missing_required_parameter"),
        )
    })?;
    if bytes.len() > MAX_FILE_BYTES {
        return Err(ApiError::invalid_request(
            format!(
                "File is too large: {} bytes; the maximum is {MAX_FILE_BYTES} bytes.",
                bytes.len()
            ),
            Some("file"),
            Some("file_too_large"),
        ));
    }
    let created_at = unix_now();
    let mut inner = state.lock();
    let (id, seq) = inner.next_id("file-");
    let file = StoredFile {
        id: id.clone(),
        seq,
        filename,
        purpose,
        bytes,
        created_at,
        expires_at: expires_seconds.map(|seconds| created_at + seconds),
    };
    let body = file_json(&file);
    inner.files.insert(id, file);
    Ok(Json(body))
}

pub(super) async fn list(
    State(state): State<Arc<OpenAiState>>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let inner = state.lock();
    let items = inner
        .files
        .values()
        .filter(|file| query.purpose.as_ref().is_none_or(|p| *p == file.purpose))
        .map(|file| (file.id.clone(), file.seq, file_json(file)))
        .collect();
    Ok(Json(paged(items, &query, 10_000)?))
}

fn no_such_file(file_id: &str) -> ApiError {
    ApiError::not_found(format!("No such File object: {file_id}"))
}

pub(super) async fn retrieve(
    State(state): State<Arc<OpenAiState>>,
    Path(file_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let inner = state.lock();
    let file = inner
        .files
        .get(&file_id)
        .ok_or_else(|| no_such_file(&file_id))?;
    Ok(Json(file_json(file)))
}

pub(super) async fn content(
    State(state): State<Arc<OpenAiState>>,
    Path(file_id): Path<String>,
) -> Result<Response, ApiError> {
    let inner = state.lock();
    let file = inner
        .files
        .get(&file_id)
        .ok_or_else(|| no_such_file(&file_id))?;
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        file.bytes.clone(),
    )
        .into_response())
}

pub(super) async fn delete(
    State(state): State<Arc<OpenAiState>>,
    Path(file_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut inner = state.lock();
    inner
        .files
        .remove(&file_id)
        .ok_or_else(|| no_such_file(&file_id))?;
    // "Delete a file and remove it from all vector stores" (the published API).
    for store in inner.stores.values_mut() {
        store.files.remove(&file_id);
    }
    Ok(Json(
        json!({"id": file_id, "object": "file", "deleted": true}),
    ))
}

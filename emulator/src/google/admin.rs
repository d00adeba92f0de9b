//! Test hooks for the Google side, under `/_admin/google/...` (never used by a job): seed a
//! local folder, revoke a service account, read or replace a file's bytes as if someone edited
//! it in Drive, dump.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::GoogleState;

pub(crate) fn routes() -> Router<Arc<GoogleState>> {
    Router::new()
        .route("/_admin/google/state", get(state_dump))
        .route("/_admin/google/seed", post(seed))
        .route(
            "/_admin/google/service-accounts/{email}/revoke",
            post(revoke),
        )
        .route(
            "/_admin/google/files/{id}/content",
            get(content).put(replace_content),
        )
}

async fn state_dump(State(state): State<Arc<GoogleState>>) -> Response {
    Json(state.dump()).into_response()
}

#[derive(Deserialize)]
struct SeedRequest {
    dir: PathBuf,
}

/// Seeds a local folder (see SEEDING.md) into the running emulator; answers its folder id.
async fn seed(State(state): State<Arc<GoogleState>>, Json(request): Json<SeedRequest>) -> Response {
    match state.seed_from_dir(&request.dir) {
        Ok(folder_id) => Json(json!({ "folder_id": folder_id })).into_response(),
        Err(error) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": format!("cannot seed {}: {error}", request.dir.display()) })),
        )
            .into_response(),
    }
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": format!("no such {what}") })),
    )
        .into_response()
}

async fn revoke(State(state): State<Arc<GoogleState>>, Path(email): Path<String>) -> Response {
    if state.revoke_service_account(&email) {
        Json(json!({ "revoked": email })).into_response()
    } else {
        not_found("service account")
    }
}

async fn content(State(state): State<Arc<GoogleState>>, Path(id): Path<String>) -> Response {
    match state.file_bytes(&id) {
        Some(bytes) => Bytes::from(bytes).into_response(),
        None => not_found("file"),
    }
}

async fn replace_content(
    State(state): State<Arc<GoogleState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if state.replace_content(&id, body.to_vec()) {
        Json(json!({ "replaced": id, "bytes": body.len() })).into_response()
    } else {
        not_found("file")
    }
}

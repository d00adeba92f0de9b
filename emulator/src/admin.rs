//! Test hooks under `/_admin`: state dump, request log, fault rules and OpenAI switches. Never
//! used by a job; never faulted or logged. Every hook has an in-process twin on the harness.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::faults::{FaultSpec, Service};
use crate::openai::{OpenAiState, SettingsUpdate};
use crate::requests::RequestLog;
use crate::server::Shared;
use crate::{google, paperspace};

/// What `GET /_admin/state` returns.
pub fn state_dump(
    openai: &OpenAiState,
    google: &google::GoogleState,
    paperspace: &paperspace::PaperspaceState,
    requests: &RequestLog,
) -> Value {
    json!({
        "openai": openai.dump(),
        "google": google.dump(),
        "paperspace": paperspace.dump(),
        "request_counts": requests.counts(),
    })
}

/// The admin routes.
pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/_admin/state", get(state))
        .route("/_admin/requests", get(requests))
        .route("/_admin/faults", get(faults).post(set_faults))
        .route("/_admin/openai/revoke_key", post(revoke_key))
        .route("/_admin/openai/restore_key", post(restore_key))
        .route(
            "/_admin/openai/vector_stores/{vector_store_id}/expire",
            post(expire_store),
        )
        .route(
            "/_admin/openai/settings",
            get(openai_settings).post(update_openai_settings),
        )
        .with_state(Arc::new(shared))
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
}

async fn state(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(state_dump(
        &shared.openai,
        &shared.google,
        &shared.paperspace,
        &shared.requests,
    ))
}

async fn requests(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({
        "requests": shared.requests.entries(),
        "counts": shared.requests.counts(),
    }))
}

async fn faults(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(shared.faults.snapshot())
}

/// Body: `{"openai": FaultSpec | null, "google": ..., "paperspace": ...}`; a service that is
/// named gets the new rule (null clears it), the others keep theirs.
async fn set_faults(State(shared): State<Arc<Shared>>, body: String) -> Response {
    let rules: BTreeMap<String, Option<FaultSpec>> = match serde_json::from_str(&body) {
        Ok(rules) => rules,
        Err(error) => return bad_request(format!("invalid fault rules: {error}")),
    };
    let mut parsed = Vec::new();
    for (name, spec) in rules {
        match name.parse::<Service>() {
            Ok(service) => parsed.push((service, spec)),
            Err(error) => return bad_request(error),
        }
    }
    for (service, spec) in parsed {
        match spec {
            Some(spec) => shared.faults.set(service, spec),
            None => shared.faults.clear(service),
        }
    }
    Json(shared.faults.snapshot()).into_response()
}

async fn revoke_key(State(shared): State<Arc<Shared>>) -> Json<Value> {
    shared.openai.revoke_key();
    Json(shared.openai.settings_dump())
}

async fn restore_key(State(shared): State<Arc<Shared>>) -> Json<Value> {
    shared.openai.restore_key();
    Json(shared.openai.settings_dump())
}

async fn expire_store(
    State(shared): State<Arc<Shared>>,
    Path(vector_store_id): Path<String>,
) -> Response {
    if shared.openai.expire_vector_store(&vector_store_id) {
        Json(json!({"id": vector_store_id, "status": "expired"})).into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no vector store {vector_store_id}")})),
        )
            .into_response()
    }
}

async fn openai_settings(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(shared.openai.settings_dump())
}

async fn update_openai_settings(State(shared): State<Arc<Shared>>, body: String) -> Response {
    match serde_json::from_str::<SettingsUpdate>(&body) {
        Ok(update) => {
            shared.openai.update_settings(update);
            Json(shared.openai.settings_dump()).into_response()
        }
        Err(error) => bad_request(format!("invalid settings: {error}")),
    }
}

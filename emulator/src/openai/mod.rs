//! OpenAI emulation: files, vector stores (files, batches) and responses under `/v1`, with
//! Bearer auth and OpenAI-shaped errors. State is in memory behind one mutex; handlers never
//! hold it across an await.

mod files;
mod responses;
mod vector_stores;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::generate::Passage;

/// Why a vector-store file failed processing (OpenAI's `last_error.code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileErrorCode {
    ServerError,
    UnsupportedFile,
    InvalidFile,
}

/// Runtime-adjustable behaviour.
#[derive(Clone, Debug)]
pub struct Settings {
    pub api_key: String,
    pub file_processing_delay: Duration,
    /// Filenames whose vector-store processing fails, with the error code to report.
    pub failing_files: BTreeMap<String, FileErrorCode>,
    pub fabricate_citations: bool,
}

/// A partial update of [`Settings`] (body of `POST /_admin/openai/settings`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsUpdate {
    pub fabricate_citations: Option<bool>,
    pub file_processing_ms: Option<u64>,
    /// Replaces the failing-file list: `{"name": "invalid_file"}` or `["name", ...]`
    /// (the latter fail with `server_error`).
    pub failing_files: Option<FailingFiles>,
}

/// The two accepted shapes of a failing-file list.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum FailingFiles {
    Names(Vec<String>),
    WithCodes(BTreeMap<String, FileErrorCode>),
}

/// An uploaded file.
#[derive(Clone, Debug)]
struct StoredFile {
    id: String,
    seq: u64,
    filename: String,
    purpose: String,
    bytes: bytes::Bytes,
    created_at: u64,
    expires_at: Option<u64>,
}

/// A file attached to a vector store; its outcome is fixed at attach time and revealed once
/// `ready_at` has passed.
#[derive(Clone, Debug)]
struct StoreFile {
    file_id: String,
    filename: String,
    seq: u64,
    created_at: u64,
    ready_at: Instant,
    outcome: Result<Vec<Passage>, (FileErrorCode, String)>,
    usage_bytes: u64,
    attributes: Value,
    batch_id: Option<String>,
    cancelled: bool,
}

#[derive(Clone, Debug)]
struct FileBatch {
    id: String,
    created_at: u64,
    cancelled: bool,
}

#[derive(Clone, Debug)]
struct VectorStore {
    id: String,
    seq: u64,
    name: Option<String>,
    description: Option<String>,
    metadata: Value,
    expires_after: Option<Value>,
    created_at: u64,
    last_active_at: u64,
    expired: bool,
    files: BTreeMap<String, StoreFile>,
    batches: BTreeMap<String, FileBatch>,
}

/// A stored response, for retrieval and `previous_response_id`.
#[derive(Clone, Debug)]
struct StoredResponse {
    body: Value,
    /// Input and output text of the whole conversation up to and including this response.
    transcript: String,
}

struct Inner {
    settings: Settings,
    key_revoked: bool,
    next_seq: u64,
    files: BTreeMap<String, StoredFile>,
    stores: BTreeMap<String, VectorStore>,
    responses: BTreeMap<String, StoredResponse>,
}

impl Inner {
    /// A new id: prefix + 24 hex chars, deterministic in creation order.
    fn next_id(&mut self, prefix: &str) -> (String, u64) {
        self.next_seq += 1;
        let seq = self.next_seq;
        let digest = hex::encode(Sha256::digest(format!("{prefix}{seq}").as_bytes()));
        (format!("{prefix}{}", &digest[..24]), seq)
    }
}

/// The OpenAI side of the emulator.
pub struct OpenAiState {
    inner: Mutex<Inner>,
}

impl OpenAiState {
    pub fn new(settings: Settings) -> Arc<OpenAiState> {
        Arc::new(OpenAiState {
            inner: Mutex::new(Inner {
                settings,
                key_revoked: false,
                next_seq: 0,
                files: BTreeMap::new(),
                stores: BTreeMap::new(),
                responses: BTreeMap::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// From now on the API key is rejected with 401 `invalid_api_key`.
    pub fn revoke_key(&self) {
        self.lock().key_revoked = true;
    }

    /// Accepts the API key again.
    pub fn restore_key(&self) {
        self.lock().key_revoked = false;
    }

    /// Marks a vector store `expired`, as OpenAI does after its `expires_after` policy ran out.
    /// Returns false when no such store exists.
    pub fn expire_vector_store(&self, vector_store_id: &str) -> bool {
        match self.lock().stores.get_mut(vector_store_id) {
            Some(store) => {
                store.expired = true;
                true
            }
            None => false,
        }
    }

    pub fn set_fabricate_citations(&self, on: bool) {
        self.lock().settings.fabricate_citations = on;
    }

    pub fn set_file_processing_delay(&self, delay: Duration) {
        self.lock().settings.file_processing_delay = delay;
    }

    /// Files attached from now on with this filename fail with `code`.
    pub fn set_failing_file(&self, filename: &str, code: FileErrorCode) {
        self.lock()
            .settings
            .failing_files
            .insert(filename.to_string(), code);
    }

    /// Applies a partial settings update (the admin endpoint's body).
    pub fn update_settings(&self, update: SettingsUpdate) {
        let mut inner = self.lock();
        if let Some(on) = update.fabricate_citations {
            inner.settings.fabricate_citations = on;
        }
        if let Some(ms) = update.file_processing_ms {
            inner.settings.file_processing_delay = Duration::from_millis(ms);
        }
        if let Some(failing) = update.failing_files {
            inner.settings.failing_files = match failing {
                FailingFiles::Names(names) => names
                    .into_iter()
                    .map(|name| (name, FileErrorCode::ServerError))
                    .collect(),
                FailingFiles::WithCodes(map) => map,
            };
        }
    }

    /// The settings a test can observe (never the key itself).
    pub fn settings_dump(&self) -> Value {
        let inner = self.lock();
        json!({
            "fabricate_citations": inner.settings.fabricate_citations,
            "file_processing_ms": u64::try_from(inner.settings.file_processing_delay.as_millis()).unwrap_or(u64::MAX),
            "failing_files": inner.settings.failing_files,
            "key_revoked": inner.key_revoked,
        })
    }

    /// Files, stores with their files and statuses, responses: what a test asserts on.
    pub fn dump(&self) -> Value {
        let inner = self.lock();
        let now = Instant::now();
        let files: Vec<Value> = sorted_by_seq(inner.files.values(), |f| f.seq)
            .into_iter()
            .map(files::file_json)
            .collect();
        let stores: Vec<Value> = sorted_by_seq(inner.stores.values(), |s| s.seq)
            .into_iter()
            .map(|store| {
                let mut value = vector_stores::store_json(store, now);
                let attached: Vec<Value> = sorted_by_seq(store.files.values(), |f| f.seq)
                    .into_iter()
                    .map(|file| {
                        let mut entry = vector_stores::store_file_json(&store.id, file, now);
                        entry["filename"] = json!(file.filename);
                        entry
                    })
                    .collect();
                value["files"] = Value::Array(attached);
                value
            })
            .collect();
        json!({
            "files": files,
            "vector_stores": stores,
            "responses": inner.responses.keys().collect::<Vec<_>>(),
            "settings": {
                "fabricate_citations": inner.settings.fabricate_citations,
                "file_processing_ms": u64::try_from(inner.settings.file_processing_delay.as_millis()).unwrap_or(u64::MAX),
                "failing_files": inner.settings.failing_files,
                "key_revoked": inner.key_revoked,
            },
        })
    }
}

fn sorted_by_seq<'a, T>(items: impl Iterator<Item = &'a T>, seq: impl Fn(&T) -> u64) -> Vec<&'a T> {
    let mut items: Vec<&T> = items.collect();
    items.sort_by_key(|item| seq(item));
    items
}

/// Seconds since the Unix epoch (OpenAI's timestamps).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// An OpenAI-shaped error: `{"error":{"message","type","param","code"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    param: Option<String>,
    code: Option<&'static str>,
}

impl ApiError {
    fn invalid_request(
        message: impl Into<String>,
        param: Option<&str>,
        code: Option<&'static str>,
    ) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: param.map(str::to_string),
            code,
        }
    }

    fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
            kind: "invalid_request_error",
            param: None,
            code: None,
        }
    }

    fn unauthorized(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            message: message.into(),
            kind: "invalid_request_error",
            param: None,
            code: Some("invalid_api_key"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }});
        (self.status, axum::Json(body)).into_response()
    }
}

/// A JSON body whose parse errors come back OpenAI-shaped (axum's own rejections are plain
/// text, which the SDKs cannot read).
pub(crate) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = bytes::Bytes::from_request(request, state)
            .await
            .map_err(|rejection| ApiError::invalid_request(rejection.body_text(), None, None))?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|error| {
                ApiError::invalid_request(
                    format!("We could not parse the JSON body of your request: {error}"),
                    None,
                    None,
                )
            })
    }
}

/// Rejects requests without the configured Bearer key (or after the key was revoked).
async fn require_api_key(
    State(state): State<Arc<OpenAiState>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .map(str::to_string);
    let (expected, revoked) = {
        let inner = state.lock();
        (inner.settings.api_key.clone(), inner.key_revoked)
    };
    match presented {
        None => ApiError::unauthorized(
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )
        .into_response(),
        Some(key) if key != expected || revoked => ApiError::unauthorized(format!(
            "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
            redact(&key)
        ))
        .into_response(),
        Some(_) => next.run(request).await,
    }
}

/// Shows a key the way OpenAI does: the first and last characters only.
fn redact(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

/// 404 for unknown `/v1` paths, as OpenAI answers them.
async fn unknown_route(request: Request) -> Response {
    ApiError::not_found(format!(
        "Invalid URL ({} {})",
        request.method(),
        request.uri().path()
    ))
    .into_response()
}

/// Every `/v1` route, behind the API-key check.
pub fn router(state: Arc<OpenAiState>) -> Router {
    use axum::routing::{get, post};
    let routes = Router::new()
        .route("/v1/files", post(files::create).get(files::list))
        .route(
            "/v1/files/{file_id}",
            get(files::retrieve).delete(files::delete),
        )
        .route("/v1/files/{file_id}/content", get(files::content))
        .route(
            "/v1/vector_stores",
            post(vector_stores::create).get(vector_stores::list),
        )
        .route(
            "/v1/vector_stores/{vector_store_id}",
            get(vector_stores::retrieve)
                .post(vector_stores::modify)
                .delete(vector_stores::delete),
        )
        .route(
            "/v1/vector_stores/{vector_store_id}/files",
            post(vector_stores::attach_file).get(vector_stores::list_files),
        )
        .route(
            "/v1/vector_stores/{vector_store_id}/files/{file_id}",
            get(vector_stores::retrieve_file).delete(vector_stores::delete_file),
        )
        .route(
            "/v1/vector_stores/{vector_store_id}/file_batches",
            post(vector_stores::create_batch),
        )
        .route(
            "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}",
            get(vector_stores::retrieve_batch),
        )
        .route(
            "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel",
            post(vector_stores::cancel_batch),
        )
        .route(
            "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/files",
            get(vector_stores::list_batch_files),
        )
        .route("/v1/responses", post(responses::create))
        .route(
            "/v1/responses/{response_id}",
            get(responses::retrieve).delete(responses::delete),
        )
        .route("/v1/{*rest}", axum::routing::any(unknown_route));
    routes
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_api_key,
        ))
        .with_state(state)
}

/// Query parameters of OpenAI's cursor-paged lists.
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    limit: Option<usize>,
    after: Option<String>,
    before: Option<String>,
    order: Option<String>,
    filter: Option<String>,
    purpose: Option<String>,
}

/// Applies `order`, `after`/`before` and `limit` to items sorted by creation; returns the page
/// JSON `{"object":"list","data","first_id","last_id","has_more"}`.
fn paged(
    mut items: Vec<(String, u64, Value)>,
    query: &ListQuery,
    default_limit: usize,
) -> Result<Value, ApiError> {
    let limit = query.limit.unwrap_or(default_limit);
    if limit == 0 || limit > 10_000 {
        return Err(ApiError::invalid_request(
            format!("Invalid 'limit': integer {limit} is out of range (1..=10000)."),
            Some("limit"),
            Some("integer_out_of_range"),
        ));
    }
    items.sort_by_key(|(_, seq, _)| *seq);
    match query.order.as_deref() {
        None | Some("desc") => items.reverse(),
        Some("asc") => {}
        Some(other) => {
            return Err(ApiError::invalid_request(
                format!("Invalid value for 'order': {other:?}; expected 'asc' or 'desc'."),
                Some("order"),
                Some("invalid_value"),
            ));
        }
    }
    if let Some(after) = &query.after {
        let position = items.iter().position(|(id, _, _)| id == after);
        items = match position {
            Some(position) => items.split_off(position + 1),
            None => Vec::new(),
        };
    }
    if let Some(before) = &query.before
        && let Some(position) = items.iter().position(|(id, _, _)| id == before)
    {
        items.truncate(position);
    }
    let has_more = items.len() > limit;
    items.truncate(limit);
    let first_id = items.first().map(|(id, _, _)| id.clone());
    let last_id = items.last().map(|(id, _, _)| id.clone());
    Ok(json!({
        "object": "list",
        "data": items.into_iter().map(|(_, _, value)| value).collect::<Vec<_>>(),
        "first_id": first_id,
        "last_id": last_id,
        "has_more": has_more,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_only_the_ends_of_a_key() {
        assert_eq!(redact("test-openai-key"), "tes********-key");
        assert_eq!(redact("short"), "*****");
    }

    #[test]
    fn paging_walks_every_item_once() {
        let items: Vec<(String, u64, Value)> =
            (1..=5).map(|n| (format!("id{n}"), n, json!(n))).collect();
        let query = |after: Option<&str>| ListQuery {
            limit: Some(2),
            after: after.map(str::to_string),
            order: Some("asc".into()),
            ..ListQuery::default()
        };
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = paged(items.clone(), &query(after.as_deref()), 20).unwrap();
            seen.extend(
                page["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap()),
            );
            if !page["has_more"].as_bool().unwrap() {
                break;
            }
            after = page["last_id"].as_str().map(str::to_string);
        }
        assert_eq!(seen, [1, 2, 3, 4, 5]);
    }
}

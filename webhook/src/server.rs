//! The HTTP surface: `POST /submissions`, `GET /health`, and the guards in front of them.
//!
//! A submission passes, in order: the origin allow-list (browsers), the client's rate limit, the
//! body-size limit, authentication (over the exact bytes received), validation of the fields
//! and documents, the `Idempotency-Key`; then the documents are stored in Drive, the run is
//! started, and the answer is 202 with the run and a confirmation code. A run that could not be
//! started is answered 502, never 202. Every refusal is a JSON error (see [`crate::error`]).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Value, json};
use tower_http::cors::{AllowOrigin, CorsLayer};
use trigger::api::PaperspaceClient;
use trigger::start::{RunMeta, run_id_for, start_run};

use crate::auth::{Authenticator, Principal};
use crate::drive::DriveTarget;
use crate::error::ApiError;
use crate::idempotency::{Begin, IdempotencyStore};
use crate::limits::{ClientLimiter, RateLimit};
use crate::submission::{self, Submission};

/// The guards' settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub api_key: Option<String>,
    /// The decoded Standard Webhooks secret.
    pub signing_secret: Option<Vec<u8>>,
    /// Exact origins (`https://forms.example.com`) browsers may submit from.
    pub allowed_origins: Vec<HeaderValue>,
    pub max_body_bytes: usize,
    pub rate_limit: RateLimit,
    /// Take the client address from the last `X-Forwarded-For` entry (behind one proxy, such as
    /// Paperspace's load balancer) instead of the TCP peer.
    pub trust_forwarded_for: bool,
}

/// What a submission reaches: Paperspace (with the workflow spec) and, for documents, Drive.
pub struct Services {
    pub paperspace: PaperspaceClient,
    pub spec: Value,
    /// `None`: the server takes no documents (JSON with a `google_drive_link` only).
    pub drive: Option<DriveTarget>,
}

struct AppState {
    config: ServerConfig,
    auth: Authenticator,
    limiter: ClientLimiter,
    idempotency: IdempotencyStore,
    services: Services,
}

/// The application with every guard; serve it with connect info (see [`crate::serve`]).
pub fn router(config: ServerConfig, services: Services) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(config.allowed_origins.clone()))
        .allow_methods([Method::POST, Method::GET])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("webhook-id"),
            HeaderName::from_static("webhook-timestamp"),
            HeaderName::from_static("webhook-signature"),
        ])
        .expose_headers([header::RETRY_AFTER]);
    let state = Arc::new(AppState {
        auth: Authenticator::new(config.api_key.clone(), config.signing_secret.clone()),
        limiter: ClientLimiter::new(config.rate_limit),
        idempotency: IdempotencyStore::default(),
        config,
        services,
    });
    Router::new()
        .route("/health", get(health))
        .route("/submissions", post(submit))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(cors)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            origin_guard,
        ))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

async fn health() -> Response {
    axum::Json(json!({
        "status": "ok",
        "service": "webhook",
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

async fn not_found() -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint: POST /submissions or GET /health",
    )
    .into_response()
}

async fn method_not_allowed() -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed: POST /submissions, GET /health",
    )
    .into_response()
}

/// One structured line per request: never headers or bodies (they carry credentials).
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let peer = peer_address(&request);
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        http_method = %method,
        path = %path,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_millis() as u64,
        peer = %peer,
        "{method} {path} {}",
        response.status().as_u16()
    );
    response
}

/// Browsers send `Origin`; one not on the allow-list is refused outright (preflight included),
/// not merely left without CORS headers. Requests without `Origin` (servers) pass.
async fn origin_guard(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(origin) = request.headers().get(header::ORIGIN)
        && !state.config.allowed_origins.contains(origin)
    {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this origin may not submit: add it to WEBHOOK_ALLOWED_ORIGINS",
        )
        .into_response();
    }
    next.run(request).await
}

fn peer_address(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// The address a rate limit applies to.
fn client_address(config: &ServerConfig, request: &Request) -> IpAddr {
    if config.trust_forwarded_for
        && let Some(forwarded) = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|entry| entry.trim().parse::<IpAddr>().ok())
            .next_back()
    {
        return forwarded;
    }
    peer_address(request)
}

async fn submit(State(state): State<Arc<AppState>>, request: Request) -> Response {
    match handle_submission(&state, request).await {
        Ok(response) => response,
        Err(refusal) => {
            tracing::warn!(
                status = refusal.status.as_u16(),
                code = refusal.code,
                "submission refused: {}",
                refusal.message
            );
            refusal.into_response()
        }
    }
}

async fn handle_submission(state: &AppState, request: Request) -> Result<Response, ApiError> {
    let limit = state.config.max_body_bytes;
    state
        .limiter
        .check(client_address(&state.config, &request))?;
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    let bytes = read_body(body, limit).await?;
    let principal = state.auth.check(&parts.headers, &bytes)?;
    let message = state.auth.hold(&principal);
    let submission = submission::parse(&parts.headers, bytes).await?;
    if !submission.documents.is_empty() && state.services.drive.is_none() {
        return Err(ApiError::invalid_input(
            "this server takes no documents (WEBHOOK_DRIVE_PARENT_FOLDER is not set): send a \
             google_drive_link instead",
        ));
    }
    let claim = match idempotency_key(&parts.headers)? {
        Some(key) => match state.idempotency.begin(key, &submission.fingerprint())? {
            Begin::Replay(body) => {
                let mut response = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
                response
                    .headers_mut()
                    .insert("idempotent-replayed", HeaderValue::from_static("true"));
                message.accepted();
                return Ok(response);
            }
            Begin::Proceed(claim) => Some(claim),
        },
        None => None,
    };
    let answer = accept(state, submission, &principal).await?;
    if let Some(claim) = claim {
        claim.complete(&answer);
    }
    message.accepted();
    Ok((StatusCode::ACCEPTED, axum::Json(answer)).into_response())
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .map(|key| Some(key.trim()))
            .map_err(|_| ApiError::bad_request("Idempotency-Key must be visible ASCII")),
    }
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(error) = cause {
            if error.is::<http_body_util::LengthLimitError>() {
                return ApiError::too_large(limit);
            }
            cause = error.source();
        }
        ApiError::bad_request(format!("the request body could not be read: {e}"))
    })
}

/// A short code the person who submitted can quote (no 0/O or 1/I to confuse).
fn confirmation_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut code = String::with_capacity(11);
    for i in 0..10 {
        if i == 5 {
            code.push('-');
        }
        code.push(char::from(ALPHABET[fastrand::usize(..ALPHABET.len())]));
    }
    code
}

/// Stores the documents and starts the run; the 202 body on success.
async fn accept(
    state: &AppState,
    submission: Submission,
    principal: &Principal,
) -> Result<Value, ApiError> {
    let Submission {
        mut inputs,
        documents,
    } = submission;
    let run_id = run_id_for(&inputs);
    let code = confirmation_code();
    let mut folder_id = None;
    if let Some(drive) = state
        .services
        .drive
        .as_ref()
        .filter(|_| !documents.is_empty())
    {
        let properties = HashMap::from([
            ("company_slug".to_string(), inputs.company_slug.clone()),
            ("run_id".to_string(), run_id.clone()),
            ("confirmation_code".to_string(), code.clone()),
            ("submitted_at".to_string(), chrono::Utc::now().to_rfc3339()),
        ]);
        let name = format!("{} {run_id}", inputs.company_slug);
        let folder = drive
            .store(name, properties, documents.clone())
            .await
            .map_err(|e| {
                tracing::error!(error = %e.chain(), "storing the documents failed: {e}");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "storage_failed",
                    format!("the documents could not be stored in Drive, no run was started: {e}"),
                )
            })?;
        inputs.google_drive_link = folder.link;
        inputs.google_drive_id = Some(folder.id.clone());
        folder_id = Some(folder.id);
    }
    let meta = RunMeta {
        started_by: "webhook",
        idempotency_key: None,
        confirmation_code: Some(code.clone()),
    };
    let paperspace = &state.services.paperspace;
    let started = start_run(paperspace, &state.services.spec, &inputs, &run_id, &meta)
        .await
        .map_err(|e| {
            tracing::error!(error = %e.chain(), company = %inputs.company_slug, "starting the run failed: {e}");
            let stored = folder_id
                .as_deref()
                .map(|id| format!(" (the documents are stored in Drive folder {id})"))
                .unwrap_or_default();
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "trigger_failed",
                format!("the run could not be started{stored}: {e}"),
            )
        })?;
    tracing::info!(
        company = %started.company_slug,
        run = started.run,
        run_id = %started.run_id,
        confirmation_code = %code,
        auth = principal.method(),
        documents = documents.len(),
        "submission accepted: run {} started",
        started.run
    );
    Ok(json!({
        "status": "accepted",
        "confirmation_code": code,
        "run": started.run,
        "run_uuid": started.uuid,
        "run_id": started.run_id,
        "workflow_id": started.workflow_id,
        "company_slug": started.company_slug,
        "console_url": started.console_url,
        "drive_folder_id": folder_id,
        "documents": documents.len(),
    }))
}

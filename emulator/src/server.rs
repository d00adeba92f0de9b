//! The HTTP server: one router for all services, wrapped in the fault-injection and request-log
//! middleware, served with hyper-util so that a "drop" fault can close the TCP connection
//! without any response (the tower service returns `Err`, and hyper closes the connection).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::faults::{self, FaultError, Faults, Service};
use crate::requests::{RequestEntry, RequestLog};
use crate::{admin, google, openai, paperspace};

/// Everything the routes and the middleware share.
#[derive(Clone)]
pub struct Shared {
    pub google: Arc<google::GoogleState>,
    pub paperspace: Arc<paperspace::PaperspaceState>,
    pub openai: Arc<openai::OpenAiState>,
    pub requests: Arc<RequestLog>,
    pub faults: Arc<Faults>,
}

/// Marks a response that must not be sent: the connection is dropped instead.
#[derive(Clone, Copy, Debug)]
struct DropConnection;

/// The router of all services, admin hooks and middleware.
pub fn app(shared: Shared) -> Router {
    Router::new()
        .merge(openai::router(shared.openai.clone()))
        .merge(google::router(shared.google.clone()))
        .merge(paperspace::router(shared.paperspace.clone()))
        .merge(admin::router(shared.clone()))
        .fallback(unknown_path)
        .layer(middleware::from_fn_with_state(shared, observe))
        // Uploads go up to OpenAI's 512 MB per file; the handlers enforce their own limits.
        .layer(DefaultBodyLimit::disable())
}

async fn unknown_path(request: Request) -> Response {
    let message = format!("No route for {} {}", request.method(), request.uri().path());
    (StatusCode::NOT_FOUND, message).into_response()
}

/// Fault injection and logging around every service request (admin hooks pass untouched).
async fn observe(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let Some(service) = Service::classify(&path) else {
        return next.run(request).await;
    };
    let method = request.method().to_string();
    let route = request.extensions().get::<MatchedPath>().map_or_else(
        || "<unmatched>".to_string(),
        |matched| matched.as_str().to_string(),
    );
    let start_us = shared.requests.now_us();
    let download = faults::is_download(&path, request.uri().query());
    let decision = shared.faults.decide(service, download);
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    let (response, fault) = match decision.error {
        None => (next.run(request).await, None),
        Some(FaultError::Drop) => {
            let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
            response.extensions_mut().insert(DropConnection);
            (response, Some("drop".to_string()))
        }
        Some(FaultError::Truncate) => (
            truncated(next.run(request).await).await,
            Some("truncate".to_string()),
        ),
        Some(FaultError::RateLimit { retry_after_secs }) => {
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(faults::error_body(service, 429)),
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            (response, Some("status 429".to_string()))
        }
        Some(FaultError::Status { status }) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let response =
                (code, axum::Json(faults::error_body(service, code.as_u16()))).into_response();
            (response, Some(format!("status {}", code.as_u16())))
        }
    };
    let fault = fault.or_else(|| (!decision.delay.is_zero()).then(|| "latency".to_string()));
    let dropped = response.extensions().get::<DropConnection>().is_some();
    shared.requests.record(RequestEntry {
        method,
        path,
        route,
        service: service.as_str().to_string(),
        status: (!dropped).then(|| response.status().as_u16()),
        fault,
        start_us,
        end_us: shared.requests.now_us(),
    });
    response
}

/// `response` with its full `Content-Length` but only the first half of its body, after which
/// the body fails, so hyper closes the connection mid-way.
async fn truncated(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    let half = bytes.slice(..bytes.len() / 2);
    let head = futures::stream::once(async move { Ok::<_, std::io::Error>(half) });
    // The pause lets hyper flush the headers and the first half before the failure.
    let failure = futures::stream::once(async {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        Err(std::io::Error::other(
            "connection cut mid-body by fault injection",
        ))
    });
    Response::from_parts(parts, Body::from_stream(head.chain(failure)))
}

/// The error that makes hyper close a connection without answering.
#[derive(Debug)]
struct ConnectionDropped;

impl std::fmt::Display for ConnectionDropped {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for ConnectionDropped {}

/// Runs the router and turns a [`DropConnection`] response into an error.
#[derive(Clone)]
struct DroppingService {
    router: Router,
}

impl tower::Service<Request<hyper::body::Incoming>> for DroppingService {
    type Response = Response;
    type Error = ConnectionDropped;
    type Future = Pin<Box<dyn Future<Output = Result<Response, ConnectionDropped>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<hyper::body::Incoming>) -> Self::Future {
        let router = self.router.clone();
        Box::pin(async move {
            let response: Result<Response, Infallible> =
                router.oneshot(request.map(Body::new)).await;
            let Ok(response) = response;
            if response.extensions().get::<DropConnection>().is_some() {
                Err(ConnectionDropped)
            } else {
                Ok(response)
            }
        })
    }
}

/// Accepts connections until the task is aborted; aborting also ends every connection.
pub async fn serve(listener: TcpListener, router: Router) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let service = TowerToHyperService::new(DroppingService { router: router.clone() });
                    connections.spawn(async move {
                        let builder = auto::Builder::new(TokioExecutor::new());
                        // A dropped or reset connection ends here; nothing to report.
                        let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                    });
                }
                Err(error) => {
                    // Typically too many open files: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

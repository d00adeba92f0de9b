//! The retry policy of every OpenAI call, as the transport async-openai sends through.
//!
//! async-openai's own layer retries only 3 times (about 0.7 s in all), does not retry timeouts,
//! honours any `Retry-After` however long, and gives up at once on a 429 whose body is not JSON.
//! This service applies the shared policy of SPEC §7.2 instead ([`shared::http::RetryPolicy`]):
//! 429, 408, 5xx, connection failures and timeouts are retried with capped exponential backoff and
//! jitter, waiting at least what `Retry-After` asks (seconds or an HTTP date, capped); a 429 that
//! says `insufficient_quota` and every other 4xx fail at once. Requests are rebuilt from
//! async-openai's factory for each attempt, so a file upload is streamed from disk again.
//!
//! A timed-out upload may have reached OpenAI; retrying it can leave one orphan file behind,
//! which `vectorize --cleanup` does not know about. That is the price of surviving timeouts.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::{Response, StatusCode};
use shared::http::{RetryPolicy, is_transient_status, retry_after};

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response, OpenAIError>> + Send + 'static>>;

/// Sends async-openai's requests with `client`, retrying transient failures under `policy`.
#[derive(Clone, Debug)]
pub(crate) struct RetryingTransport {
    client: reqwest::Client,
    policy: RetryPolicy,
}

impl RetryingTransport {
    pub(crate) fn new(client: reqwest::Client, policy: RetryPolicy) -> Self {
        RetryingTransport { client, policy }
    }
}

impl tower::Service<HttpRequestFactory> for RetryingTransport {
    type Response = Response;
    type Error = OpenAIError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, factory: HttpRequestFactory) -> Self::Future {
        Box::pin(send_with_retries(
            self.client.clone(),
            self.policy.clone(),
            factory,
        ))
    }
}

/// One attempt's result: final, or worth another try (with the result to return if no try is
/// left, and what the server asked to wait).
enum Attempt {
    Final(Result<Response, OpenAIError>),
    Transient {
        result: Result<Response, OpenAIError>,
        detail: String,
        retry_after: Option<Duration>,
    },
}

async fn send_with_retries(
    client: reqwest::Client,
    policy: RetryPolicy,
    factory: HttpRequestFactory,
) -> Result<Response, OpenAIError> {
    let mut delays = policy.backoff();
    loop {
        let request = factory.build().await?;
        let what = format!("{} {}", request.method(), request.url().path());
        match attempt(&client, request).await {
            Attempt::Final(result) => return result,
            Attempt::Transient {
                result,
                detail,
                retry_after,
            } => {
                let Some(delay) = delays.next() else {
                    return result;
                };
                let wait = policy.wait(delay, retry_after);
                tracing::warn!(
                    service = "OpenAI",
                    retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "OpenAI {what}: {detail}; retrying"
                );
                tokio::time::sleep(wait).await;
            }
        }
    }
}

async fn attempt(client: &reqwest::Client, request: reqwest::Request) -> Attempt {
    let response = match client.execute(request).await {
        Ok(response) => response,
        Err(error) if error.is_connect() || error.is_timeout() || error.is_request() => {
            let detail = if error.is_timeout() {
                "timed out"
            } else {
                "connection failed"
            };
            return Attempt::Transient {
                detail: detail.to_string(),
                result: Err(OpenAIError::Reqwest(error)),
                retry_after: None,
            };
        }
        Err(error) => return Attempt::Final(Err(OpenAIError::Reqwest(error))),
    };
    let status = response.status();
    if status.is_success() {
        return Attempt::Final(Ok(response));
    }
    // The body decides between "rate limited" and "out of quota", and it must be re-served to
    // async-openai afterwards, so read it whole (error bodies are small).
    let headers = response.headers().clone();
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(error) => {
            return Attempt::Transient {
                detail: format!("HTTP {status} with an unreadable body"),
                result: Err(OpenAIError::Reqwest(error)),
                retry_after: None,
            };
        }
    };
    let transient = is_transient_status(status) && !is_insufficient_quota(&body);
    let result = rebuild(status, &headers, as_openai_error_body(status, body)).map_err(|e| {
        OpenAIError::InvalidArgument(format!("cannot re-serve an HTTP {status} response: {e}"))
    });
    if transient {
        Attempt::Transient {
            detail: format!("HTTP {status}"),
            retry_after: retry_after(&headers),
            result,
        }
    } else {
        Attempt::Final(result)
    }
}

/// OpenAI's `type`/`code` for an account without credit: retrying cannot help.
const INSUFFICIENT_QUOTA: &str = "insufficient_quota";

/// Whether an OpenAI error body says `insufficient_quota` in `error.type` or `error.code`
/// (OpenAI sends both; async-openai looks only at `type`).
fn is_insufficient_quota(body: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    ["type", "code"]
        .iter()
        .any(|key| value["error"][key].as_str() == Some(INSUFFICIENT_QUOTA))
}

/// A 4xx body that is not OpenAI's `{"error": {...}}` (a proxy's HTML page, plain text) would
/// make async-openai fail with a deserialisation error that hides the status; wrap it in the
/// standard shape so the caller sees "HTTP 429: <text>". 5xx bodies are never parsed.
fn as_openai_error_body(status: StatusCode, body: Bytes) -> Bytes {
    if status.is_server_error() {
        return body;
    }
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    if parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .is_some_and(serde_json::Value::is_object)
    {
        return body;
    }
    let text = String::from_utf8_lossy(&body);
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let message: String = flat.chars().take(300).collect();
    let message = if message.is_empty() {
        status.to_string()
    } else {
        message
    };
    let wrapped = serde_json::json!({"error": {"message": message, "type": null, "param": null, "code": null}});
    Bytes::from(wrapped.to_string())
}

fn rebuild(status: StatusCode, headers: &HeaderMap, body: Bytes) -> Result<Response, http::Error> {
    let mut builder = http::Response::builder().status(status);
    for (name, value) in headers {
        // The body is re-served whole and maybe rewritten: its old framing no longer applies.
        if name != reqwest::header::CONTENT_LENGTH && name != reqwest::header::TRANSFER_ENCODING {
            builder = builder.header(name, value);
        }
    }
    builder.body(body).map(Response::from)
}

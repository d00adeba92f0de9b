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
//! The retry loop is backon's, driven by the same [`RetryPolicy`] as [`shared::http::Http`]; only
//! the classification differs where OpenAI's answers need it (the body of a 429).
//!
//! A timed-out upload may have reached OpenAI; retrying it can leave an orphan file behind
//! under the same upload name and size. `vectorize` finds such files by name and size
//! (`--cleanup` deletes them), since no id of theirs ever reached the job.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use backon::Retryable;
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

/// A failed attempt worth another try: the result to hand back if no try is left, the request
/// and what went wrong (for the log), and what the server asked to wait.
struct Transient {
    result: Result<Response, OpenAIError>,
    detail: String,
    retry_after: Option<Duration>,
}

/// One attempt: `Ok` with the final result (a success or a permanent failure, both handed to
/// async-openai as they are), or `Err` when the shared policy says to try again.
type Attempt = Result<Result<Response, OpenAIError>, Transient>;

/// Runs the attempts under backon with the shared policy: its backoff with jitter, stretched to
/// what `Retry-After` asks (capped) by [`RetryPolicy::wait`].
async fn send_with_retries(
    client: reqwest::Client,
    policy: RetryPolicy,
    factory: HttpRequestFactory,
) -> Result<Response, OpenAIError> {
    let once = || async {
        let request = match factory.build().await {
            Ok(request) => request,
            Err(error) => return Ok(Err(error)),
        };
        attempt(&client, request).await
    };
    let outcome = once
        .retry(policy.backoff())
        .sleep(tokio::time::sleep)
        .adjust(|transient: &Transient, delay| delay.map(|d| policy.wait(d, transient.retry_after)))
        .notify(|transient: &Transient, wait| {
            tracing::warn!(
                service = "OpenAI",
                retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "OpenAI {}; retrying",
                transient.detail
            );
        })
        .await;
    match outcome {
        Ok(result) => result,
        Err(transient) => transient.result,
    }
}

async fn attempt(client: &reqwest::Client, request: reqwest::Request) -> Attempt {
    let what = format!("{} {}", request.method(), request.url().path());
    let response = match client.execute(request).await {
        Ok(response) => response,
        Err(error) if error.is_connect() || error.is_timeout() || error.is_request() => {
            let detail = if error.is_timeout() {
                "timed out"
            } else {
                "connection failed"
            };
            return Err(Transient {
                detail: format!("{what}: {detail}"),
                result: Err(OpenAIError::Reqwest(error)),
                retry_after: None,
            });
        }
        Err(error) => return Ok(Err(OpenAIError::Reqwest(error))),
    };
    let status = response.status();
    if status.is_success() {
        return Ok(Ok(response));
    }
    // The body decides between "rate limited" and "out of quota", and it must be re-served to
    // async-openai afterwards, so read it whole (error bodies are small).
    let headers = response.headers().clone();
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(error) => {
            return Err(Transient {
                detail: format!("{what}: HTTP {status} with an unreadable body"),
                result: Err(OpenAIError::Reqwest(error)),
                retry_after: None,
            });
        }
    };
    let transient = is_transient_status(status) && !is_insufficient_quota(&body);
    let result = rebuild(status, &headers, as_openai_error_body(status, body)).map_err(|e| {
        OpenAIError::InvalidArgument(format!("cannot re-serve an HTTP {status} response: {e}"))
    });
    if transient {
        Err(Transient {
            detail: format!("{what}: HTTP {status}"),
            retry_after: retry_after(&headers),
            result,
        })
    } else {
        Ok(result)
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

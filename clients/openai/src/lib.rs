//! The OpenAI client of the jobs that call OpenAI (`vectorize`, `pipeline`).
//!
//! Both jobs must build the client the same way, so it is built here once: async-openai on the
//! shared HTTP client ([`shared::http::client`]: TLS roots compiled in, connect and request
//! timeouts), the API key read from `OPENAI_API_KEY` and registered for log redaction, the base
//! URL from `OPENAI_BASE_URL` (the emulator in tests), and the shared retry policy in place of
//! async-openai's fixed one (see [`retry`](crate::retry)). [`map_error`] turns what OpenAI
//! answers into the one-line errors and exit codes of SPEC §8.
//!
//! Concurrency is bounded where a job fans out (a `tokio::sync::Semaphore` around its calls),
//! not here: only the job knows which calls run in parallel.

mod retry;

pub use async_openai;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use shared::http::HttpSettings;
use shared::{Error, Result};

/// The client type the jobs hold.
pub type OpenAi = Client<OpenAIConfig>;

/// Where requests go when `OPENAI_BASE_URL` is not set.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// Builds the client from `OPENAI_API_KEY` and `OPENAI_BASE_URL`. A missing or empty key is bad
/// input (exit 2), reported before any network call.
pub fn connect(settings: &HttpSettings) -> Result<OpenAi> {
    let key = std::env::var("OPENAI_API_KEY").ok();
    let base = std::env::var("OPENAI_BASE_URL").ok();
    connect_to(settings, key.as_deref(), base.as_deref())
}

fn connect_to(settings: &HttpSettings, key: Option<&str>, base: Option<&str>) -> Result<OpenAi> {
    let key = key.map(str::trim).filter(|k| !k.is_empty()).ok_or_else(|| {
        Error::bad_input(
            "OPENAI_API_KEY is not set: export your OpenAI API key (or pass it to the job as a secret)",
        )
    })?;
    shared::logging::context().add_secret(key);
    if reqwest::header::HeaderValue::from_str(&format!("Bearer {key}")).is_err() {
        return Err(Error::bad_input(
            "OPENAI_API_KEY contains characters an HTTP header cannot carry (a stray newline or \
             quote?): export the key exactly as OpenAI shows it",
        ));
    }
    let base = api_base(base)?;
    let http = shared::http::client(settings)?;
    let config = OpenAIConfig::new().with_api_key(key).with_api_base(base);
    let transport = retry::RetryingTransport::new(http.clone(), settings.retry.clone());
    Ok(Client::build(http, config).with_http_service(transport))
}

/// The validated base URL, without a trailing `/`.
fn api_base(base: Option<&str>) -> Result<String> {
    let Some(base) = base.map(str::trim).filter(|b| !b.is_empty()) else {
        return Ok(DEFAULT_BASE_URL.to_string());
    };
    match url::Url::parse(base) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
            Ok(base.trim_end_matches('/').to_string())
        }
        _ => Err(Error::bad_input(format!(
            "OPENAI_BASE_URL {base:?} is not an http(s) URL: set it like {DEFAULT_BASE_URL} or unset it"
        ))),
    }
}

/// The HTTP status OpenAI answered with, if the error is an API error.
pub fn status(err: &OpenAIError) -> Option<u16> {
    match err {
        OpenAIError::ApiError(response) => Some(response.status_code.as_u16()),
        _ => None,
    }
}

/// Turns a failed call into the one-line error of SPEC §8. `what` names the call for the user
/// ("upload data/report.pdf", "retrieve vector store vs_123").
pub fn map_error(err: OpenAIError, what: &str) -> Error {
    let error = match &err {
        OpenAIError::ApiError(response) => {
            let api = &response.api_error;
            let status = response.status_code.as_u16();
            let says = |value: &str| {
                api.code.as_deref() == Some(value) || api.r#type.as_deref() == Some(value)
            };
            let message = api.message.trim();
            match status {
                401 => Error::external(format!(
                    "OpenAI refused the API key (revoked or wrong) when asked to {what}: set a valid OPENAI_API_KEY"
                )),
                403 => Error::external(format!(
                    "OpenAI denied access when asked to {what} ({message}): check that the key's project may use this resource"
                )),
                404 => Error::external(format!(
                    "cannot {what}: OpenAI has no such resource ({message}); it was deleted, expired or belongs to another project"
                )),
                429 if says("insufficient_quota") => Error::external(format!(
                    "OpenAI refused to {what}: the account has run out of quota (insufficient_quota); add credit or raise the limit, then re-run"
                )),
                429 => Error::external(format!(
                    "OpenAI kept rate-limiting the request to {what} after every retry ({message}); lower the concurrency or try again later"
                )),
                500..=599 => Error::external(format!(
                    "cannot {what}: OpenAI is unavailable after every retry (HTTP {status}); try again later"
                )),
                _ => Error::external(format!(
                    "OpenAI rejected the request to {what} (HTTP {status}: {message})"
                )),
            }
        }
        OpenAIError::Reqwest(e) if e.is_timeout() => Error::external(format!(
            "cannot {what}: OpenAI did not answer in time after every retry; try again later"
        )),
        OpenAIError::Reqwest(e) => Error::external(format!(
            "cannot {what}: cannot reach OpenAI ({e}); check OPENAI_BASE_URL and the network"
        )),
        OpenAIError::JSONDeserialize(e, _) => Error::external(format!(
            "cannot {what}: OpenAI sent a reply this version cannot read ({e})"
        )),
        OpenAIError::FileReadError(message) => Error::storage(format!(
            "cannot {what}: cannot read the file to send ({message})"
        )),
        OpenAIError::FileSaveError(message) => Error::storage(format!(
            "cannot {what}: cannot save what OpenAI sent ({message})"
        )),
        OpenAIError::InvalidArgument(message) => Error::internal(format!(
            "cannot {what}: the request could not be built ({message})"
        )),
        OpenAIError::StreamError(e) => {
            Error::external(format!("cannot {what}: the reply stream failed ({e})"))
        }
        OpenAIError::Boxed(e) => Error::external(format!("cannot {what}: {e}")),
    };
    error.with_source(err)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use shared::http::RetryPolicy;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    fn fast(max_retries: usize) -> HttpSettings {
        HttpSettings {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            max_concurrency: 4,
            retry: RetryPolicy {
                max_retries,
                min_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(20),
                max_retry_after: Duration::from_secs(5),
            },
        }
    }

    fn client(server: &MockServer, max_retries: usize) -> OpenAi {
        connect_to(
            &fast(max_retries),
            Some("test-openai-key"),
            Some(&format!("{}/v1", server.uri())),
        )
        .unwrap()
    }

    fn store_json() -> serde_json::Value {
        serde_json::json!({
            "id": "vs_1", "object": "vector_store", "created_at": 1, "name": "acme", "usage_bytes": 0,
            "file_counts": {"in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0, "total": 0},
            "status": "completed", "expires_after": null, "expires_at": null, "last_active_at": 1,
            "metadata": {}
        })
    }

    fn openai_error(message: &str, kind: &str, code: Option<&str>) -> serde_json::Value {
        serde_json::json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
    }

    /// A server that answers every GET with `answer`.
    async fn answering(answer: ResponseTemplate) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(answer)
            .mount(&server)
            .await;
        server
    }

    /// The error of retrieving a vector store from `server` with `max_retries`.
    async fn retrieve_error(server: &MockServer, max_retries: usize) -> OpenAIError {
        client(server, max_retries)
            .vector_stores()
            .retrieve("vs_1")
            .await
            .unwrap_err()
    }

    async fn requests(server: &MockServer) -> usize {
        server.received_requests().await.unwrap().len()
    }

    #[test]
    fn a_missing_or_empty_key_is_bad_input() {
        for key in [None, Some(""), Some("  ")] {
            let err = connect_to(&HttpSettings::default(), key, None).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            assert!(
                err.to_string()
                    .starts_with("OPENAI_API_KEY is not set: export your OpenAI API key"),
                "{err}"
            );
        }
        let err = connect_to(
            &HttpSettings::default(),
            Some("test-key\nsecond-line"),
            None,
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), 2, "{err}");
    }

    #[test]
    fn the_base_url_defaults_to_openai_and_must_be_http() {
        let client = connect_to(&HttpSettings::default(), Some("test-openai-key"), None).unwrap();
        assert_eq!(
            async_openai::config::Config::api_base(client.config()),
            DEFAULT_BASE_URL
        );
        let client = connect_to(
            &HttpSettings::default(),
            Some("test-openai-key"),
            Some("http://127.0.0.1:9/v1/"),
        )
        .unwrap();
        assert_eq!(
            async_openai::config::Config::api_base(client.config()),
            "http://127.0.0.1:9/v1"
        );
        let err = connect_to(
            &HttpSettings::default(),
            Some("test-openai-key"),
            Some("127.0.0.1:9/v1"),
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("OPENAI_BASE_URL"), "{err}");
    }

    #[tokio::test]
    async fn a_503_storm_is_survived() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/vector_stores/vs_1"))
            .respond_with(ResponseTemplate::new(503).set_body_string("overloaded"))
            .up_to_n_times(5)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/vector_stores/vs_1"))
            .respond_with(ResponseTemplate::new(200).set_body_json(store_json()))
            .mount(&server)
            .await;
        let store = client(&server, 6)
            .vector_stores()
            .retrieve("vs_1")
            .await
            .unwrap();
        assert_eq!(store.id, "vs_1");
        assert_eq!(requests(&server).await, 6);
    }

    #[tokio::test]
    async fn a_timed_out_request_is_retried() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(store_json())
                    .set_delay(Duration::from_secs(3)),
            )
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(store_json()))
            .mount(&server)
            .await;
        let settings = HttpSettings {
            request_timeout: Duration::from_millis(300),
            ..fast(2)
        };
        let client = connect_to(
            &settings,
            Some("test-openai-key"),
            Some(&format!("{}/v1", server.uri())),
        )
        .unwrap();
        let store = client.vector_stores().retrieve("vs_1").await.unwrap();
        assert_eq!(store.id, "vs_1");
        assert_eq!(requests(&server).await, 2);
    }

    #[tokio::test]
    async fn an_upload_is_streamed_again_on_every_attempt() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/files"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(2)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/files"))
            .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "id": "file-1", "object": "file", "bytes": 22, "created_at": 1,
                "expires_at": null, "filename": "report.md", "purpose": "assistants"
            })))
            .mount(&server)
            .await;
        let dir = std::env::temp_dir().join(format!("openai-client-upload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("report.md");
        std::fs::write(&file, "# Report\nRevenue grew.\n").unwrap();
        let request = async_openai::types::files::CreateFileRequestArgs::default()
            .file(&file)
            .purpose(async_openai::types::files::FilePurpose::Assistants)
            .build()
            .unwrap();
        let uploaded = client(&server, 3).files().create(request).await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(uploaded.id, "file-1");
        let received = server.received_requests().await.unwrap();
        assert_eq!(received.len(), 3);
        for request in &received {
            let body = String::from_utf8_lossy(&request.body);
            assert!(
                body.contains("# Report\nRevenue grew.") && body.contains("report.md"),
                "every attempt carries the whole file: {body}"
            );
        }
    }

    #[tokio::test]
    async fn a_bad_request_fails_at_once() {
        let server = answering(ResponseTemplate::new(400).set_body_json(openai_error(
            "Invalid 'limit'.",
            "invalid_request_error",
            Some("integer_out_of_range"),
        )))
        .await;
        let err = retrieve_error(&server, 4).await;
        assert_eq!(status(&err), Some(400));
        assert_eq!(requests(&server).await, 1);
    }

    #[tokio::test]
    async fn exhausted_retries_are_an_external_error() {
        let server = answering(ResponseTemplate::new(502)).await;
        let err = retrieve_error(&server, 2).await;
        assert_eq!(requests(&server).await, 3);
        let err = map_error(err, "retrieve vector store vs_1");
        assert_eq!(err.exit_code(), 4);
        assert!(
            err.to_string()
                .contains("unavailable after every retry (HTTP 502)"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn retry_after_is_honoured_and_a_non_json_429_is_retried() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("Retry-After", "1")
                    .set_body_string("slow down"),
            )
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(store_json()))
            .mount(&server)
            .await;
        let started = Instant::now();
        client(&server, 3)
            .vector_stores()
            .retrieve("vs_1")
            .await
            .unwrap();
        // The backoff alone waits at most 20 ms; the server asked for a second.
        assert!(
            started.elapsed() >= Duration::from_millis(950),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(requests(&server).await, 2);
    }

    #[tokio::test]
    async fn a_non_json_429_that_persists_keeps_its_status() {
        let server =
            answering(ResponseTemplate::new(429).set_body_string("<html>busy</html>")).await;
        let err = retrieve_error(&server, 1).await;
        assert_eq!(status(&err), Some(429));
        let err = map_error(err, "retrieve vector store vs_1");
        assert!(
            err.to_string().contains("rate-limiting") && err.to_string().contains("busy"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn insufficient_quota_fails_at_once() {
        let server = answering(ResponseTemplate::new(429).set_body_json(openai_error(
            "You exceeded your current quota.",
            "insufficient_quota",
            Some("insufficient_quota"),
        )))
        .await;
        let err = retrieve_error(&server, 4).await;
        assert_eq!(requests(&server).await, 1);
        let err = map_error(err, "retrieve vector store vs_1");
        assert_eq!(err.exit_code(), 4);
        assert!(err.to_string().contains("run out of quota"), "{err}");
    }

    #[tokio::test]
    async fn a_revoked_key_fails_at_once_with_a_clear_message() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(401).set_body_json(openai_error(
                "Incorrect API key provided: test-ope***-key.",
                "invalid_request_error",
                Some("invalid_api_key"),
            )))
            .mount(&server)
            .await;
        let err = client(&server, 4)
            .files()
            .retrieve("file-1")
            .await
            .unwrap_err();
        assert_eq!(requests(&server).await, 1);
        let err = map_error(err, "retrieve file file-1");
        assert_eq!(err.exit_code(), 4);
        assert_eq!(
            err.to_string(),
            "OpenAI refused the API key (revoked or wrong) when asked to retrieve file file-1: set a valid OPENAI_API_KEY"
        );
    }

    #[tokio::test]
    async fn a_missing_resource_is_named() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(404).set_body_json(openai_error(
                "No vector store found with id 'vs_9'.",
                "invalid_request_error",
                None,
            )))
            .mount(&server)
            .await;
        let err = client(&server, 4)
            .vector_stores()
            .retrieve("vs_9")
            .await
            .unwrap_err();
        assert_eq!(status(&err), Some(404));
        assert_eq!(requests(&server).await, 1);
        let msg = map_error(err, "retrieve vector store vs_9").to_string();
        assert!(
            msg.contains("retrieve vector store vs_9") && msg.contains("No vector store found"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_server_is_retried_then_reported() {
        // Bind and drop a listener: nothing accepts on that port any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = connect_to(
            &fast(2),
            Some("test-openai-key"),
            Some(&format!("http://127.0.0.1:{port}/v1")),
        )
        .unwrap();
        let err = map_error(
            client.files().retrieve("file-1").await.unwrap_err(),
            "retrieve file file-1",
        );
        assert_eq!(err.exit_code(), 4);
        assert!(err.to_string().contains("cannot reach OpenAI"), "{err}");
    }
}

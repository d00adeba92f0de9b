//! The one place that builds HTTP clients and decides what is worth retrying (SPEC §7.2).
//!
//! Every call to OpenAI, Google or Paperspace goes through a client from [`client`]: TLS roots
//! compiled in (so it works in an empty `FROM scratch` image), connect and request timeouts.
//! [`Http::send`] adds a concurrency bound and the retry policy: transient failures (429, 5xx,
//! connection errors, timeouts) are retried with capped exponential backoff and jitter, waiting
//! at least what `Retry-After` asks; permanent ones (400, 401, 403, 404, …) fail at once, and so
//! does a `Retry-After` longer than [`RetryPolicy::max_retry_after`] (retrying earlier than the
//! server asked would only be refused again).

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// Timeouts, concurrency and retries for one service.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub connect_timeout: Duration,
    /// Whole-request timeout (uploads of large files need minutes).
    pub request_timeout: Duration,
    /// Requests in flight at once toward the service.
    pub max_concurrency: usize,
    pub retry: RetryPolicy,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(300),
            max_concurrency: 8,
            retry: RetryPolicy::default(),
        }
    }
}

/// Capped exponential backoff with jitter.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// The longest `Retry-After` honoured; a server asking for more fails the call at once (see
    /// [`RetryPolicy::asks_too_long`]) instead of stalling the job or retrying too early.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 6,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The delays between attempts (with jitter), for clients that run their own loop.
    pub fn backoff(&self) -> impl Iterator<Item = Duration> + Send + Sync + use<> {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
            .with_jitter()
            .build()
    }

    /// Whether the server's `Retry-After` is beyond what this policy waits: the call should then
    /// fail now rather than retry before the server is ready.
    pub fn asks_too_long(&self, retry_after: Option<Duration>) -> bool {
        retry_after.is_some_and(|asked| asked > self.max_retry_after)
    }

    /// The wait before the next attempt: the backoff delay, or longer if the server asked (never
    /// more than `max_retry_after`; check [`RetryPolicy::asks_too_long`] first).
    pub fn wait(&self, backoff_delay: Duration, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(asked) => asked
                .min(self.max_retry_after)
                .max(backoff_delay.min(Duration::from_millis(100))),
            None => backoff_delay,
        }
    }
}

/// Installs `ring` as the process's TLS crypto provider. Two providers get linked in (reqwest's
/// and Google's crates'), and rustls then refuses to pick one by itself. Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The Mozilla root certificates, compiled into the binary.
pub fn root_certificates() -> Vec<reqwest::Certificate> {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .filter_map(|der| reqwest::Certificate::from_der(der).ok())
        .collect()
}

/// A reqwest client with compiled-in roots and the settings' timeouts.
pub fn client(settings: &HttpSettings) -> Result<Client> {
    install_crypto_provider();
    Client::builder()
        .tls_certs_only(root_certificates())
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.request_timeout)
        .user_agent(concat!(
            "agent-readiness-report/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .map_err(|e| Error::internal(format!("cannot build the HTTP client: {e}")).with_source(e))
}

/// Whether an HTTP status is worth retrying.
pub fn is_transient_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
}

/// `Retry-After` as a delay: delta-seconds or an HTTP date.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (when.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
        .or(Some(Duration::ZERO))
}

/// A failed attempt, classified.
#[derive(Debug)]
pub enum Failure {
    /// Worth another attempt; the server may have said when.
    Transient {
        detail: String,
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help (the status and the start of the body, for the message).
    Permanent { status: StatusCode, detail: String },
    /// The server asked to wait longer than the policy allows.
    Throttled { detail: String, asked: Duration },
}

impl Failure {
    fn is_transient(&self) -> bool {
        matches!(self, Failure::Transient { .. })
    }
}

/// A client bound to one service: its name (for messages), a concurrency limit and the policy.
#[derive(Debug, Clone)]
pub struct Http {
    service: &'static str,
    client: Client,
    limit: Arc<Semaphore>,
    policy: RetryPolicy,
}

impl Http {
    pub fn new(service: &'static str, settings: &HttpSettings) -> Result<Http> {
        Ok(Http {
            service,
            client: client(settings)?,
            limit: Arc::new(Semaphore::new(settings.max_concurrency.max(1))),
            policy: settings.retry.clone(),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Sends the request `build` makes (called again for every attempt) and returns the first
    /// successful response. `what` describes the call for error messages ("list Drive folder").
    pub async fn send(
        &self,
        what: &str,
        build: impl Fn(&Client) -> RequestBuilder,
    ) -> Result<Response> {
        let _permit = self
            .limit
            .acquire()
            .await
            .map_err(|_| Error::internal("HTTP limiter closed"))?;
        let attempt = || async {
            match build(&self.client).send().await {
                Ok(response) if response.status().is_success() => Ok(response),
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(response.headers());
                    let body = response.text().await.unwrap_or_default();
                    let detail = format!("HTTP {status}: {}", snippet(&body));
                    if is_transient_status(status) && self.policy.asks_too_long(retry_after) {
                        Err(Failure::Throttled {
                            detail,
                            asked: retry_after.unwrap_or_default(),
                        })
                    } else if is_transient_status(status) {
                        Err(Failure::Transient {
                            detail,
                            retry_after,
                        })
                    } else {
                        Err(Failure::Permanent { status, detail })
                    }
                }
                Err(e) => Err(Failure::Transient {
                    detail: describe(&e),
                    retry_after: None,
                }),
            }
        };
        let policy = &self.policy;
        let result = attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(policy.min_delay)
                    .with_max_delay(policy.max_delay)
                    .with_max_times(policy.max_retries)
                    .with_jitter(),
            )
            .sleep(tokio::time::sleep)
            .when(Failure::is_transient)
            .adjust(|failure, delay| match failure {
                Failure::Transient { retry_after, .. } => {
                    delay.map(|d| policy.wait(d, *retry_after))
                }
                Failure::Permanent { .. } | Failure::Throttled { .. } => None,
            })
            .notify(|failure, delay| {
                if let Failure::Transient { detail, .. } = failure {
                    tracing::warn!(
                        service = self.service,
                        retry_in_ms = delay.as_millis() as u64,
                        "{what}: {detail}; retrying"
                    );
                }
            })
            .await;
        result.map_err(|failure| match failure {
            Failure::Transient { detail, .. } => Error::external(format!(
                "{what} failed after {} retries ({detail}); {} is unavailable, try again later",
                policy.max_retries, self.service
            )),
            Failure::Permanent { status, detail } => Error::external(format!(
                "{what} was refused by {} ({detail}){}",
                self.service,
                permanent_hint(status)
            )),
            Failure::Throttled { detail, asked } => Error::external(format!(
                "{what}: {} asked to retry after {asked:?} (Retry-After; {detail}), longer than \
                 the {:?} a job waits; try again later",
                self.service, policy.max_retry_after
            )),
        })
    }
}

/// What a user can do about a permanent refusal.
pub fn permanent_hint(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => {
            "; the credentials are missing, wrong or revoked: check the key"
        }
        StatusCode::FORBIDDEN => {
            "; the credentials lack permission: share the resource or grant access"
        }
        StatusCode::NOT_FOUND => {
            "; the resource does not exist or is not shared with these credentials"
        }
        _ => "",
    }
}

fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "connection error"
    };
    let mut text = format!("{kind}: {e}");
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

fn snippet(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn fast() -> HttpSettings {
        HttpSettings {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            max_concurrency: 4,
            retry: RetryPolicy {
                max_retries: 4,
                min_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(20),
                max_retry_after: Duration::from_secs(5),
            },
        }
    }

    #[tokio::test]
    async fn honours_retry_after_on_429_then_succeeds() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/x"))
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/x"))
            .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
            .mount(&server)
            .await;
        let http = Http::new("test", &fast()).unwrap();
        let started = std::time::Instant::now();
        let url = format!("{}/x", server.uri());
        let response = http.send("get x", |c| c.get(&url)).await.unwrap();
        assert_eq!(response.text().await.unwrap(), "ok");
        // The backoff alone would wait at most 20 ms; Retry-After asked for a second.
        assert!(
            started.elapsed() >= Duration::from_millis(950),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(server.received_requests().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn survives_a_503_run_and_gives_up_after_max_retries() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/flaky"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(3)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/flaky"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/down"))
            .respond_with(ResponseTemplate::new(503).set_body_string("overloaded"))
            .mount(&server)
            .await;
        let http = Http::new("test", &fast()).unwrap();
        let flaky = format!("{}/flaky", server.uri());
        http.send("get flaky", |c| c.get(&flaky)).await.unwrap();
        let down = format!("{}/down", server.uri());
        let err = http.send("get down", |c| c.get(&down)).await.unwrap_err();
        assert_eq!(err.exit_code(), 4);
        assert!(
            err.to_string().contains("after 4 retries") && err.to_string().contains("overloaded"),
            "{err}"
        );
        let down_calls = server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.path() == "/down")
            .count();
        assert_eq!(down_calls, 5);
    }

    #[tokio::test]
    async fn a_401_fails_at_once_with_a_hint() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(401)
                    .set_body_string(r#"{"error":{"message":"Incorrect API key"}}"#),
            )
            .mount(&server)
            .await;
        let http = Http::new("OpenAI", &fast()).unwrap();
        let url = server.uri();
        let err = http.send("list files", |c| c.get(&url)).await.unwrap_err();
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
        let msg = err.to_string();
        assert!(
            msg.contains("refused by OpenAI") && msg.contains("401") && msg.contains("revoked"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn a_dropped_connection_is_retried() {
        // A server that accepts and immediately closes the first two connections, then answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            for n in 0.. {
                let (mut socket, _) = listener.accept().await.unwrap();
                if n < 2 {
                    drop(socket);
                    continue;
                }
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            }
        });
        let http = Http::new("test", &fast()).unwrap();
        let url = format!("http://{addr}/");
        let response = http.send("get", |c| c.get(&url)).await.unwrap();
        assert_eq!(response.text().await.unwrap(), "ok");
    }

    #[tokio::test]
    async fn a_retry_after_beyond_the_cap_fails_at_once() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("Retry-After", "3600")
                    .set_body_string("slow down"),
            )
            .mount(&server)
            .await;
        let http = Http::new("OpenAI", &fast()).unwrap();
        let url = server.uri();
        let err = http
            .send("create vector store", |c| c.get(&url))
            .await
            .unwrap_err();
        assert_eq!(err.exit_code(), 4, "{err}");
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
        let msg = err.to_string();
        assert!(
            msg.contains("OpenAI asked to retry after 3600s")
                && msg.contains("slow down")
                && msg.contains("try again later"),
            "{msg}"
        );
    }

    #[test]
    fn retry_after_up_to_the_cap_is_waited_beyond_it_refused() {
        let policy = fast().retry;
        assert!(!policy.asks_too_long(None));
        assert!(!policy.asks_too_long(Some(policy.max_retry_after)));
        assert!(policy.asks_too_long(Some(policy.max_retry_after + Duration::from_millis(1))));
        let backoff = Duration::from_millis(10);
        assert_eq!(policy.wait(backoff, None), backoff);
        assert_eq!(
            policy.wait(backoff, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
    }

    /// Counts requests in flight: the server adds one as a request arrives, the caller removes
    /// it once the response is back.
    #[derive(Clone, Default)]
    struct InFlight {
        now: Arc<AtomicUsize>,
        peak: Arc<AtomicUsize>,
    }

    impl wiremock::Respond for InFlight {
        fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            // Slow answers, so that every request the limiter lets through overlaps.
            ResponseTemplate::new(200).set_delay(Duration::from_millis(300))
        }
    }

    /// The most requests the server saw at once when `requests` calls start together.
    async fn peak_in_flight(max_concurrency: usize, requests: usize) -> usize {
        let server = MockServer::start().await;
        let in_flight = InFlight::default();
        Mock::given(method("GET"))
            .respond_with(in_flight.clone())
            .mount(&server)
            .await;
        let settings = HttpSettings {
            max_concurrency,
            ..fast()
        };
        let http = Http::new("test", &settings).unwrap();
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..requests {
            let (http, url, now) = (http.clone(), server.uri(), in_flight.now.clone());
            calls.spawn(async move {
                let status = http.send("get", |c| c.get(&url)).await.map(|r| r.status());
                now.fetch_sub(1, Ordering::SeqCst);
                status
            });
        }
        while let Some(done) = calls.join_next().await {
            assert_eq!(done.unwrap().unwrap(), StatusCode::OK);
        }
        assert_eq!(server.received_requests().await.unwrap().len(), requests);
        in_flight.peak.load(Ordering::SeqCst)
    }

    // One thread: a call's count drops as soon as its response is back, before another call can
    // take the freed permit, so the peak counts only requests that really overlapped.
    #[tokio::test(flavor = "current_thread")]
    async fn concurrency_is_bounded() {
        assert_eq!(peak_in_flight(2, 6).await, 2);
        // The same probe sees more at once without the bound, so it can see a breach.
        assert!(peak_in_flight(6, 6).await > 2);
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        headers.insert("retry-after", later.parse().unwrap());
        let d = retry_after(&headers).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        headers.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }
}

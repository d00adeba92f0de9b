//! Retries for google-drive3 calls, through the crate's own hook ([`Delegate`]).
//!
//! google-drive3 neither retries nor times out by itself. A [`RetryDelegate`] is handed to one
//! call: transient failures (429, 5xx, Drive's 403 rate-limit reasons, connection errors) are
//! retried with the shared capped exponential backoff, waiting at least what `Retry-After` asks;
//! everything else aborts at once.

use std::time::Duration;

use google_drive3::common::{Delegate, Response, Retry};
use shared::http::RetryPolicy;

/// Drive's reasons for a 403 that means "slow down", not "forbidden".
const RATE_LIMIT_REASONS: [&str; 2] = ["rateLimitExceeded", "userRateLimitExceeded"];

/// Retry state for one Drive call (attempts share one backoff sequence).
pub struct RetryDelegate {
    what: String,
    policy: RetryPolicy,
    backoff: Box<dyn Iterator<Item = Duration> + Send + Sync>,
    retries: usize,
}

impl RetryDelegate {
    /// `what` describes the call in log lines ("list Drive folder 1abc…").
    pub fn new(what: &str, policy: &RetryPolicy) -> RetryDelegate {
        RetryDelegate {
            what: what.to_string(),
            policy: policy.clone(),
            backoff: Box::new(policy.backoff()),
            retries: 0,
        }
    }

    /// Logs a transient failure and says how long to wait before the next attempt, or `None`
    /// when the retries are used up.
    pub fn next_wait(&mut self, detail: String, retry_after: Option<Duration>) -> Option<Duration> {
        if self.policy.asks_too_long(retry_after) {
            // Waiting that long would stall the job; retrying sooner would be refused again.
            tracing::warn!(
                service = "Google Drive",
                retry_after_s = retry_after.unwrap_or_default().as_secs(),
                "{}: {detail}; Drive asks to wait longer than the retry policy allows, giving up",
                self.what
            );
            return None;
        }
        let wait = self
            .backoff
            .next()
            .map(|delay| self.policy.wait(delay, retry_after));
        if let Some(wait) = wait {
            self.retries += 1;
            tracing::warn!(
                service = "Google Drive",
                retry_in_ms = wait.as_millis() as u64,
                "{}: {detail}; retrying",
                self.what
            );
        }
        wait
    }

    /// Retries made so far.
    pub fn retries(&self) -> usize {
        self.retries
    }

    fn retry(&mut self, detail: String, retry_after: Option<Duration>) -> Retry {
        match self.next_wait(detail, retry_after) {
            Some(wait) => Retry::After(wait),
            None => Retry::Abort,
        }
    }
}

/// The `reason` of the first entry of a Drive error body (`error.errors[0].reason`).
pub fn error_reason(body: &serde_json::Value) -> Option<&str> {
    body.pointer("/error/errors/0/reason")
        .or_else(|| body.pointer("/error/status"))
        .and_then(|v| v.as_str())
}

impl Delegate for RetryDelegate {
    fn http_error(&mut self, err: &hyper_util::client::legacy::Error) -> Retry {
        self.retry(format!("connection error: {}", describe(err)), None)
    }

    fn http_failure(&mut self, response: &Response, body: Option<&serde_json::Value>) -> Retry {
        let status = response.status();
        let reason = body.and_then(error_reason);
        let rate_limited = status == hyper::StatusCode::FORBIDDEN
            && reason.is_some_and(|r| RATE_LIMIT_REASONS.contains(&r));
        if shared::http::is_transient_status(status) || rate_limited {
            let detail = format!(
                "HTTP {status}{}",
                reason.map(|r| format!(" {r}")).unwrap_or_default()
            );
            self.retry(detail, shared::http::retry_after(response.headers()))
        } else {
            Retry::Abort
        }
    }
}

/// An error with its causes, on one line.
pub fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let next = c.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = c.source();
    }
    text
}

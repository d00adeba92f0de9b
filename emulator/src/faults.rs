//! Fault injection per service: latency with jitter, 429 with Retry-After, 5xx and dropped
//! connections, triggered every Nth request or by a seeded (hence reproducible) probability.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The emulated services, classified by path prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    #[serde(rename = "openai")]
    OpenAi,
    Google,
    Paperspace,
}

impl Service {
    /// The service a request path belongs to; `None` for admin hooks and unknown prefixes.
    pub fn classify(path: &str) -> Option<Service> {
        if path.starts_with("/v1/") || path == "/v1" {
            Some(Service::OpenAi)
        } else if path == "/token"
            || path.starts_with("/token/")
            || path.starts_with("/drive/")
            || path.starts_with("/upload/")
            // google-drive3 starts every resumable upload here (hard-coded in the crate).
            || path.starts_with("/resumable/upload/")
        {
            Some(Service::Google)
        } else if path.starts_with("/paperspace/") {
            Some(Service::Paperspace)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Service::OpenAi => "openai",
            Service::Google => "google",
            Service::Paperspace => "paperspace",
        }
    }
}

impl FromStr for Service {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.to_ascii_lowercase().as_str() {
            "openai" => Ok(Service::OpenAi),
            "google" => Ok(Service::Google),
            "paperspace" => Ok(Service::Paperspace),
            other => Err(format!(
                "unknown service {other:?} (expected openai, google or paperspace)"
            )),
        }
    }
}

/// What an injected error looks like on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultError {
    /// 429 with a `Retry-After` header (whole seconds) and the service's error body.
    RateLimit { retry_after_secs: u64 },
    /// Any status (500, 503, ...) with the service's error body.
    Status { status: u16 },
    /// The TCP connection is closed without a response.
    Drop,
    /// The status, the headers (with the full `Content-Length`) and the first half of the body
    /// are sent, then the connection is closed: a download that breaks off mid-way.
    Truncate,
}

/// One service's fault rule. JSON form (all keys optional):
/// `{"latency_ms":100,"jitter_ms":50,"error":{"kind":"status","status":503},
///   "every_nth":1,"probability":0.5,"max_faults":3,"seed":7,"downloads_only":false}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSpec {
    /// Added to every request of the service.
    pub latency_ms: u64,
    /// Up to this much more latency, drawn from the seeded RNG.
    pub jitter_ms: u64,
    /// The error to inject; `None` injects latency only.
    pub error: Option<FaultError>,
    /// Inject on requests N, 2N, 3N, ... (1-based, counted per service).
    pub every_nth: Option<u64>,
    /// Inject with this probability (used when `every_nth` is unset).
    pub probability: Option<f64>,
    /// Stop injecting errors after this many.
    pub max_faults: Option<u64>,
    /// Seed of the RNG behind `probability` and `jitter_ms`.
    pub seed: u64,
    /// Apply the rule (latency, errors and counting) only to downloads of file content: Drive
    /// `alt=media` and exports, OpenAI file content. Other requests pass untouched.
    pub downloads_only: bool,
}

impl FaultSpec {
    /// Latency only.
    pub fn latency(latency: Duration, jitter: Duration) -> Self {
        FaultSpec {
            latency_ms: duration_ms(latency),
            jitter_ms: duration_ms(jitter),
            ..Self::default()
        }
    }
    /// `error` on the first `count` requests, then success.
    pub fn first(count: u64, error: FaultError) -> Self {
        FaultSpec {
            error: Some(error),
            every_nth: Some(1),
            max_faults: Some(count),
            ..Self::default()
        }
    }
    /// `error` on every `n`th request.
    pub fn every_nth(n: u64, error: FaultError) -> Self {
        FaultSpec {
            error: Some(error),
            every_nth: Some(n),
            ..Self::default()
        }
    }
    /// `error` with probability `p`, from an RNG seeded with `seed`.
    pub fn probability(p: f64, seed: u64, error: FaultError) -> Self {
        FaultSpec {
            error: Some(error),
            probability: Some(p),
            seed,
            ..Self::default()
        }
    }
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// What to do with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub delay: Duration,
    pub error: Option<FaultError>,
}

struct ServiceFaults {
    spec: FaultSpec,
    requests_seen: u64,
    faults_injected: u64,
    rng: fastrand::Rng,
}

/// The fault rules of all services, changeable at runtime.
pub struct Faults {
    rules: Mutex<BTreeMap<Service, ServiceFaults>>,
}

impl Default for Faults {
    fn default() -> Self {
        Self::new()
    }
}

impl Faults {
    pub fn new() -> Self {
        Faults {
            rules: Mutex::new(BTreeMap::new()),
        }
    }

    /// Replaces the rule of `service` and restarts its counters and RNG.
    pub fn set(&self, service: Service, spec: FaultSpec) {
        let rng = fastrand::Rng::with_seed(spec.seed);
        self.lock().insert(
            service,
            ServiceFaults {
                spec,
                requests_seen: 0,
                faults_injected: 0,
                rng,
            },
        );
    }

    /// Removes the rule of `service`.
    pub fn clear(&self, service: Service) {
        self.lock().remove(&service);
    }

    /// Removes every rule.
    pub fn clear_all(&self) {
        self.lock().clear();
    }

    /// The current rules with their counters.
    pub fn snapshot(&self) -> serde_json::Value {
        let rules = self.lock();
        let mut out = serde_json::Map::new();
        for (service, rule) in rules.iter() {
            out.insert(
                service.as_str().to_string(),
                serde_json::json!({
                    "spec": rule.spec,
                    "requests_seen": rule.requests_seen,
                    "faults_injected": rule.faults_injected,
                }),
            );
        }
        serde_json::Value::Object(out)
    }

    /// Counts the request and decides its fate; `download` says whether it fetches file content
    /// (see [`is_download`]).
    pub fn decide(&self, service: Service, download: bool) -> Decision {
        let mut rules = self.lock();
        let Some(rule) = rules
            .get_mut(&service)
            .filter(|rule| download || !rule.spec.downloads_only)
        else {
            return Decision {
                delay: Duration::ZERO,
                error: None,
            };
        };
        rule.requests_seen += 1;
        let jitter = if rule.spec.jitter_ms > 0 {
            rule.rng.u64(0..=rule.spec.jitter_ms)
        } else {
            0
        };
        let delay = Duration::from_millis(rule.spec.latency_ms.saturating_add(jitter));
        let under_cap = rule
            .spec
            .max_faults
            .is_none_or(|cap| rule.faults_injected < cap);
        let triggered = match (rule.spec.every_nth, rule.spec.probability) {
            (Some(n), _) => n > 0 && rule.requests_seen % n == 0,
            (None, Some(p)) => rule.rng.f64() < p,
            (None, None) => true,
        };
        let error = match rule.spec.error {
            Some(error) if under_cap && triggered => {
                rule.faults_injected += 1;
                Some(error)
            }
            _ => None,
        };
        Decision { delay, error }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Service, ServiceFaults>> {
        self.rules
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether a request fetches file content: Drive `files.get` with `alt=media`, Drive
/// `files.export`, OpenAI `GET /v1/files/{id}/content`.
pub fn is_download(path: &str, query: Option<&str>) -> bool {
    let media = query.is_some_and(|q| q.split('&').any(|pair| pair == "alt=media"));
    (path.starts_with("/drive/v3/files/") && (media || path.ends_with("/export")))
        || (path.starts_with("/v1/files/") && path.ends_with("/content"))
}

/// The body an injected error carries, shaped like the service's own errors.
pub fn error_body(service: Service, status: u16) -> serde_json::Value {
    match service {
        Service::OpenAi => {
            let (kind, code, message) = match status {
                429 => (
                    "requests",
                    Some("rate_limit_exceeded"),
                    "Rate limit reached for requests. Please try again later.",
                ),
                503 => (
                    "server_error",
                    None,
                    "The server is overloaded or not ready yet.",
                ),
                _ => (
                    "server_error",
                    None,
                    "The server had an error while processing your request.",
                ),
            };
            serde_json::json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
        }
        Service::Google => {
            let (status_name, reason, message) = match status {
                429 => (
                    "RESOURCE_EXHAUSTED",
                    "rateLimitExceeded",
                    "Rate limit exceeded. Retry later.",
                ),
                503 => (
                    "UNAVAILABLE",
                    "backendError",
                    "The service is currently unavailable.",
                ),
                _ => ("INTERNAL", "backendError", "Internal error encountered."),
            };
            serde_json::json!({"error": {
                "code": status,
                "message": message,
                "status": status_name,
                "errors": [{"reason": reason, "domain": "global", "message": message}],
            }})
        }
        Service::Paperspace => serde_json::json!({
            "status": status,
            "message": match status {
                429 => "Too many requests",
                503 => "Service unavailable",
                _ => "Internal server error",
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nth_with_cap_injects_exactly_the_planned_requests() {
        let faults = Faults::new();
        faults.set(
            Service::OpenAi,
            FaultSpec {
                max_faults: Some(2),
                ..FaultSpec::every_nth(2, FaultError::Drop)
            },
        );
        let injected: Vec<bool> = (0..8)
            .map(|_| faults.decide(Service::OpenAi, false).error.is_some())
            .collect();
        assert_eq!(
            injected,
            [false, true, false, true, false, false, false, false]
        );
        assert!(faults.decide(Service::Google, false).error.is_none());
    }

    #[test]
    fn probability_is_reproducible_for_a_seed() {
        let run = |seed| {
            let faults = Faults::new();
            let error = FaultError::Status { status: 500 };
            faults.set(Service::Google, FaultSpec::probability(0.5, seed, error));
            (0..64)
                .map(|_| faults.decide(Service::Google, false).error.is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        let hits = run(7).iter().filter(|hit| **hit).count();
        assert!((16..=48).contains(&hits), "{hits} of 64 at p=0.5");
    }

    #[test]
    fn paths_are_classified_by_prefix() {
        assert_eq!(Service::classify("/v1/files"), Some(Service::OpenAi));
        assert_eq!(Service::classify("/token"), Some(Service::Google));
        assert_eq!(
            Service::classify("/upload/drive/v3/files"),
            Some(Service::Google)
        );
        assert_eq!(
            Service::classify("/resumable/upload/drive/v3/files"),
            Some(Service::Google)
        );
        assert_eq!(
            Service::classify("/paperspace/v1/workflows"),
            Some(Service::Paperspace)
        );
        assert_eq!(Service::classify("/_admin/state"), None);
    }

    #[test]
    fn a_downloads_only_rule_leaves_api_calls_alone() {
        let faults = Faults::new();
        faults.set(
            Service::Google,
            FaultSpec {
                downloads_only: true,
                ..FaultSpec::every_nth(1, FaultError::Truncate)
            },
        );
        assert!(faults.decide(Service::Google, false).error.is_none());
        assert_eq!(
            faults.decide(Service::Google, true).error,
            Some(FaultError::Truncate)
        );
        assert!(is_download(
            "/drive/v3/files/abc",
            Some("alt=media&supportsAllDrives=true")
        ));
        assert!(is_download(
            "/drive/v3/files/abc/export",
            Some("mimeType=text%2Fplain")
        ));
        assert!(is_download("/v1/files/file-1/content", None));
        assert!(!is_download("/drive/v3/files/abc", Some("fields=id")));
        assert!(!is_download("/drive/v3/files", Some("alt=json")));
    }
}

//! Who may submit: a caller holding the API key (`X-API-Key` or `Authorization: Bearer`), or a
//! sender signing each request in the Standard Webhooks scheme.
//!
//! Standard Webhooks (<https://www.standardwebhooks.com>): the secret is `whsec_` + base64; the
//! sender puts `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`
//! (`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, several space-separated during a
//! key rotation) on the request. Signatures and keys are compared in constant time; timestamps
//! more than five minutes away from now are refused, and so is a message id already accepted
//! (answered 2xx) or in flight within that window (the window bounds the memory the replay
//! check needs). An id whose request failed is forgotten, so the sender's retry goes through.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// How far a signed request's timestamp may be from now, either way.
pub const TIMESTAMP_TOLERANCE: Duration = Duration::from_secs(5 * 60);
/// Message ids remembered at most; beyond that (after forgetting expired ones) signed requests
/// are refused rather than letting a replay through.
const MAX_REMEMBERED_IDS: usize = 100_000;
const MAX_ID_LEN: usize = 256;

/// Decodes a Standard Webhooks secret (`whsec_` + base64, the prefix optional).
pub fn decode_secret(text: &str) -> Result<Vec<u8>, String> {
    let encoded = text.trim();
    let encoded = encoded.strip_prefix("whsec_").unwrap_or(encoded);
    match STANDARD.decode(encoded) {
        Ok(bytes) if bytes.len() >= 16 => Ok(bytes),
        Ok(_) => Err("WEBHOOK_SECRET is too short: use at least 16 random bytes, base64-encoded after `whsec_`".into()),
        Err(e) => Err(format!("WEBHOOK_SECRET is not `whsec_` followed by base64 ({e})")),
    }
}

/// The signature a sender puts in `webhook-signature` (without the `v1,` prefix).
pub fn sign(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    STANDARD.encode(mac(secret, id, timestamp, body).finalize().into_bytes())
}

fn mac(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// How a request proved who it is (logged, never with the credential).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    ApiKey,
    Signed { message_id: String },
}

impl Principal {
    pub fn method(&self) -> &'static str {
        match self {
            Principal::ApiKey => "api_key",
            Principal::Signed { .. } => "signature",
        }
    }
}

/// The configured credentials and the memory of recent message ids.
pub struct Authenticator {
    api_key: Option<String>,
    secret: Option<Vec<u8>>,
    seen: Mutex<HashMap<String, Instant>>,
}

impl Authenticator {
    /// At least one of the two must be given (checked by the caller's configuration).
    pub fn new(api_key: Option<String>, secret: Option<Vec<u8>>) -> Authenticator {
        Authenticator {
            api_key,
            secret,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Checks the request's credentials against `body` (the exact bytes received).
    pub fn check(&self, headers: &HeaderMap, body: &[u8]) -> Result<Principal, ApiError> {
        let signed = headers.contains_key("webhook-signature")
            || headers.contains_key("webhook-id")
            || headers.contains_key("webhook-timestamp");
        match (&self.secret, signed) {
            (Some(secret), true) => self.check_signature(secret, headers, body),
            _ => self.check_api_key(headers),
        }
    }

    fn check_api_key(&self, headers: &HeaderMap) -> Result<Principal, ApiError> {
        let Some(expected) = &self.api_key else {
            return Err(ApiError::unauthorized(
                "missing signature: sign the request with webhook-id, webhook-timestamp and \
                 webhook-signature (Standard Webhooks)",
            ));
        };
        let presented = headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .or_else(|| {
                headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
            })
            .map(str::trim);
        match presented {
            None => Err(ApiError::unauthorized(if self.secret.is_some() {
                "missing credentials: send the API key in X-API-Key or sign the request \
                 (Standard Webhooks)"
            } else {
                "missing credentials: send the API key in X-API-Key"
            })),
            Some(key) if bool::from(key.as_bytes().ct_eq(expected.as_bytes())) => {
                Ok(Principal::ApiKey)
            }
            Some(_) => Err(ApiError::unauthorized("invalid API key")),
        }
    }

    fn check_signature(
        &self,
        secret: &[u8],
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Principal, ApiError> {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    ApiError::unauthorized(format!(
                        "missing {name} header: signed requests carry webhook-id, \
                         webhook-timestamp and webhook-signature"
                    ))
                })
        };
        let id = text("webhook-id")?;
        if id.len() > MAX_ID_LEN {
            return Err(ApiError::unauthorized("webhook-id is too long"));
        }
        let timestamp: i64 = text("webhook-timestamp")?
            .parse()
            .map_err(|_| ApiError::unauthorized("webhook-timestamp must be Unix seconds"))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        if now.abs_diff(timestamp) > TIMESTAMP_TOLERANCE.as_secs() {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "stale_timestamp",
                "webhook-timestamp is more than 5 minutes from the server's clock; sign with \
                 the current time",
            ));
        }
        let expected = mac(secret, id, timestamp, body);
        let valid = text("webhook-signature")?
            .split_whitespace()
            .filter_map(|candidate| candidate.strip_prefix("v1,"))
            .filter_map(|encoded| STANDARD.decode(encoded).ok())
            .any(|signature| expected.clone().verify_slice(&signature).is_ok());
        if !valid {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "bad_signature",
                "webhook-signature does not match the body: sign \"{id}.{timestamp}.{body}\" \
                 with HMAC-SHA256 and the shared secret",
            ));
        }
        self.remember(id)?;
        Ok(Principal::Signed {
            message_id: id.to_string(),
        })
    }

    /// Records a verified message id; a second sighting within the window is a replay.
    fn remember(&self, id: &str) -> Result<(), ApiError> {
        let now = Instant::now();
        // Held only for map operations, which cannot panic half-way.
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.get(id).is_some_and(|expires| *expires > now) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "replayed",
                format!(
                    "message {id:?} was already accepted or is being handled; send each new \
                     message with a new webhook-id"
                ),
            ));
        }
        if seen.len() >= MAX_REMEMBERED_IDS {
            seen.retain(|_, expires| *expires > now);
            if seen.len() >= MAX_REMEMBERED_IDS {
                return Err(ApiError {
                    retry_after: Some(Duration::from_secs(60)),
                    ..ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "busy",
                        "too many signed messages in the last minutes; retry later",
                    )
                });
            }
        }
        // Twice the tolerance: a timestamp up to 5 minutes in the future stays valid for 10.
        seen.insert(id.to_string(), now + 2 * TIMESTAMP_TOLERANCE);
        Ok(())
    }

    /// Holds the message id of `principal` (if signed) until the request is answered: see
    /// [`HeldMessage`].
    pub fn hold(&self, principal: &Principal) -> HeldMessage<'_> {
        HeldMessage {
            auth: self,
            id: match principal {
                Principal::Signed { message_id } => Some(message_id.clone()),
                Principal::ApiKey => None,
            },
        }
    }

    fn forget(&self, id: &str) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }
}

/// A verified message id, refused as a replay while its request is handled. Dropped without
/// [`HeldMessage::accepted`] (a refusal, a failed trigger, an aborted request), the id is
/// forgotten: a Standard Webhooks sender retries a message with the same id until it gets a
/// 2xx, so remembering a failed one would refuse every retry and lose the submission.
pub struct HeldMessage<'a> {
    auth: &'a Authenticator,
    id: Option<String>,
}

impl HeldMessage<'_> {
    /// The message was answered 2xx: its id stays refused for the replay window.
    pub fn accepted(mut self) {
        self.id = None;
    }
}

impl Drop for HeldMessage<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.auth.forget(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed_headers(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("webhook-id", id.parse().unwrap());
        headers.insert("webhook-timestamp", timestamp.to_string().parse().unwrap());
        let sig = format!("v1,{}", sign(secret, id, timestamp, body));
        headers.insert("webhook-signature", sig.parse().unwrap());
        headers
    }

    fn now() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // From the Standard Webhooks specification's test suite.
        let secret = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_valid_signature_passes_once_and_a_replay_is_refused() {
        let secret = b"0123456789abcdef0123456789abcdef".to_vec();
        let auth = Authenticator::new(None, Some(secret.clone()));
        let headers = signed_headers(&secret, "msg_1", now(), b"{}");
        assert_eq!(
            auth.check(&headers, b"{}").unwrap(),
            Principal::Signed {
                message_id: "msg_1".into()
            }
        );
        assert_eq!(auth.check(&headers, b"{}").unwrap_err().code, "replayed");
        let tampered = signed_headers(&secret, "msg_2", now(), b"{}");
        assert_eq!(
            auth.check(&tampered, b"{ }").unwrap_err().code,
            "bad_signature"
        );
        let stale = signed_headers(&secret, "msg_3", now() - 301, b"{}");
        assert_eq!(
            auth.check(&stale, b"{}").unwrap_err().code,
            "stale_timestamp"
        );
    }

    #[test]
    fn a_message_not_accepted_may_be_retried_and_an_accepted_one_may_not() {
        let secret = b"0123456789abcdef0123456789abcdef".to_vec();
        let auth = Authenticator::new(None, Some(secret.clone()));
        let headers = signed_headers(&secret, "msg_retry", now(), b"{}");
        let first = auth.check(&headers, b"{}").unwrap();
        let held = auth.hold(&first);
        assert_eq!(
            auth.check(&headers, b"{}").unwrap_err().code,
            "replayed",
            "refused while the first attempt is in flight"
        );
        drop(held);
        let retry = auth.check(&headers, b"{}").unwrap();
        auth.hold(&retry).accepted();
        assert_eq!(auth.check(&headers, b"{}").unwrap_err().code, "replayed");
    }

    #[test]
    fn api_keys_compare_exactly() {
        let auth = Authenticator::new(Some("test-webhook-key".into()), None);
        let mut headers = HeaderMap::new();
        assert_eq!(auth.check(&headers, b"").unwrap_err().status, 401);
        headers.insert("x-api-key", "test-webhook-ke".parse().unwrap());
        assert!(auth.check(&headers, b"").is_err());
        headers.insert("x-api-key", "test-webhook-key".parse().unwrap());
        assert_eq!(auth.check(&headers, b"").unwrap(), Principal::ApiKey);
    }
}

//! `Idempotency-Key`: a client that retries a submission (a double click, a timeout) with the same
//! key gets the first answer again instead of a second run.
//!
//! Following the IETF `Idempotency-Key` draft: the first request with a key proceeds; while it is
//! in flight, another with the same key gets 409; afterwards, the same key with the same
//! submission gets the stored answer, and with a different submission 422. Only accepted
//! submissions are stored: a failed one (say, Paperspace down) may be retried with its key.
//! Entries live 24 hours, at most [`MAX_KEYS`] of them, in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::Value;

use crate::error::ApiError;

const TTL: Duration = Duration::from_secs(24 * 60 * 60);
const MAX_KEYS: usize = 10_000;
const MAX_KEY_LEN: usize = 255;

enum Slot {
    InFlight,
    Done {
        fingerprint: String,
        body: Value,
        stored: Instant,
    },
}

/// The keys seen recently.
#[derive(Clone, Default)]
pub struct IdempotencyStore {
    slots: Arc<Mutex<HashMap<String, Slot>>>,
}

/// What to do with a request carrying a key.
pub enum Begin {
    /// First of its kind: go on, then [`Claim::complete`].
    Proceed(Claim),
    /// Seen and accepted before: answer this body again.
    Replay(Value),
}

/// A key being processed; dropped without [`Claim::complete`], the key is released.
pub struct Claim {
    store: IdempotencyStore,
    key: String,
    fingerprint: String,
    completed: bool,
}

impl Claim {
    /// Stores the accepted answer for the key.
    pub fn complete(mut self, body: &Value) {
        self.completed = true;
        let mut slots = self.store.lock();
        slots.insert(
            self.key.clone(),
            Slot::Done {
                fingerprint: self.fingerprint.clone(),
                body: body.clone(),
                stored: Instant::now(),
            },
        );
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.completed {
            self.store.lock().remove(&self.key);
        }
    }
}

impl IdempotencyStore {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        // Map operations cannot panic half-way: a poisoned lock's data is consistent.
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks `key` for a submission with `fingerprint`.
    pub fn begin(&self, key: &str, fingerprint: &str) -> Result<Begin, ApiError> {
        if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::bad_request(
                "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is ideal)",
            ));
        }
        let mut slots = self.lock();
        let now = Instant::now();
        match slots.get(key) {
            Some(Slot::Done {
                fingerprint: stored,
                body,
                stored: at,
            }) if now.duration_since(*at) < TTL => {
                if stored == fingerprint {
                    return Ok(Begin::Replay(body.clone()));
                }
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for a different submission; use a new key",
                ));
            }
            Some(Slot::InFlight) => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "in_progress",
                    "a submission with this Idempotency-Key is being processed; retry shortly",
                ));
            }
            _ => {}
        }
        if slots.len() >= MAX_KEYS {
            slots.retain(|_, slot| match slot {
                Slot::Done { stored, .. } => now.duration_since(*stored) < TTL,
                Slot::InFlight => true,
            });
            if slots.len() >= MAX_KEYS {
                let oldest = slots
                    .iter()
                    .filter_map(|(k, slot)| match slot {
                        Slot::Done { stored, .. } => Some((*stored, k.clone())),
                        Slot::InFlight => None,
                    })
                    .min();
                match oldest {
                    Some((_, k)) => {
                        slots.remove(&k);
                    }
                    None => {
                        return Err(ApiError::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "busy",
                            "too many submissions in flight; retry later",
                        ));
                    }
                }
            }
        }
        slots.insert(key.to_string(), Slot::InFlight);
        Ok(Begin::Proceed(Claim {
            store: self.clone(),
            key: key.to_string(),
            fingerprint: fingerprint.to_string(),
            completed: false,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_completed_key_replays_and_a_released_one_proceeds_again() {
        let store = IdempotencyStore::default();
        let Begin::Proceed(claim) = store.begin("k1", "fp").unwrap() else {
            panic!("first use must proceed")
        };
        assert_eq!(store.begin("k1", "fp").err().unwrap().code, "in_progress");
        claim.complete(&json!({"run": 1}));
        match store.begin("k1", "fp").unwrap() {
            Begin::Replay(body) => assert_eq!(body, json!({"run": 1})),
            Begin::Proceed(_) => panic!("must replay"),
        }
        assert_eq!(
            store.begin("k1", "other").err().unwrap().code,
            "idempotency_key_reused"
        );

        let Begin::Proceed(failed) = store.begin("k2", "fp").unwrap() else {
            panic!("first use must proceed")
        };
        drop(failed);
        assert!(matches!(
            store.begin("k2", "fp").unwrap(),
            Begin::Proceed(_)
        ));
    }
}

//! The request log: every service request with its route template and timing, so tests can
//! count calls per route and assert that requests overlapped (bounded concurrency).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

/// One served (or dropped) request.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RequestEntry {
    pub method: String,
    pub path: String,
    /// The matched route, e.g. `/v1/files/{file_id}`; `<unmatched>` for unknown paths.
    pub route: String,
    /// `openai`, `google` or `paperspace`.
    pub service: String,
    /// `None` when the connection was dropped without a response.
    pub status: Option<u16>,
    /// The injected fault, if any (`latency`, `status 503`, `drop`, ...).
    pub fault: Option<String>,
    /// Microseconds since the emulator started.
    pub start_us: u64,
    pub end_us: u64,
}

/// Thread-safe, append-only log.
#[derive(Debug)]
pub struct RequestLog {
    started: Instant,
    entries: Mutex<Vec<RequestEntry>>,
}

impl Default for RequestLog {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestLog {
    pub fn new() -> Self {
        RequestLog {
            started: Instant::now(),
            entries: Mutex::new(Vec::new()),
        }
    }

    /// Microseconds since the emulator started: the clock of `start_us`/`end_us`.
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    pub fn record(&self, entry: RequestEntry) {
        self.lock().push(entry);
    }

    /// A copy of every entry, in completion order.
    pub fn entries(&self) -> Vec<RequestEntry> {
        self.lock().clone()
    }

    /// How many requests matched `method` and `route` (e.g. `("POST", "/v1/files")`).
    pub fn count(&self, method: &str, route: &str) -> usize {
        self.lock()
            .iter()
            .filter(|entry| entry.method.eq_ignore_ascii_case(method) && entry.route == route)
            .count()
    }

    /// Counts keyed by `"METHOD route-template"`.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for entry in self.lock().iter() {
            *counts
                .entry(format!("{} {}", entry.method, entry.route))
                .or_insert(0) += 1;
        }
        counts
    }

    /// The highest number of requests that were in flight at the same moment, optionally for
    /// one service only.
    pub fn max_concurrency(&self, service: Option<&str>) -> usize {
        let mut edges: Vec<(u64, i32)> = Vec::new();
        for entry in self.lock().iter() {
            if service.is_none_or(|wanted| entry.service == wanted) {
                edges.push((entry.start_us, 1));
                edges.push((entry.end_us, -1));
            }
        }
        // Ends sort before starts at the same instant: touching is not overlapping.
        edges.sort();
        let (mut current, mut peak) = (0i32, 0i32);
        for (_, delta) in edges {
            current += delta;
            peak = peak.max(current);
        }
        usize::try_from(peak).unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RequestEntry>> {
        // A panic while holding the lock cannot leave a Vec half-pushed: keep serving.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

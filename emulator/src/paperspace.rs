//! Paperspace Workflows emulation: workflow runs as the current REST API serves them
//! (`/workflows/{id}/runs`, get by sequence number, cancel, logs, list), behind Bearer auth.
//!
//! A run's `status.phase` moves Pending → Running → its outcome, one step per `phase_delay`.
//! The outcome is Succeeded unless a test chose otherwise (for new runs or for one run): Failed,
//! Cancelled, or RunsForever (stays Running, for timeout tests). Runs keep their spec and
//! inputs so tests can check what a trigger sent.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

const DEFAULT_PAGE_LIMIT: usize = 20;
const MAX_PAGE_LIMIT: usize = 120;

/// How a run ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum Outcome {
    Succeeded,
    Failed,
    Cancelled,
    /// Never leaves Running (until cancelled).
    RunsForever,
}

/// In-memory Paperspace state: the workflow runs and the outcome chosen for new ones.
pub struct PaperspaceState {
    api_key: String,
    phase_delay: Duration,
    inner: Mutex<Inner>,
}

struct Inner {
    runs: Vec<Run>,
    outcome_for_new_runs: Outcome,
}

struct Run {
    workflow_id: String,
    sequence: u64,
    uuid: String,
    cluster_id: String,
    spec: Value,
    inputs: Value,
    meta: Value,
    created: Instant,
    created_at: DateTime<Utc>,
    outcome: Outcome,
    cancelled: Option<Instant>,
}

/// Where a run stands at one moment.
struct Phase {
    name: &'static str,
    started: Option<DateTime<Utc>>,
    finished: Option<DateTime<Utc>>,
}

fn time_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Run {
    fn phase(&self, phase_delay: Duration, now: Instant) -> Phase {
        let at = |instant: Instant| {
            let offset = instant.saturating_duration_since(self.created);
            self.created_at + chrono::Duration::from_std(offset).unwrap_or_default()
        };
        let running_from = self.created + phase_delay;
        let finishing_at = running_from + phase_delay;
        let started = (now >= running_from).then(|| at(running_from));
        if let Some(cancelled) = self.cancelled {
            return Phase {
                name: "Cancelled",
                started: (cancelled >= running_from).then(|| at(running_from)),
                finished: Some(at(cancelled)),
            };
        }
        if now < running_from {
            return Phase {
                name: "Pending",
                started: None,
                finished: None,
            };
        }
        if now < finishing_at || self.outcome == Outcome::RunsForever {
            return Phase {
                name: "Running",
                started,
                finished: None,
            };
        }
        let name = match self.outcome {
            Outcome::Failed => "Failed",
            Outcome::Cancelled => "Cancelled",
            Outcome::Succeeded | Outcome::RunsForever => "Succeeded",
        };
        Phase {
            name,
            started,
            finished: Some(at(finishing_at)),
        }
    }

    fn is_terminal(&self, phase_delay: Duration, now: Instant) -> bool {
        !matches!(self.phase(phase_delay, now).name, "Pending" | "Running")
    }

    fn job_names(&self) -> Vec<String> {
        match self.spec.get("jobs").and_then(Value::as_object) {
            Some(jobs) if !jobs.is_empty() => jobs.keys().cloned().collect(),
            _ => vec!["main".to_string()],
        }
    }

    fn log_id(&self, job: &str) -> String {
        uuid_from(&format!("{}:log:{job}", self.uuid))
    }

    fn message(&self, phase: &str) -> Value {
        match phase {
            "Failed" => json!("Job failed with exit code 1"),
            "Cancelled" => json!("Workflow run was cancelled"),
            _ => Value::Null,
        }
    }

    /// The run object of the API (`workflowRuns-get`).
    fn resource(&self, phase_delay: Duration, now: Instant) -> Value {
        let phase = self.phase(phase_delay, now);
        let mut jobs = Map::new();
        for job in self.job_names() {
            let mut status = json!({ "phase": phase.name, "logId": self.log_id(&job) });
            if let Some(started) = phase.started {
                status["started"] = json!(time_text(started));
            }
            if let Some(finished) = phase.finished {
                status["finished"] = json!(time_text(finished));
            }
            if let Value::String(message) = self.message(phase.name) {
                status["message"] = json!(message);
            }
            jobs.insert(job, status);
        }
        let mut status = json!({
            "phase": phase.name,
            "logId": uuid_from(&format!("{}:log", self.uuid)),
            "inputs": self.inputs,
            "jobs": jobs,
            "outputs": {},
        });
        if let Some(started) = phase.started {
            status["started"] = json!(time_text(started));
        }
        if let Some(finished) = phase.finished {
            status["finished"] = json!(time_text(finished));
        }
        if let Value::String(message) = self.message(phase.name) {
            status["message"] = json!(message);
        }
        json!({
            "id": self.sequence,
            "uuid": self.uuid,
            "cluster": { "id": self.cluster_id },
            // The API types a run's `meta` in replies as `Record<string, never>`: what a client
            // sent is not echoed (the admin state keeps it for tests).
            "meta": {},
            "spec": self.spec,
            "status": status,
        })
    }

    /// Log lines per job (`workflowRunLogs-list`), as far as the run has got.
    fn logs(&self, phase_delay: Duration, now: Instant) -> Value {
        let phase = self.phase(phase_delay, now);
        let created = time_text(self.created_at);
        let entries: Vec<Value> = self
            .job_names()
            .into_iter()
            .map(|job| {
                let job_id = uuid_from(&format!("{}:job:{job}", self.uuid));
                let spec = self.spec.get("jobs").and_then(|jobs| jobs.get(&job));
                let image = spec
                    .and_then(|s| s.pointer("/with/image"))
                    .and_then(Value::as_str)
                    .unwrap_or("unknown");
                let mut lines = vec![format!("Pulling image {image}")];
                if phase.started.is_some() {
                    lines.push(format!("Starting job {job}"));
                }
                match phase.name {
                    "Succeeded" => lines.push(format!("Job {job} succeeded")),
                    "Failed" => lines.push(format!("Job {job} failed with exit code 1")),
                    "Cancelled" => lines.push(format!("Job {job} was cancelled")),
                    _ => {}
                }
                let logs: Vec<Value> = lines
                    .iter()
                    .enumerate()
                    .map(|(n, message)| {
                        json!({
                            "dtCreated": created,
                            "id": format!("{job_id}-{n}"),
                            "jobId": job_id,
                            "message": message,
                        })
                    })
                    .collect();
                json!({
                    "dtCreated": created,
                    "dtStarted": phase.started.map(time_text),
                    "dtFinished": phase.finished.map(time_text),
                    "id": job_id,
                    "logs": logs,
                    "message": self.message(phase.name),
                    "name": job,
                    "phase": phase.name,
                    "workflowRunId": self.uuid,
                })
            })
            .collect();
        Value::Array(entries)
    }
}

/// A UUID-shaped id derived from `seed`.
fn uuid_from(seed: &str) -> String {
    let hex = hex::encode(Sha256::digest(seed.as_bytes()));
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

impl PaperspaceState {
    /// `api_key`: the Bearer key accepted; runs move through phases every `phase_delay`.
    pub fn new(api_key: &str, phase_delay: Duration) -> Arc<PaperspaceState> {
        Arc::new(PaperspaceState {
            api_key: api_key.to_string(),
            phase_delay,
            inner: Mutex::new(Inner {
                runs: Vec::new(),
                outcome_for_new_runs: Outcome::Succeeded,
            }),
        })
    }

    /// How runs created from now on end.
    pub fn set_outcome_for_new_runs(&self, outcome: Outcome) {
        self.lock().outcome_for_new_runs = outcome;
    }

    /// How run `sequence` of `workflow_id` ends; false when there is no such run.
    pub fn set_run_outcome(&self, workflow_id: &str, sequence: u64, outcome: Outcome) -> bool {
        let mut inner = self.lock();
        match inner
            .runs
            .iter_mut()
            .find(|r| r.workflow_id == workflow_id && r.sequence == sequence)
        {
            Some(run) => {
                run.outcome = outcome;
                true
            }
            None => false,
        }
    }

    /// Everything a test asserts on: every run with its phase, spec and inputs.
    pub fn dump(&self) -> Value {
        let inner = self.lock();
        let now = Instant::now();
        let runs: Vec<Value> = inner
            .runs
            .iter()
            .map(|run| {
                json!({
                    "workflowId": run.workflow_id,
                    "id": run.sequence,
                    "uuid": run.uuid,
                    "phase": run.phase(self.phase_delay, now).name,
                    "outcome": run.outcome,
                    "cancelled": run.cancelled.is_some(),
                    "inputs": run.inputs,
                    "spec": run.spec,
                    "meta": run.meta,
                })
            })
            .collect();
        json!({
            "phase_delay_ms": u64::try_from(self.phase_delay.as_millis()).unwrap_or(u64::MAX),
            "outcome_for_new_runs": inner.outcome_for_new_runs,
            "runs": runs,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing a panic could interrupt leaves the run list inconsistent: take a poisoned lock over.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn accepts(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|key| key.trim() == self.api_key)
    }
}

fn unauthorized() -> Response {
    api_error(StatusCode::UNAUTHORIZED, "Invalid API key")
}

fn api_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "message": message, "status": status.as_u16() })),
    )
        .into_response()
}

/// Routes under /paperspace/v1/... and test hooks under /_admin/paperspace/... .
pub fn router(state: Arc<PaperspaceState>) -> Router {
    Router::new()
        .route(
            "/paperspace/v1/workflows/{workflow_id}/runs",
            get(list_runs).post(create_run),
        )
        .route(
            "/paperspace/v1/workflows/{workflow_id}/runs/{run}",
            get(get_run),
        )
        .route(
            "/paperspace/v1/workflows/{workflow_id}/runs/{run}/cancel",
            post(cancel_run),
        )
        .route(
            "/paperspace/v1/workflows/{workflow_id}/runs/{run}/logs",
            get(run_logs),
        )
        .route("/_admin/paperspace/state", get(admin_state))
        .route(
            "/_admin/paperspace/outcome",
            post(admin_outcome_for_new_runs),
        )
        .route(
            "/_admin/paperspace/workflows/{workflow_id}/runs/{run}/outcome",
            post(admin_run_outcome),
        )
        .with_state(state)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateRun {
    spec: Option<Value>,
    inputs: Option<Value>,
    meta: Option<Value>,
    cluster_id: Option<String>,
}

async fn create_run(
    State(state): State<Arc<PaperspaceState>>,
    headers: HeaderMap,
    Path(workflow_id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if !state.accepts(&headers) {
        return unauthorized();
    }
    let request: CreateRun = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return api_error(
                StatusCode::BAD_REQUEST,
                &format!("Invalid request body: {e}"),
            );
        }
    };
    let Some(spec) = request.spec.filter(Value::is_object) else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "spec is required and must be an object",
        );
    };
    let inputs = request.inputs.unwrap_or_else(|| json!({}));
    if !inputs.is_object() {
        return api_error(StatusCode::BAD_REQUEST, "inputs must be an object");
    }
    let mut inner = state.lock();
    let sequence = inner
        .runs
        .iter()
        .filter(|r| r.workflow_id == workflow_id)
        .count() as u64
        + 1;
    let now = Utc::now();
    let run = Run {
        uuid: uuid_from(&format!(
            "{workflow_id}:{sequence}:{}",
            now.timestamp_nanos_opt().unwrap_or_default()
        )),
        workflow_id,
        sequence,
        cluster_id: request
            .cluster_id
            .unwrap_or_else(|| "clg07azjl".to_string()),
        spec,
        inputs,
        meta: request.meta.unwrap_or_else(|| json!({})),
        created: Instant::now(),
        created_at: now,
        outcome: inner.outcome_for_new_runs,
        cancelled: None,
    };
    let body = run.resource(state.phase_delay, Instant::now());
    inner.runs.push(run);
    Json(body).into_response()
}

/// A run named by sequence number (or, for logs, by uuid).
fn find_run<'a>(inner: &'a mut Inner, workflow_id: &str, run: &str) -> Option<&'a mut Run> {
    inner
        .runs
        .iter_mut()
        .find(|r| r.workflow_id == workflow_id && (r.sequence.to_string() == run || r.uuid == run))
}

fn run_not_found() -> Response {
    api_error(StatusCode::NOT_FOUND, "Workflow run not found")
}

async fn get_run(
    State(state): State<Arc<PaperspaceState>>,
    headers: HeaderMap,
    Path((workflow_id, run)): Path<(String, String)>,
) -> Response {
    if !state.accepts(&headers) {
        return unauthorized();
    }
    let mut inner = state.lock();
    match find_run(&mut inner, &workflow_id, &run) {
        Some(run) => Json(run.resource(state.phase_delay, Instant::now())).into_response(),
        None => run_not_found(),
    }
}

async fn cancel_run(
    State(state): State<Arc<PaperspaceState>>,
    headers: HeaderMap,
    Path((workflow_id, run)): Path<(String, String)>,
) -> Response {
    if !state.accepts(&headers) {
        return unauthorized();
    }
    let mut inner = state.lock();
    let Some(run) = find_run(&mut inner, &workflow_id, &run) else {
        return run_not_found();
    };
    let now = Instant::now();
    if run.cancelled.is_none() {
        if run.is_terminal(state.phase_delay, now) {
            return api_error(StatusCode::BAD_REQUEST, "Workflow run has already finished");
        }
        run.cancelled = Some(now);
    }
    Json(run.resource(state.phase_delay, now)).into_response()
}

async fn run_logs(
    State(state): State<Arc<PaperspaceState>>,
    headers: HeaderMap,
    Path((workflow_id, run)): Path<(String, String)>,
) -> Response {
    if !state.accepts(&headers) {
        return unauthorized();
    }
    let mut inner = state.lock();
    match find_run(&mut inner, &workflow_id, &run) {
        Some(run) => Json(run.logs(state.phase_delay, Instant::now())).into_response(),
        None => run_not_found(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListParams {
    after: Option<String>,
    limit: Option<usize>,
    order: Option<String>,
}

async fn list_runs(
    State(state): State<Arc<PaperspaceState>>,
    headers: HeaderMap,
    Path(workflow_id): Path<String>,
    Query(params): Query<ListParams>,
) -> Response {
    if !state.accepts(&headers) {
        return unauthorized();
    }
    let limit = params
        .limit
        .unwrap_or(DEFAULT_PAGE_LIMIT)
        .clamp(1, MAX_PAGE_LIMIT);
    let inner = state.lock();
    let mut runs: Vec<&Run> = inner
        .runs
        .iter()
        .filter(|r| r.workflow_id == workflow_id)
        .collect();
    // Newest first unless asked otherwise.
    if params.order.as_deref() != Some("asc") {
        runs.reverse();
    }
    let start = match &params.after {
        Some(cursor) => match runs.iter().position(|r| r.uuid == *cursor) {
            Some(position) => position + 1,
            None => return api_error(StatusCode::BAD_REQUEST, "Invalid cursor"),
        },
        None => 0,
    };
    let now = Instant::now();
    let page: Vec<&Run> = runs.iter().skip(start).take(limit).copied().collect();
    let has_more = start + page.len() < runs.len();
    let items: Vec<Value> = page
        .iter()
        .map(|r| r.resource(state.phase_delay, now))
        .collect();
    let mut body = json!({ "hasMore": has_more, "items": items });
    if has_more && let Some(last) = page.last() {
        body["nextPage"] = json!(last.uuid);
    }
    Json(body).into_response()
}

#[derive(Deserialize)]
struct OutcomeRequest {
    outcome: Outcome,
}

async fn admin_state(State(state): State<Arc<PaperspaceState>>) -> Response {
    Json(state.dump()).into_response()
}

async fn admin_outcome_for_new_runs(
    State(state): State<Arc<PaperspaceState>>,
    Json(request): Json<OutcomeRequest>,
) -> Response {
    state.set_outcome_for_new_runs(request.outcome);
    Json(json!({ "outcome_for_new_runs": request.outcome })).into_response()
}

async fn admin_run_outcome(
    State(state): State<Arc<PaperspaceState>>,
    Path((workflow_id, run)): Path<(String, u64)>,
    Json(request): Json<OutcomeRequest>,
) -> Response {
    if state.set_run_outcome(&workflow_id, run, request.outcome) {
        Json(json!({ "outcome": request.outcome })).into_response()
    } else {
        run_not_found()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(outcome: Outcome) -> Run {
        Run {
            workflow_id: "wf".into(),
            sequence: 1,
            uuid: uuid_from("x"),
            cluster_id: "c".into(),
            spec: json!({"jobs": {"setup": {}, "upload": {}}}),
            inputs: json!({}),
            meta: json!({}),
            created: Instant::now(),
            created_at: Utc::now(),
            outcome,
            cancelled: None,
        }
    }

    #[test]
    fn phases_follow_the_delay_and_the_outcome() {
        let delay = Duration::from_secs(10);
        let r = run(Outcome::Failed);
        assert_eq!(r.phase(delay, r.created).name, "Pending");
        assert_eq!(r.phase(delay, r.created + delay).name, "Running");
        assert_eq!(r.phase(delay, r.created + delay * 2).name, "Failed");
        let forever = run(Outcome::RunsForever);
        assert_eq!(
            forever.phase(delay, forever.created + delay * 100).name,
            "Running"
        );
        let mut cancelled = run(Outcome::Succeeded);
        cancelled.cancelled = Some(cancelled.created + delay);
        assert_eq!(
            cancelled.phase(delay, cancelled.created + delay * 3).name,
            "Cancelled"
        );
    }

    #[test]
    fn uuids_are_uuid_shaped() {
        let id = uuid_from("seed");
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, vec![8, 4, 4, 4, 12]);
    }
}

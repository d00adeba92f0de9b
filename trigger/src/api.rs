//! The Paperspace Workflows REST API as the trigger uses it (`specs/paperspace-api-workflows.ts`):
//! create a run, get one by sequence number, list runs, read a run's logs.
//!
//! The legacy Gradient API was shut down in 2024; this speaks the current one
//! (`https://api.paperspace.com/v1`, `Authorization: Bearer <key>`). Workflows are marked
//! "private" in Paperspace's docs, so the base URL stays configurable and nothing else in the
//! product depends on this module. Every call goes through [`shared::http::Http`]: timeouts,
//! retries of transient failures honouring `Retry-After`, permanent refusals at once.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::http::{Http, HttpSettings};
use shared::{Error, Result};

/// Where the current Paperspace API lives.
pub const DEFAULT_API_URL: &str = "https://api.paperspace.com/v1";
/// Where run links point.
pub const DEFAULT_CONSOLE_URL: &str = "https://console.paperspace.com";
/// The environment variable holding the API key. Read from the environment only, never from a
/// flag, so the key does not show up in process listings or shell history.
pub const API_KEY_VAR: &str = "PAPERSPACE_API_KEY";

/// Which Paperspace API and workflow to talk to. Shared by `trigger` and `webhook`.
#[derive(clap::Args, Debug, Clone)]
pub struct ApiArgs {
    /// Base URL of the Paperspace API.
    #[arg(long, env = "PAPERSPACE_API_URL", default_value = DEFAULT_API_URL)]
    pub api_url: String,
    /// The workflow whose runs are started and watched (required except with `run --dry-run`).
    #[arg(long, env = "PAPERSPACE_WORKFLOW_ID")]
    pub workflow_id: Option<String>,
    /// The project the workflow belongs to; used for console links.
    #[arg(long, env = "PAPERSPACE_PROJECT_ID")]
    pub project_id: Option<String>,
    /// Base URL of the Paperspace console, for run links.
    #[arg(long, env = "PAPERSPACE_CONSOLE_URL", default_value = DEFAULT_CONSOLE_URL)]
    pub console_url: String,
}

impl ApiArgs {
    /// The workflow id, or the one-line error saying how to give it.
    pub fn workflow_id(&self) -> Result<&str> {
        self.workflow_id
            .as_deref()
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                Error::bad_input(
                    "no workflow id: set PAPERSPACE_WORKFLOW_ID or pass --workflow-id \
                     (the id shown in the Paperspace console under Workflows)",
                )
            })
    }

    /// A client for these settings, with the API key from [`API_KEY_VAR`].
    pub fn connect(&self, http: &HttpSettings) -> Result<PaperspaceClient> {
        let api_key = std::env::var(API_KEY_VAR)
            .ok()
            .filter(|key| !key.trim().is_empty())
            .ok_or_else(|| {
                Error::bad_input(format!(
                    "{API_KEY_VAR} is not set: create an API key in the Paperspace console \
                     (Team settings → API keys) and export it"
                ))
            })?;
        shared::logging::context().add_secret(&api_key);
        PaperspaceClient::new(
            ClientConfig {
                api_url: self.api_url.clone(),
                api_key,
                workflow_id: self.workflow_id()?.to_string(),
                project_id: self.project_id.clone().filter(|p| !p.trim().is_empty()),
                console_url: self.console_url.clone(),
            },
            http,
        )
    }
}

/// Everything a [`PaperspaceClient`] needs, spelled out (the webhook and tests build it directly).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub api_url: String,
    pub api_key: String,
    pub workflow_id: String,
    pub project_id: Option<String>,
    pub console_url: String,
}

/// A workflow run as the API returns it. Its `meta` is not read: the API reference types a
/// returned run's `meta` as `Record<string, never>` (empty), so what identifies a run is its
/// `status.inputs`, which carry the run id the trigger sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkflowRun {
    /// The run's sequence number within its workflow (what `status`, `wait` and `logs` take).
    pub id: u64,
    pub uuid: String,
    #[serde(default)]
    pub status: Option<RunStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunStatus {
    pub phase: String,
    /// The run's inputs (`{key: unknown}` in the reference).
    #[serde(default)]
    pub inputs: Value,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub started: Option<String>,
    #[serde(default)]
    pub finished: Option<String>,
    #[serde(default)]
    pub jobs: BTreeMap<String, JobStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobStatus {
    pub phase: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub started: Option<String>,
    #[serde(default)]
    pub finished: Option<String>,
}

impl WorkflowRun {
    /// The run's phase; a run the API returned without a status has not been scheduled yet.
    pub fn phase(&self) -> &str {
        self.status
            .as_ref()
            .map(|s| s.phase.as_str())
            .unwrap_or("Pending")
    }

    /// The value of string input `key` as the run reports it. The reference leaves the shape of
    /// `status.inputs` open, so the forms a run is created with (`{type, with: {value}}`), a bare
    /// `{value}` and a plain string are all read.
    pub fn input(&self, key: &str) -> Option<&str> {
        let input = self.status.as_ref()?.inputs.get(key)?;
        input
            .as_str()
            .or_else(|| input.get("value").and_then(Value::as_str))
            .or_else(|| input.pointer("/with/value").and_then(Value::as_str))
    }
}

/// One job's log lines (`workflowRunLogs-list`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobLogs {
    pub name: String,
    pub phase: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub logs: Vec<LogLine>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    pub dt_created: String,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RunPage {
    items: Vec<WorkflowRun>,
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    next_page: Option<String>,
}

/// A client for one workflow.
#[derive(Debug, Clone)]
pub struct PaperspaceClient {
    http: Http,
    config: ClientConfig,
}

impl PaperspaceClient {
    pub fn new(config: ClientConfig, http: &HttpSettings) -> Result<PaperspaceClient> {
        Ok(PaperspaceClient {
            http: Http::new("Paperspace", http)?,
            config,
        })
    }

    pub fn workflow_id(&self) -> &str {
        &self.config.workflow_id
    }

    /// The console page of run `sequence`.
    pub fn console_link(&self, sequence: u64) -> String {
        let console = self.config.console_url.trim_end_matches('/');
        let workflow = &self.config.workflow_id;
        match &self.config.project_id {
            Some(project) => {
                format!("{console}/projects/{project}/workflows/{workflow}/runs/{sequence}")
            }
            None => format!("{console}/workflows/{workflow}/runs/{sequence}"),
        }
    }

    fn url(&self, tail: &str) -> String {
        format!(
            "{}/workflows/{}/runs{tail}",
            self.config.api_url.trim_end_matches('/'),
            self.config.workflow_id
        )
    }

    /// `POST /workflows/{id}/runs` with a body from [`crate::spec::run_request`].
    pub async fn create_run(&self, body: &Value) -> Result<WorkflowRun> {
        let url = self.url("");
        self.call("start a workflow run", |c| c.post(&url).json(body))
            .await
    }

    /// `GET /workflows/{id}/runs/{sequence}`.
    pub async fn get_run(&self, sequence: u64) -> Result<WorkflowRun> {
        let url = self.url(&format!("/{sequence}"));
        self.call(&format!("get workflow run {sequence}"), |c| c.get(&url))
            .await
    }

    /// The logs of run `sequence`, job by job. The logs route names the run by its uuid, so the
    /// run is fetched first.
    pub async fn logs(&self, sequence: u64) -> Result<Vec<JobLogs>> {
        let run = self.get_run(sequence).await?;
        let url = self.url(&format!("/{}/logs", run.uuid));
        self.call(&format!("read the logs of workflow run {sequence}"), |c| {
            c.get(&url)
        })
        .await
    }

    /// The newest runs, newest first, up to `max_runs` of them.
    pub async fn recent_runs(&self, max_runs: usize) -> Result<Vec<WorkflowRun>> {
        const PAGE: usize = 100;
        let mut runs: Vec<WorkflowRun> = Vec::new();
        let mut after: Option<String> = None;
        while runs.len() < max_runs {
            let url = self.url("");
            let limit = PAGE.min(max_runs - runs.len()).to_string();
            let page: RunPage = self
                .call("list workflow runs", |c| {
                    let mut query = vec![("limit", limit.as_str()), ("order", "desc")];
                    if let Some(cursor) = &after {
                        query.push(("after", cursor.as_str()));
                    }
                    c.get(&url).query(&query)
                })
                .await?;
            let count = page.items.len();
            runs.extend(page.items);
            match page.next_page {
                Some(cursor) if page.has_more && count > 0 => after = Some(cursor),
                _ => break,
            }
        }
        Ok(runs)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        what: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<T> {
        let response = self
            .http
            .send(what, |c| build(c).bearer_auth(&self.config.api_key))
            .await?;
        let bytes = response.bytes().await.map_err(|e| {
            Error::external(format!(
                "{what}: the Paperspace API's answer was cut off ({e}); try again"
            ))
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::external(format!(
                "{what}: the Paperspace API answered something unexpected ({e}); check \
                 PAPERSPACE_API_URL points at the Paperspace API"
            ))
        })
    }
}

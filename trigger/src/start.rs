//! Starting one run: the one path `trigger run`, `trigger batch` and the webhook all take.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use shared::Result;
use shared::inputs::RunInputs;

use crate::api::PaperspaceClient;
use crate::spec::run_request;

/// What to tell the user about a run that was started (also the `--json` output of `run`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StartedRun {
    pub workflow_id: String,
    /// The run's sequence number: what `status`, `wait` and `logs` take.
    pub run: u64,
    pub uuid: String,
    /// The pipeline's run id, carried by every artifact of the run.
    pub run_id: String,
    pub company_slug: String,
    pub phase: String,
    pub console_url: String,
}

/// Extra facts recorded in the run's `meta` (who started it, the idempotency key).
#[derive(Debug, Clone, Default)]
pub struct RunMeta {
    /// `trigger` or `webhook`.
    pub started_by: &'static str,
    pub idempotency_key: Option<String>,
    /// The webhook's confirmation code for the submission.
    pub confirmation_code: Option<String>,
}

/// The run id this run will carry: the one given, or a fresh one, so every job and the user
/// know it from the start.
pub fn run_id_for(inputs: &RunInputs) -> String {
    inputs
        .run_id
        .clone()
        .unwrap_or_else(shared::inputs::generate_run_id)
}

/// The request body for `inputs` with `run_id` (what `run --dry-run` prints).
pub fn request_body(
    spec: &Value,
    inputs: &RunInputs,
    run_id: &str,
    meta: &RunMeta,
) -> Result<Value> {
    let mut fields = Map::new();
    fields.insert("startedBy".into(), json!(meta.started_by));
    fields.insert("companySlug".into(), json!(inputs.company_slug));
    fields.insert("runId".into(), json!(run_id));
    if let Some(key) = &meta.idempotency_key {
        fields.insert("idempotencyKey".into(), json!(key));
    }
    if let Some(code) = &meta.confirmation_code {
        fields.insert("confirmationCode".into(), json!(code));
    }
    run_request(spec, inputs, run_id, Value::Object(fields))
}

/// Starts a run of the client's workflow with `spec` and `inputs`.
pub async fn start_run(
    client: &PaperspaceClient,
    spec: &Value,
    inputs: &RunInputs,
    run_id: &str,
    meta: &RunMeta,
) -> Result<StartedRun> {
    let body = request_body(spec, inputs, run_id, meta)?;
    let run = client.create_run(&body).await?;
    tracing::info!(
        run = run.id,
        company = %inputs.company_slug,
        run_id = %run_id,
        "started workflow run {} for {}",
        run.id,
        inputs.company_slug
    );
    Ok(StartedRun {
        workflow_id: client.workflow_id().to_string(),
        run: run.id,
        uuid: run.uuid.clone(),
        run_id: run_id.to_string(),
        company_slug: inputs.company_slug.clone(),
        phase: run.phase().to_string(),
        console_url: client.console_link(run.id),
    })
}

//! Step 9: the style pass — the style model harmonises the consolidated report (JSON in, the
//! same schema out) — then validation: N use cases, every section present and non-empty,
//! every citation resolving to a document listed in `data/.ready`, nothing truncated.
//!
//! An answer that fails validation gets one second chance and is never checkpointed, so a
//! re-run asks the model again instead of replaying a rejected answer.

use serde_json::json;
use shared::{Error, Result};

use super::{ModelStep, Pipeline};
use crate::checkpoint::Outcome;
use crate::prompts::STYLE;
use crate::report::{self, Source};
use crate::schema::Report;
use crate::validate;

/// The validated report, its final Markdown and the documents it cites.
pub struct Styled {
    pub outcome: Outcome<Report>,
    pub markdown: String,
    pub sources: Vec<Source>,
}

pub async fn run(pipeline: &Pipeline, draft: &Report) -> Result<Styled> {
    let count = pipeline.use_cases_count();
    let documents = &pipeline.loaded.documents;
    let draft_json = serde_json::to_string_pretty(draft)
        .map_err(|e| Error::internal(format!("cannot encode the consolidated report: {e}")))?;
    let step = ModelStep {
        checkpoint: "s09_style".to_string(),
        purpose: "step 9 (style pass)".to_string(),
        template: STYLE,
        model: &pipeline.models.style,
        schema_name: "report",
        schema: Report::schema(count),
        vars: json!({ "draft_json": draft_json }),
    };
    let check = |report: &Report| validate::content(report, count, documents).map(|_| ());
    let outcome = pipeline.run_model(step, &check).await?;

    // A reused checkpoint passed these checks when it was saved; they are cheap, so they run
    // again against this run's documents.
    let sources = validate::content(&outcome.result, count, documents).map_err(|problem| {
        Error::external(format!(
            "step 9 (validation): {problem}; re-run with --force or use another model set"
        ))
    })?;
    let markdown = report::final_report(
        &report::Header::of(pipeline),
        &pipeline.inputs,
        &outcome.result,
        &sources,
    );
    validate::structure(&markdown, count).map_err(|problem| {
        Error::internal(format!(
            "step 9 (validation): the assembled report is malformed: {problem}"
        ))
    })?;
    Ok(Styled {
        outcome,
        markdown,
        sources,
    })
}

//! Step 4: Part A — the current state and the readiness assessment (using the given score,
//! category and expectations) — written to `part_a/report_draft_<slug>_<ts>.md`.

use serde_json::json;
use shared::Result;
use shared::atomic::write_atomic;

use super::{ModelStep, Pipeline, no_check};
use crate::checkpoint::Outcome;
use crate::prompts::PART_A;
use crate::report;
use crate::schema::{Evidence, PartA, Profile};

/// The step's result and the Part A Markdown (step 8's input).
pub async fn run(
    pipeline: &Pipeline,
    profile: &Profile,
    evidence: &Evidence,
) -> Result<(Outcome<PartA>, String)> {
    let step = ModelStep {
        checkpoint: "s04_part_a".to_string(),
        purpose: "step 4 (Part A)".to_string(),
        template: PART_A,
        model: &pipeline.models.content,
        schema_name: "part_a",
        schema: PartA::schema(),
        vars: json!({ "profile": profile, "themes": evidence.themes }),
    };
    let outcome = pipeline.run_model(step, &no_check).await?;
    let markdown = report::part_a(
        &report::Header::of(pipeline),
        &pipeline.inputs,
        profile,
        evidence,
        &outcome.result,
    );
    write_atomic(&pipeline.out.part_a(&pipeline.ts), markdown.as_bytes())?;
    Ok((outcome, markdown))
}

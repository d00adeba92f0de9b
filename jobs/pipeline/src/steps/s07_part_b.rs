//! Step 7: Part B — the use cases with their deep dives, plus the roadmap, cross-cutting risks
//! and KPI framework — written to `part_b/report_enhanced_<slug>_<ts>.md`.

use serde::Serialize;
use serde_json::json;
use shared::Result;
use shared::atomic::write_atomic;

use super::{ModelStep, Pipeline, no_check};
use crate::checkpoint::Outcome;
use crate::prompts::PART_B;
use crate::report;
use crate::schema::{DeepDive, PartA, PartB, UseCaseIdea};

/// A use case as the Part B template sees it.
#[derive(Serialize)]
struct Detailed<'a> {
    idea: &'a UseCaseIdea,
    deep_dive: &'a DeepDive,
}

/// The step's result and the Part B Markdown (step 8's input).
pub async fn run(
    pipeline: &Pipeline,
    part_a: &PartA,
    ideas: &[UseCaseIdea],
    deep_dives: &[DeepDive],
) -> Result<(Outcome<PartB>, String)> {
    let detailed: Vec<Detailed<'_>> = ideas
        .iter()
        .zip(deep_dives)
        .map(|(idea, deep_dive)| Detailed { idea, deep_dive })
        .collect();
    let step = ModelStep {
        checkpoint: "s07_part_b".to_string(),
        purpose: "step 7 (Part B)".to_string(),
        template: PART_B,
        model: &pipeline.models.content,
        schema_name: "part_b",
        schema: PartB::schema(),
        vars: json!({ "part_a": part_a, "use_cases": detailed }),
    };
    let outcome = pipeline.run_model(step, &no_check).await?;
    let markdown = report::part_b(
        &report::Header::of(pipeline),
        ideas,
        deep_dives,
        &outcome.result,
    );
    write_atomic(&pipeline.out.part_b(&pipeline.ts), markdown.as_bytes())?;
    Ok((outcome, markdown))
}

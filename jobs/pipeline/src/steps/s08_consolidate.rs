//! Step 8: consolidation — the content model merges Part A and Part B into the content of the
//! whole report, one field per section, with exactly N use cases.

use serde_json::json;
use shared::Result;

use super::{ModelStep, Pipeline, check_titles};
use crate::checkpoint::Outcome;
use crate::prompts::CONSOLIDATE;
use crate::schema::Report;

pub async fn run(
    pipeline: &Pipeline,
    part_a_markdown: &str,
    part_b_markdown: &str,
) -> Result<Outcome<Report>> {
    let count = pipeline.use_cases_count();
    let step = ModelStep {
        checkpoint: "s08_consolidate".to_string(),
        purpose: "step 8 (consolidation)".to_string(),
        template: CONSOLIDATE,
        model: &pipeline.models.content,
        schema_name: "report",
        schema: Report::schema(count),
        vars: json!({ "part_a_markdown": part_a_markdown, "part_b_markdown": part_b_markdown }),
    };
    let check = move |report: &Report| {
        check_titles(report.use_cases.iter().map(|u| u.title.as_str()), count)
    };
    pipeline.run_model(step, &check).await
}

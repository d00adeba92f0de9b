//! Step 5: use-case ideation — exactly N use cases as strict JSON-schema output. The schema pins
//! the count (minItems = maxItems = N) and the answer is checked again after parsing: exactly N,
//! distinct titles.

use serde_json::json;
use shared::Result;

use super::{ModelStep, Pipeline, check_titles};
use crate::checkpoint::Outcome;
use crate::prompts::USE_CASES;
use crate::schema::{Evidence, PartA, Profile, UseCaseIdeas};

pub async fn run(
    pipeline: &Pipeline,
    profile: &Profile,
    evidence: &Evidence,
    part_a: &PartA,
) -> Result<Outcome<UseCaseIdeas>> {
    let count = pipeline.use_cases_count();
    let step = ModelStep {
        checkpoint: "s05_use_cases".to_string(),
        purpose: "step 5 (use cases)".to_string(),
        template: USE_CASES,
        model: &pipeline.models.content,
        schema_name: "use_cases",
        schema: UseCaseIdeas::schema(count),
        vars: json!({ "profile": profile, "themes": evidence.themes, "part_a": part_a }),
    };
    let check = move |ideas: &UseCaseIdeas| {
        check_titles(ideas.use_cases.iter().map(|u| u.title.as_str()), count)
    };
    pipeline.run_model(step, &check).await
}

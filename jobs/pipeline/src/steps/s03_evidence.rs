//! Step 3: the evidence — the themes that run through the documents, each with representative
//! quotes cited to the document they come from.

use serde_json::json;
use shared::Result;

use super::{ModelStep, Pipeline, no_check};
use crate::checkpoint::Outcome;
use crate::prompts::EVIDENCE;
use crate::schema::{Evidence, Profile};

pub async fn run(pipeline: &Pipeline, profile: &Profile) -> Result<Outcome<Evidence>> {
    let step = ModelStep {
        checkpoint: "s03_evidence".to_string(),
        purpose: "step 3 (evidence)".to_string(),
        template: EVIDENCE,
        model: &pipeline.models.content,
        schema_name: "evidence",
        schema: Evidence::schema(),
        vars: json!({ "profile": profile }),
    };
    pipeline.run_model(step, &no_check).await
}

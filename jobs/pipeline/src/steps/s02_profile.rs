//! Step 2: the company profile, from its documents (file_search over the run's vector store)
//! or, without documents, from the profile the consultancy gave.

use serde_json::json;
use shared::Result;

use super::{ModelStep, Pipeline, no_check};
use crate::checkpoint::Outcome;
use crate::prompts::PROFILE;
use crate::schema::Profile;

pub async fn run(pipeline: &Pipeline) -> Result<Outcome<Profile>> {
    let step = ModelStep {
        checkpoint: "s02_profile".to_string(),
        purpose: "step 2 (company profile)".to_string(),
        template: PROFILE,
        model: &pipeline.models.content,
        schema_name: "company_profile",
        schema: Profile::schema(),
        vars: json!({}),
    };
    pipeline.run_model(step, &no_check).await
}

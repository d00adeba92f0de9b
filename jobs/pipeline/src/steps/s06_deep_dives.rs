//! Step 6: one deep dive per use case, one model call each, run concurrently up to
//! `--max-concurrent-calls`. Each deep dive is checkpointed on its own as soon as it finishes
//! (`checkpoints/deep_dive_<k>.json`), so a run killed half-way keeps the ones already paid for.

use futures::StreamExt;
use serde_json::json;
use shared::Result;

use super::{ModelStep, Pipeline, no_check};
use crate::checkpoint::Outcome;
use crate::prompts::DEEP_DIVE;
use crate::schema::{DeepDive, PartA, Profile, UseCaseIdea};

/// The deep dives in use-case order.
pub async fn run(
    pipeline: &Pipeline,
    profile: &Profile,
    part_a: &PartA,
    ideas: &[UseCaseIdea],
) -> Result<Vec<Outcome<DeepDive>>> {
    let count = ideas.len();
    let calls = ideas.iter().enumerate().map(|(index, idea)| {
        let number = index + 1;
        let step = ModelStep {
            checkpoint: format!("deep_dive_{number}"),
            purpose: format!("step 6 (deep dive {number}/{count})"),
            template: DEEP_DIVE,
            model: &pipeline.models.content,
            schema_name: "deep_dive",
            schema: DeepDive::schema(),
            vars: json!({
                "profile": profile,
                "part_a": part_a,
                "use_case": idea,
                "use_case_number": number,
            }),
        };
        async move {
            let outcome = pipeline.run_model(step, &no_check).await;
            if let Ok(done) = &outcome {
                let how = if done.reused { "reused" } else { "written" };
                tracing::info!(
                    use_case = number,
                    "deep dive {number}/{count} {how}: {}",
                    idea.title
                );
            }
            (index, outcome)
        }
    });
    // Every call runs to its end even if another fails, so each finished deep dive is
    // checkpointed; the first failure is reported afterwards.
    let mut finished: Vec<(usize, Result<Outcome<DeepDive>>)> = futures::stream::iter(calls)
        .buffer_unordered(pipeline.max_concurrent_calls.max(1))
        .collect()
        .await;
    finished.sort_by_key(|(index, _)| *index);
    finished.into_iter().map(|(_, outcome)| outcome).collect()
}

//! The ten steps of SPEC §5.3, one file each, and the machinery the model steps share: the
//! template context, the fingerprint of what a step consumes, the checkpoint around each call,
//! and one corrective retry when an answer parses but breaks a rule the schema cannot express
//! (distinct titles, resolvable citations).

pub mod s01_load;
pub mod s02_profile;
pub mod s03_evidence;
pub mod s04_part_a;
pub mod s05_use_cases;
pub mod s06_deep_dives;
pub mod s07_part_b;
pub mod s08_consolidate;
pub mod s09_style;
pub mod s10_write;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use shared::inputs::{ReadinessCategory, RunInputs};
use shared::layout::CompanyDir;
use shared::markers::fingerprint;
use shared::{Error, Result};

use crate::checkpoint::{Checkpoints, Outcome};
use crate::config::Models;
use crate::llm::{Llm, Request};
use crate::prompts::{INSTRUCTIONS, Prompts};
use s01_load::Loaded;

/// Steps in the `[STEP k/10]` log lines.
pub const TOTAL_STEPS: u32 = 10;

/// Everything the steps of one run share.
pub struct Pipeline {
    pub inputs: RunInputs,
    pub loaded: Loaded,
    /// The company directory in the outputs root.
    pub out: CompanyDir,
    /// `<ts>` of the run's Part A, Part B and final report: from the run's first invocation, so a
    /// resumed run replaces its files instead of adding a second set.
    pub ts: String,
    pub prompts: Prompts,
    pub models: Models,
    pub llm: Llm,
    pub checkpoints: Checkpoints,
    /// Deep dives in flight at once.
    pub max_concurrent_calls: usize,
}

/// A rule an answer must satisfy beyond its schema; `Err` says what is wrong, for the model's
/// second chance and for the error message.
pub type Check<'a, T> = &'a (dyn Fn(&T) -> std::result::Result<(), String> + Sync);

/// One model call of a step.
pub struct ModelStep<'a> {
    /// Checkpoint name, e.g. `s02_profile` or `deep_dive_3`.
    pub checkpoint: String,
    /// For logs and errors, e.g. "step 2 (company profile)".
    pub purpose: String,
    pub template: &'a str,
    pub model: &'a str,
    pub schema_name: &'a str,
    pub schema: Value,
    /// The step's own template variables (a JSON object).
    pub vars: Value,
}

/// The readiness category as written in the report.
pub fn category_name(category: ReadinessCategory) -> &'static str {
    match category {
        ReadinessCategory::Explorer => "Explorer",
        ReadinessCategory::Adopter => "Adopter",
        ReadinessCategory::Leader => "Leader",
    }
}

impl Pipeline {
    /// The number of use cases the report must have.
    pub fn use_cases_count(&self) -> usize {
        self.inputs.use_cases_count as usize
    }

    /// Variables every template can use: `company`, `documents` (filenames), `has_documents`.
    fn context(&self, vars: &Value) -> Value {
        let inputs = &self.inputs;
        let mut context = json!({
            "company": {
                "name": inputs.company_name,
                "description": inputs.company_description,
                "readiness_score": inputs.readiness_score,
                "readiness_category": category_name(inputs.readiness_category),
                "expectations": inputs.report_expectations,
                "use_cases_count": inputs.use_cases_count,
            },
            "documents": self.loaded.documents.iter().map(|d| d.filename.as_str()).collect::<Vec<_>>(),
            "has_documents": self.loaded.vector_store_id.is_some() && !self.loaded.documents.is_empty(),
        });
        if let (Some(context), Some(vars)) = (context.as_object_mut(), vars.as_object()) {
            for (key, value) in vars {
                context.insert(key.clone(), value.clone());
            }
        }
        context
    }

    /// Renders the step's prompt and digests everything the call consumes: the rendered
    /// instructions and input (which carry the earlier results the step uses), both templates'
    /// hashes, the model, the schema and the documents searched.
    fn plan(&self, step: &ModelStep<'_>) -> Result<(String, String, String)> {
        let context = self.context(&step.vars);
        let instructions = self.prompts.render(INSTRUCTIONS, &context)?;
        let input = self.prompts.render(step.template, &context)?;
        let fp = fingerprint(&json!({
            "checkpoint": step.checkpoint,
            "templates": {
                INSTRUCTIONS: self.prompts.hash(INSTRUCTIONS),
                step.template: self.prompts.hash(step.template),
            },
            "model": step.model,
            "schema_name": step.schema_name,
            "schema": step.schema,
            "instructions": instructions,
            "input": input,
            "vector_store_id": self.loaded.vector_store_id,
            "documents": self.loaded.documents,
        }));
        Ok((instructions, input, fp))
    }

    /// Runs one model call, or reuses its checkpoint. An answer that fails `check` gets one
    /// second chance with the problem spelled out; a second failure is the model's (exit 4).
    /// Only an answer that passes is checkpointed.
    pub async fn run_model<T>(&self, step: ModelStep<'_>, check: Check<'_, T>) -> Result<Outcome<T>>
    where
        T: Serialize + DeserializeOwned,
    {
        let (instructions, input, fp) = self.plan(&step)?;
        let compute = async {
            let request = |input: String| Request {
                purpose: &step.purpose,
                model: step.model,
                instructions: instructions.clone(),
                input,
                schema_name: step.schema_name,
                schema: step.schema.clone(),
            };
            let (first, mut usage) = self.llm.structured::<T>(request(input.clone())).await?;
            let Err(problem) = check(&first) else {
                return Ok((first, usage));
            };
            tracing::warn!(purpose = %step.purpose, "{}: answer rejected ({problem}); asking once more", step.purpose);
            let retry = format!(
                "{input}\n\nYour previous answer was rejected: {problem}. Answer again and fix this."
            );
            let (second, more) = self.llm.structured::<T>(request(retry)).await?;
            usage.add(more);
            match check(&second) {
                Ok(()) => Ok((second, usage)),
                Err(problem) => Err(Error::external(format!(
                    "{}: the model's answer was rejected twice: {problem}; re-run the job (it resumes here) or use another model set",
                    step.purpose
                ))),
            }
        };
        self.checkpoints
            .run(&step.checkpoint, &fp, step.model, compute)
            .await
    }
}

/// Accepts any answer that matches the schema.
pub fn no_check<T>(_: &T) -> std::result::Result<(), String> {
    Ok(())
}

/// Exactly `expected` use cases with non-empty, distinct titles.
pub fn check_titles<'a>(
    titles: impl Iterator<Item = &'a str>,
    expected: usize,
) -> std::result::Result<(), String> {
    let titles: Vec<String> = titles.map(|t| t.trim().to_lowercase()).collect();
    if titles.len() != expected {
        return Err(format!(
            "it has {} use cases instead of exactly {expected}",
            titles.len()
        ));
    }
    if titles.iter().any(String::is_empty) {
        return Err("a use case has an empty title".to_string());
    }
    let mut seen = std::collections::BTreeSet::new();
    let repeated: Vec<&str> = titles
        .iter()
        .filter(|t| !seen.insert(t.as_str()))
        .map(String::as_str)
        .collect();
    if !repeated.is_empty() {
        return Err(format!(
            "use case titles repeat ({}); every use case needs a distinct title",
            repeated.join("; ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_must_be_exactly_n_and_distinct() {
        assert!(check_titles(["A", "B"].into_iter(), 2).is_ok());
        assert!(
            check_titles(["A"].into_iter(), 2)
                .unwrap_err()
                .contains("exactly 2")
        );
        let err = check_titles(["Invoice bot", "invoice bot "].into_iter(), 2).unwrap_err();
        assert!(err.contains("invoice bot"), "{err}");
        assert!(check_titles([" "].into_iter(), 1).is_err());
    }
}

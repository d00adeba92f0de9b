//! The body of a run request: the workflow spec from `workflows/paperspace/` and the §3 inputs
//! as Paperspace string inputs.
//!
//! The spec is sent with every run (the current API runs the spec it is given), so the spec in
//! the repository is the one that runs. Inputs are sent with their validated, canonical values
//! (slug derived, score without `%`, category capitalised) so every job of the run reads the
//! same thing the trigger checked.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use shared::inputs::{KEYS, ReadinessCategory, RunInputs};
use shared::{Error, Result};

/// The spec the trigger sends unless told otherwise (relative to the working directory).
pub const DEFAULT_SPEC_PATH: &str = "workflows/paperspace/pipeline-workflow.yaml";

/// Reads a workflow spec (YAML or JSON) as the JSON the API takes.
pub fn load_spec(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::bad_input(format!(
            "cannot read the workflow spec {}: {e}; run from the repository root or pass --spec",
            path.display()
        ))
    })?;
    let spec: Value = serde_yaml::from_str(&text).map_err(|e| {
        Error::bad_input(format!(
            "the workflow spec {} is not valid YAML: {e}",
            path.display()
        ))
    })?;
    if !spec.get("jobs").is_some_and(Value::is_object) {
        return Err(Error::bad_input(format!(
            "the workflow spec {} has no `jobs:` mapping; is it a Paperspace workflow spec?",
            path.display()
        )));
    }
    Ok(spec)
}

/// The spec path as given on the command line, for messages.
pub fn spec_path(given: &Option<PathBuf>) -> PathBuf {
    given
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SPEC_PATH))
}

/// The canonical string of every §3 key, with `run_id` the one this run carries.
pub fn input_values(inputs: &RunInputs, run_id: &str) -> Vec<(&'static str, String)> {
    let category = match inputs.readiness_category {
        ReadinessCategory::Explorer => "Explorer",
        ReadinessCategory::Adopter => "Adopter",
        ReadinessCategory::Leader => "Leader",
    };
    vec![
        ("company_name", inputs.company_name.clone()),
        ("company_slug", inputs.company_slug.clone()),
        ("use_cases_count", inputs.use_cases_count.to_string()),
        ("company_description", inputs.company_description.clone()),
        ("readiness_score", inputs.readiness_score.to_string()),
        ("readiness_category", category.to_string()),
        ("report_expectations", inputs.report_expectations.clone()),
        ("google_drive_link", inputs.google_drive_link.clone()),
        ("model_set", inputs.model_set.as_str().to_string()),
        ("run_id", run_id.to_string()),
    ]
}

/// The `workflowRuns-create` body: the spec, the inputs as `{type: string, with: {value}}`, and
/// `meta` (which carries the idempotency key, see [`crate::batch`]).
///
/// When the spec declares `inputs:`, only the §3 keys it declares are sent (the API refuses
/// undeclared inputs), and it must declare `company_name`; a spec without `inputs:` gets all.
pub fn run_request(spec: &Value, inputs: &RunInputs, run_id: &str, meta: Value) -> Result<Value> {
    let declared = spec.get("inputs").and_then(Value::as_object);
    if let Some(declared) = declared
        && !declared.contains_key("company_name")
    {
        return Err(Error::bad_input(format!(
            "the workflow spec declares inputs ({}) but not company_name; declare the run-input \
             keys ({}) as `type: string` inputs",
            declared.keys().cloned().collect::<Vec<_>>().join(", "),
            KEYS.join(", ")
        )));
    }
    let mut run_inputs = Map::new();
    for (key, value) in input_values(inputs, run_id) {
        if declared.is_none_or(|d| d.contains_key(key)) {
            run_inputs.insert(
                key.to_string(),
                json!({ "type": "string", "with": { "value": value } }),
            );
        }
    }
    Ok(json!({ "spec": spec, "inputs": run_inputs, "meta": meta }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn inputs() -> RunInputs {
        let raw = BTreeMap::from([
            ("company_name", "Acme Rockets"),
            ("readiness_score", "75 %"),
            ("readiness_category", "leader"),
        ]);
        shared::inputs::validate(&raw).unwrap()
    }

    #[test]
    fn sends_canonical_values_of_declared_inputs_only() {
        let spec = json!({
            "inputs": { "company_name": {"type": "string"}, "readiness_score": {"type": "string"},
                        "readiness_category": {"type": "string"}, "run_id": {"type": "string"} },
            "jobs": { "setup": {} }
        });
        let body = run_request(&spec, &inputs(), "r1", json!({})).unwrap();
        let sent = body["inputs"].as_object().unwrap();
        assert_eq!(sent.len(), 4);
        assert_eq!(sent["readiness_score"]["with"]["value"], "75");
        assert_eq!(sent["readiness_category"]["with"]["value"], "Leader");
        assert_eq!(sent["run_id"]["with"]["value"], "r1");
        assert_eq!(body["spec"], spec);
    }

    #[test]
    fn a_spec_without_inputs_gets_every_key_and_one_without_company_name_is_refused() {
        let open = json!({ "jobs": { "setup": {} } });
        let body = run_request(&open, &inputs(), "r1", json!({})).unwrap();
        assert_eq!(body["inputs"].as_object().unwrap().len(), KEYS.len());
        assert_eq!(
            body["inputs"]["company_slug"]["with"]["value"],
            "acme_rockets"
        );

        let wrong = json!({ "inputs": { "name": {"type": "string"} }, "jobs": {} });
        let err = run_request(&wrong, &inputs(), "r1", json!({})).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("company_name"), "{err}");
    }
}

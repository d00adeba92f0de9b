//! The structured outputs of the model steps: a Rust type per result and the strict JSON schema
//! the model is held to.
//!
//! Every model call asks for JSON (strict structured outputs), never free Markdown: the report's
//! headings and order are assembled in code from these fields (see `report.rs`), so a model
//! cannot drop, rename or reorder a section. Strict mode requires closed objects that list every
//! property as required; [`object`] builds exactly that.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// A Markdown text field.
fn text(description: &str) -> Value {
    json!({"type": "string", "description": description})
}

/// An array of `items` with a bounded length.
fn array(items: Value, min: usize, max: usize, description: &str) -> Value {
    json!({"type": "array", "items": items, "minItems": min, "maxItems": max, "description": description})
}

/// A closed object requiring every property, as strict mode wants.
fn object(properties: &[(&str, Value)]) -> Value {
    let required: Vec<&str> = properties.iter().map(|(name, _)| *name).collect();
    let properties: Map<String, Value> = properties
        .iter()
        .map(|(name, schema)| (name.to_string(), schema.clone()))
        .collect();
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

/// Step 2: the company as its documents show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub overview: String,
    pub business_model: String,
    pub operations: String,
    pub technology_and_data: String,
    pub people_and_culture: String,
}

impl Profile {
    pub fn schema() -> Value {
        object(&[
            (
                "overview",
                text("What the company does, for whom, where; size and history if known."),
            ),
            (
                "business_model",
                text("How the company creates and captures value."),
            ),
            (
                "operations",
                text("How the core processes run today, including manual work."),
            ),
            (
                "technology_and_data",
                text("Systems, tools and data the company has and how they are used."),
            ),
            (
                "people_and_culture",
                text("Skills, roles, attitudes to change and to AI."),
            ),
        ])
    }
}

/// A theme and the quotes that show it (steps 3, 8, 9).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Theme {
    pub title: String,
    pub summary: String,
    /// Verbatim quotes, each ending with its `[source: FILENAME]` citation.
    pub quotes: Vec<String>,
}

fn theme_schema() -> Value {
    object(&[
        ("title", text("The theme in a few words.")),
        ("summary", text("What the documents say about this theme.")),
        (
            "quotes",
            array(
                text(
                    "A verbatim quote in double quotes followed by its citation [source: FILENAME].",
                ),
                1,
                4,
                "Representative quotes for the theme.",
            ),
        ),
    ])
}

/// Step 3: themes with representative quotes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub themes: Vec<Theme>,
}

impl Evidence {
    pub fn schema() -> Value {
        object(&[(
            "themes",
            array(theme_schema(), 3, 6, "The main themes of the documents."),
        )])
    }
}

/// Step 4: Part A, current state and readiness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartA {
    pub executive_summary: String,
    pub current_state: String,
    pub readiness_evidence: String,
    pub strengths: String,
    pub gaps: String,
}

impl PartA {
    pub fn schema() -> Value {
        object(&[
            (
                "executive_summary",
                text("The current state and readiness in one or two paragraphs."),
            ),
            (
                "current_state",
                text("The company's current state as regards AI agents and automation."),
            ),
            (
                "readiness_evidence",
                text("What the evidence says about the given readiness score and category."),
            ),
            ("strengths", text("Strengths to build on.")),
            (
                "gaps",
                text("Gaps to close before or while adopting AI agents."),
            ),
        ])
    }
}

/// One use case as first proposed (step 5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UseCaseIdea {
    pub title: String,
    pub problem: String,
    pub proposed_solution: String,
    pub expected_value: String,
}

/// Step 5: exactly N use cases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UseCaseIdeas {
    pub use_cases: Vec<UseCaseIdea>,
}

impl UseCaseIdeas {
    pub fn schema(count: usize) -> Value {
        let idea = object(&[
            ("title", text("A short, distinctive title.")),
            (
                "problem",
                text("The problem or opportunity, grounded in the documents."),
            ),
            (
                "proposed_solution",
                text("The AI agent or automation proposed."),
            ),
            ("expected_value", text("The value expected.")),
        ]);
        object(&[(
            "use_cases",
            array(
                idea,
                count,
                count,
                "Exactly the requested number of distinct use cases.",
            ),
        )])
    }
}

/// Step 6: the deep dive of one use case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeepDive {
    pub problem: String,
    pub proposed_solution: String,
    pub expected_value_and_kpis: String,
    pub feasibility_and_effort: String,
    pub data_and_systems_needed: String,
    pub risks: String,
    pub first_steps: String,
}

fn deep_dive_properties() -> Vec<(&'static str, Value)> {
    vec![
        ("problem", text("The problem in detail, with evidence.")),
        (
            "proposed_solution",
            text("How the solution works, step by step, and who uses it."),
        ),
        (
            "expected_value_and_kpis",
            text("Expected value and the KPIs that measure it, with baselines where known."),
        ),
        (
            "feasibility_and_effort",
            text("Feasibility, effort, cost drivers and timeline."),
        ),
        (
            "data_and_systems_needed",
            text("Data sources and systems needed, and their state."),
        ),
        ("risks", text("Risks and how to mitigate them.")),
        ("first_steps", text("The first concrete steps.")),
    ]
}

impl DeepDive {
    pub fn schema() -> Value {
        object(&deep_dive_properties())
    }
}

/// Step 7: Part B, beyond the use cases themselves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartB {
    pub overview: String,
    pub roadmap: String,
    pub risks_and_governance: String,
    pub kpi_framework: String,
}

impl PartB {
    pub fn schema() -> Value {
        object(&[
            (
                "overview",
                text("How the use cases fit together and which to start with."),
            ),
            (
                "roadmap",
                text("An implementation roadmap in phases, with timing and dependencies."),
            ),
            (
                "risks_and_governance",
                text("Cross-cutting risks and the governance to manage them."),
            ),
            (
                "kpi_framework",
                text("How success is measured across the use cases."),
            ),
        ])
    }
}

/// One use case of the final report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UseCase {
    pub title: String,
    pub problem: String,
    pub proposed_solution: String,
    pub expected_value_and_kpis: String,
    pub feasibility_and_effort: String,
    pub data_and_systems_needed: String,
    pub risks: String,
    pub first_steps: String,
}

/// Steps 8 and 9: the whole report's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub executive_summary: String,
    pub company_profile: String,
    pub readiness_evidence: String,
    pub themes: Vec<Theme>,
    pub use_cases: Vec<UseCase>,
    pub roadmap: String,
    pub risks_and_governance: String,
    pub next_steps: String,
}

impl Report {
    pub fn schema(count: usize) -> Value {
        let mut use_case = vec![("title", text("The use case's title."))];
        use_case.extend(deep_dive_properties());
        object(&[
            (
                "executive_summary",
                text("The whole report in a few paragraphs, for a busy executive."),
            ),
            (
                "company_profile",
                text("The company as its documents show it."),
            ),
            (
                "readiness_evidence",
                text("What the evidence says about the readiness score and category."),
            ),
            (
                "themes",
                array(
                    theme_schema(),
                    3,
                    6,
                    "Key themes with representative quotes.",
                ),
            ),
            (
                "use_cases",
                array(
                    object(&use_case),
                    count,
                    count,
                    "Exactly the requested number of use cases, in order.",
                ),
            ),
            ("roadmap", text("The implementation roadmap.")),
            ("risks_and_governance", text("Risks and governance.")),
            ("next_steps", text("The next steps for the company.")),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every object of a strict schema is closed and requires all its properties.
    fn assert_strict(schema: &Value) {
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            assert_eq!(schema["additionalProperties"], false);
            let required: Vec<&str> = schema["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            for (name, property) in properties {
                assert!(required.contains(&name.as_str()), "{name} not required");
                assert_strict(property);
            }
        }
        if let Some(items) = schema.get("items") {
            assert_strict(items);
        }
    }

    #[test]
    fn schemas_are_strict_and_pin_the_use_case_count() {
        for schema in [
            Profile::schema(),
            Evidence::schema(),
            PartA::schema(),
            UseCaseIdeas::schema(7),
            DeepDive::schema(),
            PartB::schema(),
            Report::schema(7),
        ] {
            assert_strict(&schema);
        }
        let ideas = UseCaseIdeas::schema(20);
        assert_eq!(ideas["properties"]["use_cases"]["minItems"], 20);
        assert_eq!(ideas["properties"]["use_cases"]["maxItems"], 20);
        assert_eq!(Report::schema(1)["properties"]["use_cases"]["maxItems"], 1);
    }
}

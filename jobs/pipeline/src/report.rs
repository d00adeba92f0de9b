//! Assembly of the Markdown documents: Part A, Part B and the final report.
//!
//! Headings, their order and the title block are written here, in code, from the structured
//! results of the model steps; the model only writes the text inside the sections. Headings a
//! model puts inside a text are turned into bold lines, so no answer can add, drop or reorder a
//! section of the report.

use shared::inputs::RunInputs;

use crate::schema::{DeepDive, Evidence, PartA, PartB, Profile, Report, Theme, UseCaseIdea};
use crate::steps::{Pipeline, category_name};

/// The `##` sections of the final report, in order.
pub const SECTIONS: [&str; 9] = [
    "Executive summary",
    "Company profile",
    "AI readiness assessment",
    "Key themes and representative quotes",
    "Use cases",
    "Implementation roadmap",
    "Risks and governance",
    "Next steps",
    "Sources",
];

/// The `####` subsections of every use case, in order.
pub const USE_CASE_SECTIONS: [&str; 7] = [
    "Problem",
    "Proposed solution",
    "Expected value and KPIs",
    "Feasibility and effort",
    "Data and systems needed",
    "Risks",
    "First steps",
];

/// What the note says when the run had no documents.
pub const NO_DOCUMENTS: &str =
    "No documents were provided for this run: this report is based on the company profile alone.";

/// The facts of the title block.
pub struct Header {
    pub company: String,
    /// `YYYY-mm-dd`, UTC.
    pub date: String,
    pub run_id: String,
    pub model_set: String,
    pub content_model: String,
    pub style_model: String,
    pub has_documents: bool,
}

impl Header {
    pub fn of(pipeline: &Pipeline) -> Header {
        let ts = &pipeline.ts;
        let date = if ts.len() >= 8 {
            format!("{}-{}-{}", &ts[0..4], &ts[4..6], &ts[6..8])
        } else {
            ts.clone()
        };
        Header {
            company: pipeline.inputs.company_name.clone(),
            date,
            run_id: pipeline.loaded.run_id.clone(),
            model_set: pipeline.inputs.model_set.as_str().to_string(),
            content_model: pipeline.models.content.clone(),
            style_model: pipeline.models.style.clone(),
            has_documents: !pipeline.loaded.documents.is_empty(),
        }
    }

    fn write(&self, out: &mut String, title: &str) {
        out.push_str(&format!("# {}\n\n", line(title)));
        out.push_str(&format!("- **Company:** {}\n", line(&self.company)));
        out.push_str(&format!("- **Date:** {}\n", self.date));
        out.push_str(&format!("- **Run id:** {}\n", self.run_id));
        out.push_str(&format!(
            "- **Model set:** {} (content: {}, style: {})\n\n",
            self.model_set, self.content_model, self.style_model
        ));
        if !self.has_documents {
            out.push_str(&format!("> **Note:** {NO_DOCUMENTS}\n\n"));
        }
    }
}

/// A document the report cites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub filename: String,
    pub path: String,
    pub drive_id: Option<String>,
}

/// Model text as a section body: trimmed, with Markdown headings demoted to bold lines.
pub fn block(text: &str) -> String {
    text.trim()
        .lines()
        .map(|raw| {
            let trimmed = raw.trim_start();
            let hashes = trimmed.chars().take_while(|c| *c == '#').count();
            match trimmed[hashes..].strip_prefix(' ') {
                Some(rest) if hashes > 0 => {
                    format!("**{}**", rest.trim().trim_end_matches('#').trim())
                }
                _ => raw.trim_end().to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Model text as one line (titles).
pub fn line(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches('#')
        .trim()
        .to_string()
}

fn section(out: &mut String, level: usize, heading: &str, body: &str) {
    out.push_str(&format!(
        "{} {heading}\n\n{}\n\n",
        "#".repeat(level),
        block(body)
    ));
}

fn quote(text: &str) -> String {
    block(text)
        .lines()
        .map(|l| format!("> {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn themes(out: &mut String, themes: &[Theme]) {
    for theme in themes {
        out.push_str(&format!(
            "### {}\n\n{}\n\n",
            line(&theme.title),
            block(&theme.summary)
        ));
        for text in &theme.quotes {
            out.push_str(&format!("{}\n\n", quote(text)));
        }
    }
}

fn readiness(inputs: &RunInputs, evidence: &str) -> String {
    format!(
        "**Readiness score:** {}/100 · **Category:** {}\n\n{}",
        inputs.readiness_score,
        category_name(inputs.readiness_category),
        block(evidence)
    )
}

/// Part A: the current state and readiness draft (step 4).
pub fn part_a(
    header: &Header,
    inputs: &RunInputs,
    profile: &Profile,
    evidence: &Evidence,
    part_a: &PartA,
) -> String {
    let mut out = String::new();
    header.write(
        &mut out,
        &format!(
            "{}: AI agent-readiness report, Part A (draft)",
            header.company
        ),
    );
    section(&mut out, 2, "Executive summary", &part_a.executive_summary);
    out.push_str("## Company profile\n\n");
    for (heading, body) in [
        ("Overview", &profile.overview),
        ("Business model", &profile.business_model),
        ("Operations", &profile.operations),
        ("Technology and data", &profile.technology_and_data),
        ("People and culture", &profile.people_and_culture),
    ] {
        section(&mut out, 3, heading, body);
    }
    section(&mut out, 2, "Current state", &part_a.current_state);
    out.push_str(&format!(
        "## AI readiness assessment\n\n{}\n\n",
        readiness(inputs, &part_a.readiness_evidence)
    ));
    section(&mut out, 3, "Strengths", &part_a.strengths);
    section(&mut out, 3, "Gaps", &part_a.gaps);
    out.push_str("## Key themes and representative quotes\n\n");
    themes(&mut out, &evidence.themes);
    out
}

/// Part B: the use cases with their deep dives, roadmap, risks and KPIs (step 7).
pub fn part_b(
    header: &Header,
    ideas: &[UseCaseIdea],
    deep_dives: &[DeepDive],
    part_b: &PartB,
) -> String {
    let mut out = String::new();
    header.write(
        &mut out,
        &format!("{}: AI use cases, Part B (enhanced)", header.company),
    );
    section(&mut out, 2, "Overview", &part_b.overview);
    out.push_str("## Use cases\n\n");
    for (number, (idea, deep)) in ideas.iter().zip(deep_dives).enumerate() {
        out.push_str(&format!(
            "### Use case {}: {}\n\n",
            number + 1,
            line(&idea.title)
        ));
        use_case_sections(&mut out, deep);
    }
    section(&mut out, 2, "Implementation roadmap", &part_b.roadmap);
    section(&mut out, 2, "KPI framework", &part_b.kpi_framework);
    section(
        &mut out,
        2,
        "Risks and governance",
        &part_b.risks_and_governance,
    );
    out
}

fn use_case_sections(out: &mut String, deep: &DeepDive) {
    let bodies = [
        &deep.problem,
        &deep.proposed_solution,
        &deep.expected_value_and_kpis,
        &deep.feasibility_and_effort,
        &deep.data_and_systems_needed,
        &deep.risks,
        &deep.first_steps,
    ];
    for (heading, body) in USE_CASE_SECTIONS.iter().zip(bodies) {
        section(out, 4, heading, body);
    }
}

/// The final report (step 10), from the validated style-pass result.
pub fn final_report(
    header: &Header,
    inputs: &RunInputs,
    report: &Report,
    sources: &[Source],
) -> String {
    let mut out = String::new();
    header.write(
        &mut out,
        &format!("AI agent-readiness report: {}", header.company),
    );
    section(&mut out, 2, SECTIONS[0], &report.executive_summary);
    section(&mut out, 2, SECTIONS[1], &report.company_profile);
    out.push_str(&format!(
        "## {}\n\n{}\n\n",
        SECTIONS[2],
        readiness(inputs, &report.readiness_evidence)
    ));
    out.push_str(&format!("## {}\n\n", SECTIONS[3]));
    themes(&mut out, &report.themes);
    out.push_str(&format!("## {}\n\n", SECTIONS[4]));
    for (number, use_case) in report.use_cases.iter().enumerate() {
        out.push_str(&format!(
            "### Use case {}: {}\n\n",
            number + 1,
            line(&use_case.title)
        ));
        let deep = DeepDive {
            problem: use_case.problem.clone(),
            proposed_solution: use_case.proposed_solution.clone(),
            expected_value_and_kpis: use_case.expected_value_and_kpis.clone(),
            feasibility_and_effort: use_case.feasibility_and_effort.clone(),
            data_and_systems_needed: use_case.data_and_systems_needed.clone(),
            risks: use_case.risks.clone(),
            first_steps: use_case.first_steps.clone(),
        };
        use_case_sections(&mut out, &deep);
    }
    section(&mut out, 2, SECTIONS[5], &report.roadmap);
    section(&mut out, 2, SECTIONS[6], &report.risks_and_governance);
    section(&mut out, 2, SECTIONS[7], &report.next_steps);
    out.push_str(&format!("## {}\n\n", SECTIONS[8]));
    if !header.has_documents {
        out.push_str(&format!("{NO_DOCUMENTS}\n"));
    } else if sources.is_empty() {
        out.push_str("The report cites no document.\n");
    } else {
        for (number, source) in sources.iter().enumerate() {
            let drive = match &source.drive_id {
                Some(id) => format!("Drive id `{id}`"),
                None => "not from Drive".to_string(),
            };
            out.push_str(&format!(
                "{}. {}: `{}` ({drive})\n",
                number + 1,
                source.filename,
                source.path
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_headings_are_demoted_and_titles_flattened() {
        assert_eq!(
            block("  ## Sneaky section ##\nText\n#hashtag stays"),
            "**Sneaky section**\nText\n#hashtag stays"
        );
        assert_eq!(line("# Invoice\n  agent "), "Invoice agent");
    }
}

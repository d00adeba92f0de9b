//! Step 9's validation: the report the customer pays for is complete and grounded.
//!
//! - exactly N use cases with distinct titles;
//! - every section and use-case subsection present and non-empty;
//! - every citation `[source: FILENAME]` names a document that `data/.ready` lists (through
//!   the vector record's filename → path map); a citation that does not resolve, or one cut
//!   off before its `]`, is listed by name and place;
//! - nothing truncated: the model client never returns an incomplete response, and a citation
//!   cut off mid-way is caught here as well;
//! - the assembled Markdown has every heading, in order, with a body.

use std::collections::BTreeMap;

use crate::report::{SECTIONS, Source, USE_CASE_SECTIONS};
use crate::schema::Report;
use crate::steps::check_titles;
use crate::steps::s01_load::Document;

/// How a citation starts.
const CITATION: &str = "[source:";
/// Problems listed in one message at most; the rest are counted.
const MAX_LISTED: usize = 12;

/// A citation as found in a text: the name inside the brackets, or `None` when the text ends
/// before the closing `]`.
fn citations(text: &str) -> Vec<Option<String>> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(CITATION) {
        let after = &rest[start + CITATION.len()..];
        match after.find(']') {
            Some(end) => {
                found.push(Some(after[..end].trim().to_string()));
                rest = &after[end + 1..];
            }
            None => {
                found.push(None);
                break;
            }
        }
    }
    found
}

/// The documents a citation names: the whole name, or, failing that, a `;`- or `,`-separated
/// list of names that all resolve (models sometimes cite two documents in one bracket).
fn resolve<'a>(
    name: &str,
    by_filename: &BTreeMap<&str, &'a Document>,
) -> Option<Vec<&'a Document>> {
    if let Some(document) = by_filename.get(name) {
        return Some(vec![*document]);
    }
    let parts: Vec<&str> = name
        .split([';', ','])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.len() < 2 {
        return None;
    }
    parts
        .iter()
        .map(|part| by_filename.get(part).copied())
        .collect()
}

/// Every text of the report with where it sits, for messages.
fn texts(report: &Report) -> Vec<(String, &str)> {
    let mut texts = vec![
        (
            "executive summary".to_string(),
            report.executive_summary.as_str(),
        ),
        (
            "company profile".to_string(),
            report.company_profile.as_str(),
        ),
        (
            "readiness assessment".to_string(),
            report.readiness_evidence.as_str(),
        ),
    ];
    for (t, theme) in report.themes.iter().enumerate() {
        texts.push((format!("theme {} title", t + 1), theme.title.as_str()));
        texts.push((format!("theme {} summary", t + 1), theme.summary.as_str()));
        for (q, quote) in theme.quotes.iter().enumerate() {
            texts.push((format!("theme {} quote {}", t + 1, q + 1), quote.as_str()));
        }
    }
    for (u, use_case) in report.use_cases.iter().enumerate() {
        let fields = [
            &use_case.title,
            &use_case.problem,
            &use_case.proposed_solution,
            &use_case.expected_value_and_kpis,
            &use_case.feasibility_and_effort,
            &use_case.data_and_systems_needed,
            &use_case.risks,
            &use_case.first_steps,
        ];
        for (heading, text) in std::iter::once(&"Title")
            .chain(USE_CASE_SECTIONS.iter())
            .zip(fields)
        {
            texts.push((
                format!("use case {} {}", u + 1, heading.to_lowercase()),
                text.as_str(),
            ));
        }
    }
    texts.push((
        "implementation roadmap".to_string(),
        report.roadmap.as_str(),
    ));
    texts.push((
        "risks and governance".to_string(),
        report.risks_and_governance.as_str(),
    ));
    texts.push(("next steps".to_string(), report.next_steps.as_str()));
    texts
}

fn listed(problems: &[String]) -> String {
    let mut text = problems
        .iter()
        .take(MAX_LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if problems.len() > MAX_LISTED {
        text.push_str(&format!("; and {} more", problems.len() - MAX_LISTED));
    }
    text
}

/// Checks the report's content; on success, the cited documents in order of first citation.
pub fn content(
    report: &Report,
    expected: usize,
    documents: &[Document],
) -> Result<Vec<Source>, String> {
    let mut problems = Vec::new();
    if let Err(problem) = check_titles(report.use_cases.iter().map(|u| u.title.as_str()), expected)
    {
        problems.push(problem);
    }
    if report.themes.is_empty() {
        problems.push("the report has no key themes".to_string());
    }
    let texts = texts(report);
    let empty: Vec<String> = texts
        .iter()
        .filter(|(_, text)| text.trim().is_empty())
        .map(|(place, _)| place.clone())
        .collect();
    if !empty.is_empty() {
        problems.push(format!("empty sections: {}", listed(&empty)));
    }

    let mut by_filename: BTreeMap<&str, &Document> = BTreeMap::new();
    for document in documents {
        by_filename
            .entry(document.filename.as_str())
            .or_insert(document);
    }
    let mut sources: Vec<Source> = Vec::new();
    let mut unresolved = Vec::new();
    let mut cut_off = Vec::new();
    for (place, text) in &texts {
        for citation in citations(text) {
            let Some(name) = citation else {
                cut_off.push(place.clone());
                continue;
            };
            match resolve(&name, &by_filename) {
                Some(found) => {
                    for document in found {
                        if !sources.iter().any(|s| s.path == document.path) {
                            sources.push(Source {
                                filename: document.filename.clone(),
                                path: document.path.clone(),
                                drive_id: document.drive_id.clone(),
                            });
                        }
                    }
                }
                None => unresolved.push(format!("\"{name}\" (in {place})")),
            }
        }
    }
    if !unresolved.is_empty() {
        let known = if documents.is_empty() {
            " (this run has no documents)"
        } else {
            ""
        };
        problems.push(format!(
            "{} citation(s) name no document listed in data/.ready{known}: {}",
            unresolved.len(),
            listed(&unresolved)
        ));
    }
    if !cut_off.is_empty() {
        problems.push(format!(
            "citations cut off before their closing bracket (truncated text) in: {}",
            listed(&cut_off)
        ));
    }
    if problems.is_empty() {
        Ok(sources)
    } else {
        Err(problems.join("; "))
    }
}

/// Checks the assembled Markdown: every section heading once and in order, each with a body;
/// `expected` use cases, each with every subsection and a body under it.
pub fn structure(markdown: &str, expected: usize) -> Result<(), String> {
    let mut headings: Vec<(usize, String, bool)> = Vec::new();
    for text_line in markdown.lines() {
        let hashes = text_line.chars().take_while(|c| *c == '#').count();
        if hashes > 0 && text_line[hashes..].starts_with(' ') {
            headings.push((hashes, text_line[hashes + 1..].trim().to_string(), false));
        } else if !text_line.trim().is_empty()
            && let Some(last) = headings.last_mut()
        {
            last.2 = true;
        }
    }
    let sections: Vec<&str> = headings
        .iter()
        .filter(|h| h.0 == 2)
        .map(|h| h.1.as_str())
        .collect();
    if sections != SECTIONS {
        return Err(format!(
            "sections are [{}], expected [{}]",
            sections.join(", "),
            SECTIONS.join(", ")
        ));
    }
    let use_cases = headings
        .iter()
        .filter(|h| h.0 == 3 && h.1.starts_with("Use case "))
        .count();
    if use_cases != expected {
        return Err(format!("{use_cases} use cases, expected {expected}"));
    }
    let subsections: Vec<&str> = headings
        .iter()
        .filter(|h| h.0 == 4)
        .map(|h| h.1.as_str())
        .collect();
    let wanted: Vec<&str> = USE_CASE_SECTIONS
        .iter()
        .copied()
        .cycle()
        .take(USE_CASE_SECTIONS.len() * expected)
        .collect();
    if subsections != wanted {
        return Err("use-case subsections are missing or out of order".to_string());
    }
    // A `##` heading followed directly by `###` headings (themes, use cases) has its content
    // below them; every other heading needs text of its own.
    for (index, (level, heading, has_body)) in headings.iter().enumerate() {
        let has_children = headings.get(index + 1).is_some_and(|next| next.0 > *level);
        if !has_body && !has_children {
            return Err(format!("section \"{heading}\" is empty"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Theme, UseCase};

    fn document(filename: &str) -> Document {
        Document {
            filename: filename.to_string(),
            path: format!("data/{filename}"),
            drive_id: Some(format!("drive-{filename}")),
            sha256: String::new(),
        }
    }

    fn report(text: &str, count: usize) -> Report {
        let use_case = |n: usize| UseCase {
            title: format!("Use case title {n}"),
            problem: text.to_string(),
            proposed_solution: text.to_string(),
            expected_value_and_kpis: text.to_string(),
            feasibility_and_effort: text.to_string(),
            data_and_systems_needed: text.to_string(),
            risks: text.to_string(),
            first_steps: text.to_string(),
        };
        Report {
            executive_summary: text.to_string(),
            company_profile: text.to_string(),
            readiness_evidence: text.to_string(),
            themes: vec![Theme {
                title: "T".into(),
                summary: text.into(),
                quotes: vec![text.into()],
            }],
            use_cases: (1..=count).map(use_case).collect(),
            roadmap: text.to_string(),
            risks_and_governance: text.to_string(),
            next_steps: text.to_string(),
        }
    }

    #[test]
    fn citations_resolve_to_listed_documents_in_order_of_first_use() {
        let docs = [document("a.md"), document("b.pdf")];
        let sources = content(
            &report("See [source: b.pdf] and [source: a.md; b.pdf].", 2),
            2,
            &docs,
        )
        .unwrap();
        let paths: Vec<&str> = sources.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(paths, ["data/b.pdf", "data/a.md"]);
        assert_eq!(sources[0].drive_id.as_deref(), Some("drive-b.pdf"));
    }

    #[test]
    fn unresolved_cut_off_and_missing_content_are_each_named() {
        let docs = [document("a.md")];
        let err = content(&report("Claim [source: ghost.pdf].", 1), 1, &docs).unwrap_err();
        assert!(
            err.contains("\"ghost.pdf\" (in executive summary)"),
            "{err}"
        );
        let err = content(&report("Claim [source: a.m", 1), 1, &docs).unwrap_err();
        assert!(err.contains("cut off"), "{err}");
        let mut short = report("Fine.", 3);
        short.next_steps = " ".into();
        let err = content(&short, 2, &docs).unwrap_err();
        assert!(
            err.contains("3 use cases instead of exactly 2") && err.contains("next steps"),
            "{err}"
        );
    }

    #[test]
    fn structure_requires_every_heading_in_order_with_a_body() {
        let mut good = String::from("# Title\n\nblock\n\n");
        for section in SECTIONS {
            good.push_str(&format!("## {section}\n\n"));
            if section == "Use cases" {
                good.push_str("### Use case 1: X\n\n");
                for sub in USE_CASE_SECTIONS {
                    good.push_str(&format!("#### {sub}\n\ntext\n\n"));
                }
            } else {
                good.push_str("text\n\n");
            }
        }
        assert_eq!(structure(&good, 1), Ok(()));
        assert!(structure(&good, 2).unwrap_err().contains("1 use cases"));
        let missing = good.replace("## Next steps\n\ntext\n\n", "");
        assert!(structure(&missing, 1).unwrap_err().contains("sections are"));
        let empty = good.replace("## Next steps\n\ntext", "## Next steps\n\n");
        assert!(structure(&empty, 1).unwrap_err().contains("Next steps"));
    }
}

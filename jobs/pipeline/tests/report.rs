//! The report a user gets: every section in order, exactly N use cases, content flowing from a
//! document into the report with its citation, the final marker with tokens and cost, and a
//! second run that recognises the finished report without calling the model.

mod common;

use std::path::Path;

use common::*;

const SECTIONS: [&str; 9] = [
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
const SUBSECTIONS: [&str; 7] = [
    "Problem",
    "Proposed solution",
    "Expected value and KPIs",
    "Feasibility and effort",
    "Data and systems needed",
    "Risks",
    "First steps",
];

/// Every section once, in order, with text under it; `n` use cases with every subsection.
fn assert_complete(report: &str, n: usize) {
    let headings: Vec<&str> = report
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .collect();
    assert_eq!(headings, SECTIONS, "{report}");
    let use_cases: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("### Use case "))
        .collect();
    assert_eq!(use_cases.len(), n, "{use_cases:?}");
    for (k, heading) in use_cases.iter().enumerate() {
        assert!(
            heading.starts_with(&format!("### Use case {}: ", k + 1)),
            "{heading}"
        );
    }
    for sub in SUBSECTIONS {
        let count = report
            .lines()
            .filter(|l| *l == format!("#### {sub}"))
            .count();
        assert_eq!(count, n, "#### {sub}");
    }
    // No heading is followed directly by the next heading of the same or a higher level.
    let lines: Vec<&str> = report.lines().filter(|l| !l.trim().is_empty()).collect();
    for pair in lines.windows(2) {
        let level = |l: &str| l.chars().take_while(|c| *c == '#').count();
        let (a, b) = (level(pair[0]), level(pair[1]));
        assert!(!(a > 0 && b > 0 && b <= a), "empty section {:?}", pair[0]);
    }
}

/// The document's own sentence, quoted and cited to it, and the Sources entry with its path
/// and Drive id.
fn assert_grounded(report: &str) {
    let cited = format!("{DISTINCTIVE}\" [source: {DISTINCTIVE_FILE}]");
    assert!(report.contains(&cited), "{cited} not in:\n{report}");
    let sources = &report[report.find("## Sources").unwrap()..];
    let entry = sources
        .lines()
        .find(|l| l.contains(DISTINCTIVE_FILE))
        .expect("ops review in Sources");
    assert!(
        entry.contains(DISTINCTIVE_PATH) && entry.contains(DISTINCTIVE_DRIVE_ID),
        "{entry}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn seven_use_cases_complete_grounded_metered_and_never_paid_twice() {
    let fixture = Fixture::start(emulator::Config::new()).await;
    fixture.upstream(&robotics_docs()).await;

    let output = fixture.run(7, &[]).await;
    assert!(output.status.success(), "{}", logs(&output));
    let (marker, report) = fixture.final_report();
    assert_complete(&report, 7);
    assert_grounded(&report);
    assert!(report.contains("**Readiness score:** 42/100 · **Category:** Adopter"));
    assert!(report.contains("- **Company:** Acme Robotics"));
    assert!(report.contains(&format!("- **Run id:** {RUN_ID}")));
    assert!(report.contains("- **Model set:** gpt5 (content: gpt-5, style: gpt-5-nano)"));
    // Steps 2-5, seven deep dives, steps 7-9.
    assert_eq!(fixture.responses(), 4 + 7 + 3);

    // One Part A and one Part B, named for the company and the final report's <ts> (the time
    // the run started), and every title block dated by it.
    let dir = fixture.company();
    let ts = fixture.report_ts(&marker);
    assert_eq!(ts, shared::layout::timestamp(marker.started));
    let (part_a, part_b) = fixture.parts(&ts);
    let date = format!("- **Date:** {}-{}-{}\n", &ts[0..4], &ts[4..6], &ts[6..8]);
    for (name, text) in [
        ("report", &report),
        ("Part A", &part_a),
        ("Part B", &part_b),
    ] {
        assert!(text.contains(&date), "{name} lacks {date:?}:\n{text}");
        assert!(
            text.contains(&format!("- **Run id:** {RUN_ID}\n")),
            "{name}"
        );
    }
    assert!(part_a.contains("## AI readiness assessment"), "{part_a}");
    assert_eq!(
        part_b
            .lines()
            .filter(|l| l.starts_with("### Use case "))
            .count(),
        7
    );

    // Marker: the report, its details, tokens per step and cost.
    assert_eq!(marker.run_id, RUN_ID);
    assert_eq!(marker.details["use_cases_count"], 7);
    assert_eq!(marker.details["model_set"], "gpt5");
    let input_tokens = marker.details["input_tokens"].as_u64().unwrap();
    assert!(input_tokens > 0 && marker.details["output_tokens"].as_u64().unwrap() > 0);
    assert!(marker.details["cost_usd"].as_f64().unwrap() > 0.0);
    assert_eq!(marker.metrics["input_tokens"], input_tokens);
    for step in 2..=9 {
        assert!(
            marker.metrics[&format!("step_{step}_input_tokens")]
                .as_u64()
                .unwrap()
                > 0,
            "step {step}"
        );
        assert!(
            marker.metrics[&format!("step_{step}_output_tokens")]
                .as_u64()
                .unwrap()
                > 0,
            "step {step}"
        );
    }
    assert_eq!(marker.metrics["final_report_size"], report.len());
    assert!(marker.metrics["part_a_length"].as_u64().unwrap() > 0);
    assert_eq!(marker.metrics["use_cases_count"], 7);

    // Log: the ten steps, token metrics per step and the run's cost.
    let lines = log_lines(&output);
    for k in 1..=10 {
        let prefix = format!("[STEP {k}/10]");
        assert!(
            lines
                .iter()
                .any(|l| l["step"] == k && l["message"].as_str().unwrap().starts_with(&prefix)),
            "{prefix} missing"
        );
    }
    assert!(metric(&output, "step_6_input_tokens").unwrap() > 0.0);
    assert!(metric(&output, "step_9_output_tokens").unwrap() > 0.0);
    assert_eq!(
        metric(&output, "cost_usd"),
        marker.metrics["cost_usd"].as_f64()
    );
    assert_eq!(metric(&output, "input_tokens"), Some(input_tokens as f64));

    // Same inputs again: already done, no model call, nothing new written.
    let again = fixture.run(7, &[]).await;
    assert!(again.status.success(), "{}", logs(&again));
    assert!(logs(&again).contains("already done"), "{}", logs(&again));
    assert_eq!(fixture.responses(), 14);
    assert_eq!(
        std::fs::read_dir(dir.final_dir()).unwrap().count(),
        2,
        "report and marker only"
    );
    fixture.parts(&ts);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cheap_model_set_writes_with_its_own_models() {
    let fixture = Fixture::start(emulator::Config::new()).await;
    fixture.upstream(&robotics_docs()).await;
    let output = fixture.run(1, &["--model-set", "cheap"]).await;
    assert!(output.status.success(), "{}", logs(&output));
    let (marker, report) = fixture.final_report();
    assert_complete(&report, 1);
    assert_grounded(&report);
    assert_eq!(marker.details["use_cases_count"], 1);
    assert!(report.contains("- **Model set:** cheap (content: gpt-4.1-mini, style: gpt-4.1-nano)"));
}

#[tokio::test(flavor = "multi_thread")]
async fn without_documents_the_report_says_it_rests_on_the_profile_alone() {
    let fixture = Fixture::start(emulator::Config::new()).await;
    fixture.upstream(&[]).await;
    let output = fixture.run(3, &[]).await;
    assert!(output.status.success(), "{}", logs(&output));
    let (_, report) = fixture.final_report();
    assert_complete(&report, 3);
    let note = "No documents were provided for this run: this report is based on the company profile alone.";
    assert!(report.contains(&format!("> **Note:** {note}")), "{report}");
    let sources = &report[report.find("## Sources").unwrap()..];
    assert!(sources.contains(note), "{sources}");
    assert!(!report.contains("[source:"), "nothing to cite");
}

/// The Markdown documents of `examples/acme/drive` as `setup` would hand them over: a Google
/// Doc (`X.gdoc.md`) exported as `X.md`, every document under `data/` with its folder kept.
fn example_docs() -> Vec<Doc> {
    fn walk(root: &Path, dir: &Path, docs: &mut Vec<Doc>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, docs);
            } else if path.extension().is_some_and(|e| e == "md") {
                let relative = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace(".gdoc.md", ".md");
                docs.push(Doc {
                    drive_id: format!("1Example{:0>25}", docs.len()),
                    path: format!("data/{relative}"),
                    text: std::fs::read_to_string(&path).unwrap(),
                });
            }
        }
    }
    let root = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/acme/drive"
    ));
    let mut docs = Vec::new();
    walk(root, root, &mut docs);
    docs.sort_by(|a, b| a.path.cmp(&b.path));
    docs
}

/// A sentence that only the example's CFO interview contains, and that interview's file name.
const ACME_SENTENCE: &str = "Revenue 2025 was EUR 148 million with an EBIT margin of 2.9 %, below the 4 % the shareholders expect.";
const ACME_FILE: &str = "2026-01-16 CFO - Miriam Okafor.md";

/// The example's inputs file with `use_cases` use cases: a complete report whose quotes are
/// sentences of the documents they cite.
async fn example_report(use_cases: usize) {
    let docs = example_docs();
    assert!(docs.len() >= 3, "{docs:?}");
    let fixture = Fixture::start_for(emulator::Config::new(), "acme_logistics_gmbh").await;
    fixture.upstream(&docs).await;
    let inputs = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/acme/inputs.yaml"
    );
    let count = use_cases.to_string();
    let output = fixture
        .bare_command(&["--inputs-file", inputs, "--use-cases-count", &count])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", logs(&output));
    let (marker, report) = fixture.final_report();
    assert_eq!(marker.details["use_cases_count"], use_cases);
    assert_complete(&report, use_cases);
    assert!(report.contains("- **Company:** Acme Logistics GmbH"));

    // Every quote line is a sentence of the document it cites, word for word.
    let normalise = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut quotes = 0;
    for line in report.lines() {
        let line = line.strip_prefix("> ").unwrap_or(line);
        let Some((quote, cited)) = line
            .strip_prefix('"')
            .and_then(|l| l.rsplit_once("\" [source: "))
        else {
            continue;
        };
        let filename = cited.strip_suffix(']').unwrap();
        let doc = docs
            .iter()
            .find(|d| d.path.ends_with(&format!("/{filename}")))
            .expect(filename);
        assert!(
            normalise(&doc.text).contains(quote),
            "{quote:?} is not in {}",
            doc.path
        );
        let sources = &report[report.find("## Sources").unwrap()..];
        assert!(
            sources.contains(&format!("`{}` (Drive id `{}`)", doc.path, doc.drive_id)),
            "{sources}"
        );
        quotes += 1;
    }
    assert!(quotes >= use_cases, "{quotes} quotes in:\n{report}");

    // A fact only the CFO interview states reaches the report, quoted and cited to that file,
    // which Sources lists with its path and Drive id.
    let cfo = docs
        .iter()
        .find(|d| d.path.ends_with(&format!("/{ACME_FILE}")))
        .expect(ACME_FILE);
    assert!(
        normalise(&cfo.text).contains(ACME_SENTENCE),
        "{} no longer says {ACME_SENTENCE:?}",
        cfo.path
    );
    let cited = format!("\"{ACME_SENTENCE}\" [source: {ACME_FILE}]");
    assert!(report.contains(&cited), "{cited} not in:\n{report}");
    assert!(
        report.contains(&format!("`{}` (Drive id `{}`)", cfo.path, cfo.drive_id)),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn example_company_with_one_use_case() {
    example_report(1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn example_company_with_seven_use_cases() {
    example_report(7).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn example_company_with_twenty_use_cases() {
    example_report(20).await;
}

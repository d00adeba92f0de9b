//! The example company (`examples/acme/`) through `setup` as `make demo` runs it: its inputs
//! file, its Drive folder seeded into the emulator, and the traceable facts of its README found
//! in `data/`, where the later jobs index them.

mod common;

use std::path::PathBuf;

use common::{World, assert_ok};

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/acme")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_company_is_set_up_with_every_fact_traceable() {
    let world = World::start(Some(&example().join("drive"))).await;
    let inputs = example().join("inputs.yaml").display().to_string();
    let output = world.setup(&["--inputs-file", &inputs], &world.env()).await;
    assert_ok(&output);
    let marker = world.marker();
    assert_eq!(marker.slug, "acme_logistics_gmbh");
    let details: shared::records::DataDetails =
        serde_json::from_value(marker.details.clone()).unwrap();
    assert!(details.skipped.is_empty(), "{:?}", details.skipped);
    let submission: serde_json::Value =
        serde_json::from_slice(&std::fs::read(world.company().join(&details.submission)).unwrap())
            .unwrap();
    assert_eq!(submission["resolved"]["use_cases_count"], 7);
    assert_eq!(submission["source"]["name"], "drive");

    let text = |relative: &str| -> String {
        let bytes = std::fs::read(world.company().join("data").join(relative)).unwrap();
        emulator::extract::extract_text(relative, &bytes).unwrap()
    };
    let facts = [
        (
            "Customs Backlog Review.md",
            "Dispatchers re-key 1,400 customs declarations a month by hand",
        ),
        (
            "Customs Backlog Review.md",
            "4.2 % of declarations are returned by customs",
        ),
        (
            "Interviews/2026-01-14 Head of Dispatch - Jonas Albrecht.md",
            "planners spend 11 hours a week matching carrier invoices to orders",
        ),
        (
            "Interviews/2026-01-14 Head of Dispatch - Jonas Albrecht.md",
            "We still print the daily tour plan for 85 drivers",
        ),
        (
            "Interviews/2026-01-16 CFO - Miriam Okafor.md",
            "Late-delivery penalties cost us EUR 620,000 in 2025",
        ),
        (
            "Interviews/2026-01-16 CFO - Miriam Okafor.md",
            "Finance closes the month on day 9",
        ),
        (
            "Interviews/2026-01-21 IT Lead - Piotr Nowak.md",
            "TransLog 4, an on-premise system from 2009 with no API",
        ),
        (
            "Strategy Memo 2026 - Project Rheinbruecke.docx",
            "cut quote turnaround from 26 hours to 4 hours by the end of 2027",
        ),
        (
            "Strategy Memo 2026 - Project Rheinbruecke.docx",
            "a budget of EUR 1.8 million for automation in 2026",
        ),
        (
            "Process Metrics Q4 2025.xlsx.md",
            "| Oct 2025 | 4310 | 71 | 17 | 26 |",
        ),
        (
            "Process Metrics Q4 2025.xlsx.md",
            "| Duisburg | 38 | 14 | 81 |",
        ),
        (
            "process_metrics_lanes_q4_2025.csv.md",
            "| HAM-MIL (Hamburg–Milan) | 1240 | 88.4 | 27.9 | 212 |",
        ),
        (
            "Fleet KPIs.md",
            "| Empty-run share of kilometres | 23.5% | 15% |",
        ),
    ];
    for (file, fact) in facts {
        assert!(
            text(file).contains(fact),
            "{fact:?} not found in data/{file}"
        );
    }
    let readme = std::fs::read_to_string(example().join("README.md")).unwrap();
    for fact in [
        "1,400 customs declarations",
        "EUR 620,000",
        "26 hours to 4 hours",
        "23.5%",
        "212 disputed",
    ] {
        assert!(readme.contains(fact), "README.md must list {fact:?}");
    }
}

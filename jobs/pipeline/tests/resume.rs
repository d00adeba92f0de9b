//! Concurrency and resume: the deep dives overlap up to the bound (read from the emulator's
//! request log, not the clock), a run killed during step 6 resumes without asking again for
//! anything that had finished, and an edited template re-runs only its step and what follows.

mod common;

use std::time::Duration;

use common::*;
use emulator::faults::{FaultSpec, Service};

/// The most requests in flight at once among `entries` (start/end in the emulator's clock).
fn max_overlap(entries: &[emulator::requests::RequestEntry]) -> usize {
    let mut edges: Vec<(u64, i32)> = entries
        .iter()
        .flat_map(|e| [(e.start_us, 1), (e.end_us, -1)])
        .collect();
    edges.sort();
    let (mut current, mut peak) = (0, 0);
    for (_, delta) in edges {
        current += delta;
        peak = peak.max(current);
    }
    peak as usize
}

fn responses_log(fixture: &Fixture) -> Vec<emulator::requests::RequestEntry> {
    let mut entries: Vec<_> = fixture
        .emulator
        .requests()
        .entries()
        .into_iter()
        .filter(|e| e.method == RESPONSES.0 && e.route == RESPONSES.1)
        .collect();
    entries.sort_by_key(|e| e.start_us);
    entries
}

#[tokio::test(flavor = "multi_thread")]
async fn deep_dives_overlap_up_to_the_bound_and_no_further() {
    let fixture = Fixture::start(emulator::Config::new()).await;
    fixture.upstream(&robotics_docs()).await;
    fixture.emulator.faults().set(
        Service::OpenAi,
        FaultSpec::latency(Duration::from_millis(150), Duration::ZERO),
    );

    let output = fixture.run(7, &["--max-concurrent-calls", "3"]).await;
    assert!(output.status.success(), "{}", logs(&output));
    let entries = responses_log(&fixture);
    assert_eq!(entries.len(), 4 + 7 + 3);
    // Steps 2 to 5 run one after the other, then the seven deep dives, then steps 7 to 9.
    assert_eq!(max_overlap(&entries[..4]), 1);
    assert_eq!(max_overlap(&entries[4..11]), 3, "{:?}", &entries[4..11]);
    assert_eq!(max_overlap(&entries[11..]), 1);
    assert!(entries[11].start_us >= entries[4..11].iter().map(|e| e.end_us).max().unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_during_the_deep_dives_resumes_without_paying_twice() {
    let fixture = Fixture::start(emulator::Config::new()).await;
    fixture.upstream(&robotics_docs()).await;
    let latency = Duration::from_millis(300);
    fixture
        .emulator
        .faults()
        .set(Service::OpenAi, FaultSpec::latency(latency, Duration::ZERO));

    let mut child = fixture
        .command(7, &["--max-concurrent-calls", "2"])
        .spawn()
        .unwrap();
    let deep_dives = |fixture: &Fixture| {
        fixture
            .checkpoints()
            .keys()
            .filter(|k| k.starts_with("deep_dive_"))
            .count()
    };
    let started = std::time::Instant::now();
    while deep_dives(&fixture) < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no deep dive finished"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.start_kill().unwrap();
    let status = child.wait().await.unwrap();
    assert!(!status.success());
    fixture.emulator.faults().clear(Service::OpenAi);
    // Requests in flight at the kill still reach the emulator's log: wait until it is quiet.
    tokio::time::sleep(latency * 2).await;

    let kept = fixture.checkpoints();
    let finished_dives = deep_dives(&fixture);
    assert!((2..7).contains(&finished_dives), "{:?}", kept.keys());
    for step in ["s02_profile", "s03_evidence", "s04_part_a", "s05_use_cases"] {
        assert!(kept.contains_key(&format!("{step}.json")), "{step}");
    }
    assert!(!fixture.company().final_dir().exists());
    // Part A was written in step 4, under the run's <ts>; Part B not yet.
    let part_a = fixture.part_files("part_a");
    assert_eq!(part_a.len(), 1, "{part_a:?}");
    let ts = part_a[0]
        .strip_prefix(&format!("report_draft_{SLUG}_"))
        .and_then(|n| n.strip_suffix(".md"))
        .unwrap_or_else(|| panic!("{part_a:?}"))
        .to_string();
    assert!(!fixture.company().join("part_b").exists());

    let before = fixture.responses();
    let output = fixture.run(7, &["--max-concurrent-calls", "2"]).await;
    assert!(output.status.success(), "{}", logs(&output));
    // Only the unfinished deep dives and steps 7 to 9 asked the model.
    assert_eq!(fixture.responses() - before, (7 - finished_dives) + 3);
    let after = fixture.checkpoints();
    for (name, bytes) in &kept {
        assert!(after.get(name) == Some(bytes), "{name} was rewritten");
    }
    let (marker, report) = fixture.final_report();
    assert_eq!(
        report
            .lines()
            .filter(|l| l.starts_with("### Use case "))
            .count(),
        7
    );
    // The resumed run keeps the killed run's <ts>: one Part A (rewritten in place), one Part B
    // and the final report, all under the same name.
    assert_eq!(fixture.report_ts(&marker), ts);
    fixture.parts(&ts);
    assert!(
        metric(&output, "model_calls_this_invocation") == Some(((7 - finished_dives) + 3) as f64)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edited_template_reruns_its_step_and_the_later_steps_whose_inputs_change() {
    let fixture = Fixture::start(emulator::Config::new()).await;
    fixture.upstream(&robotics_docs()).await;
    let output = fixture.run(3, &[]).await;
    assert!(output.status.success(), "{}", logs(&output));
    let first = fixture.checkpoints();
    assert_eq!(first.len(), 4 + 3 + 3);
    let (marker, _) = fixture.final_report();
    let ts = fixture.report_ts(&marker);
    let (_, first_part_b) = fixture.parts(&ts);

    // Part B's template asks for attention to the finance notes' subjects: the answer changes.
    let prompts = fixture.tmp.path().join("prompts");
    std::fs::create_dir_all(&prompts).unwrap();
    let template = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/prompts/s07_part_b.j2"
    ))
    .unwrap();
    std::fs::write(
        prompts.join("s07_part_b.j2"),
        format!(
            "{template}\nGive special weight to supplier invoices typed into the ledger manually, month-end \
             closing, late payment penalties, the controller's private spreadsheet, bank statements and \
             budget owners' reports.\n"
        ),
    )
    .unwrap();
    let before = fixture.responses();
    let output = fixture
        .run(3, &["--prompts-dir", prompts.to_str().unwrap()])
        .await;
    assert!(output.status.success(), "{}", logs(&output));
    let second = fixture.checkpoints();

    let field =
        |checkpoints: &std::collections::BTreeMap<String, Vec<u8>>, name: &str, key: &str| {
            serde_json::from_slice::<serde_json::Value>(&checkpoints[&format!("{name}.json")])
                .unwrap()[key]
                .clone()
        };
    let unchanged = [
        "s02_profile",
        "s03_evidence",
        "s04_part_a",
        "s05_use_cases",
        "deep_dive_1",
        "deep_dive_2",
        "deep_dive_3",
    ];
    for name in unchanged {
        let file = format!("{name}.json");
        assert!(first[&file] == second[&file], "{name} ran again");
    }
    assert_ne!(
        field(&first, "s07_part_b", "fingerprint"),
        field(&second, "s07_part_b", "fingerprint")
    );
    assert_ne!(
        field(&first, "s07_part_b", "result"),
        field(&second, "s07_part_b", "result"),
        "Part B is written anew"
    );
    // Consolidation reads Part B, so it runs again; here its answer comes out the same, so the
    // style pass, which reads only that answer, keeps its checkpoint: a step runs again when
    // what it consumes changed, never merely because an earlier step ran.
    assert_ne!(
        field(&first, "s08_consolidate", "fingerprint"),
        field(&second, "s08_consolidate", "fingerprint")
    );
    assert_eq!(
        field(&first, "s08_consolidate", "result"),
        field(&second, "s08_consolidate", "result")
    );
    assert!(
        first["s09_style.json"] == second["s09_style.json"],
        "style ran again"
    );
    assert_eq!(fixture.responses() - before, 2, "steps 7 and 8 only");

    // Still one report, one Part A and one Part B for the run: Part B replaced in place.
    let (marker, _) = fixture.final_report();
    assert_eq!(fixture.report_ts(&marker), ts);
    let (_, second_part_b) = fixture.parts(&ts);
    assert_ne!(first_part_b, second_part_b);

    // The same edited template once more: the report for these inputs exists.
    let again = fixture
        .run(3, &["--prompts-dir", prompts.to_str().unwrap()])
        .await;
    assert!(logs(&again).contains("already done"), "{}", logs(&again));
    assert_eq!(fixture.responses() - before, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_template_change_alone_reruns_its_step_and_no_earlier_one() {
    let fixture = Fixture::start(emulator::Config::new()).await;
    fixture.upstream(&robotics_docs()).await;
    let output = fixture.run(2, &[]).await;
    assert!(output.status.success(), "{}", logs(&output));
    let first = fixture.checkpoints();

    // A comment changes the template's hash but not what the model is asked.
    let prompts = fixture.tmp.path().join("prompts");
    std::fs::create_dir_all(&prompts).unwrap();
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/prompts/s09_style.j2"))
            .unwrap();
    std::fs::write(
        prompts.join("s09_style.j2"),
        format!("{{# reviewed #}}{template}"),
    )
    .unwrap();
    let before = fixture.responses();
    let output = fixture
        .run(2, &["--prompts-dir", prompts.to_str().unwrap()])
        .await;
    assert!(output.status.success(), "{}", logs(&output));
    assert_eq!(fixture.responses() - before, 1, "the style pass only");
    let second = fixture.checkpoints();
    for (name, bytes) in &first {
        if name != "s09_style.json" {
            assert!(second.get(name) == Some(bytes), "{name} ran again");
        }
    }
    assert!(
        logs(&output).contains("final report written"),
        "{}",
        logs(&output)
    );
}

//! What goes wrong and how the job answers: a model that cites a document that does not exist,
//! responses cut off by their output budget, missing upstream stages, and the dry run.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_fabricated_citation_fails_step_nine_naming_it() {
    let fixture = Fixture::start(emulator::Config::new().fabricate_citations(true)).await;
    fixture.upstream(&robotics_docs()).await;
    let output = fixture.run(2, &[]).await;
    assert_eq!(output.status.code(), Some(4), "{}", logs(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("step 9"), "{stderr}");
    assert!(
        stderr.contains("name no document listed in data/.ready"),
        "{stderr}"
    );
    assert!(
        stderr.contains("\"fabricated-source.pdf\" (in "),
        "{stderr}"
    );
    // Steps 2-8 were paid for and kept; the rejected style pass was not checkpointed, and no
    // report or marker exists.
    let checkpoints = fixture.checkpoints();
    assert!(checkpoints.contains_key("s08_consolidate.json"));
    assert!(!checkpoints.contains_key("s09_style.json"));
    assert!(!fixture.company().final_dir().exists());

    // A re-run resumes at step 9 only: one answer and its corrective retry.
    let before = fixture.responses();
    let again = fixture.run(2, &[]).await;
    assert_eq!(again.status.code(), Some(4), "{}", logs(&again));
    assert_eq!(fixture.responses() - before, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn incomplete_responses_are_asked_again_with_a_larger_budget() {
    let fixture = Fixture::start(emulator::Config::new()).await;
    fixture.upstream(&robotics_docs()).await;
    let output = fixture.run(2, &["--max-output-tokens", "64"]).await;
    assert!(output.status.success(), "{}", logs(&output));
    let retried: Vec<_> = log_lines(&output)
        .into_iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.contains("was cut off at"))
        })
        .collect();
    assert!(!retried.is_empty(), "{}", logs(&output));
    assert!(
        retried
            .iter()
            .any(|l| l["max_output_tokens"] == 64 && l["next_max_output_tokens"] == 128)
    );
    // Every cut-off answer was asked again: more calls than the 4 + 2 + 3 answers used.
    assert_eq!(fixture.responses(), 9 + retried.len());

    let (marker, report) = fixture.final_report();
    assert_eq!(
        report
            .lines()
            .filter(|l| l.starts_with("### Use case "))
            .count(),
        2
    );
    assert!(report.contains(&format!("{DISTINCTIVE}\" [source: {DISTINCTIVE_FILE}]")));
    // The tokens of the discarded attempts were paid for and are counted.
    assert_eq!(marker.metrics["model_calls"], fixture.responses());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_response_still_cut_off_at_the_cap_fails_the_step() {
    let fixture = Fixture::start(emulator::Config::new()).await;
    fixture.upstream(&robotics_docs()).await;
    let config = fixture.tmp.path().join("models.yaml");
    let default =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/models.yaml"))
            .unwrap();
    std::fs::write(
        &config,
        default.replace("max_output_tokens_cap: 128000", "max_output_tokens_cap: 32"),
    )
    .unwrap();
    let output = fixture
        .run(
            2,
            &[
                "--max-output-tokens",
                "16",
                "--models-config",
                config.to_str().unwrap(),
            ],
        )
        .await;
    assert_eq!(output.status.code(), Some(4), "{}", logs(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("step 2")
            && stderr.contains("incomplete")
            && stderr.contains("at 32 output tokens"),
        "{stderr}"
    );
    assert_eq!(fixture.responses(), 2, "16, then 32 tokens");
    assert!(
        fixture.checkpoints().is_empty(),
        "a truncated answer is never kept"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_upstream_markers_name_the_path_and_the_job_to_run() {
    let fixture = Fixture::start(emulator::Config::new()).await;
    let output = fixture.run(3, &[]).await;
    assert_eq!(output.status.code(), Some(3), "{}", logs(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let data_marker = fixture.company().marker(shared::layout::Stage::Data, "");
    assert!(
        stderr.contains(&data_marker.display().to_string()) && stderr.contains("`setup`"),
        "{stderr}"
    );

    fixture.write_data_stage(&robotics_docs());
    let output = fixture.run(3, &[]).await;
    assert_eq!(output.status.code(), Some(3), "{}", logs(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let vector_marker = fixture.company().marker(shared::layout::Stage::Vectors, "");
    assert!(
        stderr.contains(&vector_marker.display().to_string()) && stderr.contains("`vectorize`"),
        "{stderr}"
    );

    // A tampered document is refused as well.
    fixture.write_vector_stage(&robotics_docs()).await;
    std::fs::write(fixture.company().join(DISTINCTIVE_PATH), "changed").unwrap();
    let output = fixture.run(3, &[]).await;
    assert_eq!(output.status.code(), Some(3), "{}", logs(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains(DISTINCTIVE_PATH));
    assert_eq!(fixture.responses(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_configuration_is_refused_before_any_model_call() {
    let fixture = Fixture::start(emulator::Config::new()).await;
    fixture.upstream(&robotics_docs()).await;
    let prompts = fixture.tmp.path().join("prompts");
    std::fs::create_dir_all(&prompts).unwrap();
    std::fs::write(prompts.join("s02_profile.j2"), "{{ company.nmae }}").unwrap();
    let output = fixture
        .run(3, &["--prompts-dir", prompts.to_str().unwrap()])
        .await;
    assert_eq!(output.status.code(), Some(2), "{}", logs(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("s02_profile.j2"));

    let output = fixture
        .command(3, &[])
        .env_remove("OPENAI_API_KEY")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", logs(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("OPENAI_API_KEY"));
    assert_eq!(fixture.responses(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_prints_the_plan_and_writes_nothing() {
    let fixture = Fixture::start(emulator::Config::new()).await;
    fixture.upstream(&robotics_docs()).await;
    let entries = || {
        let mut names: Vec<_> = std::fs::read_dir(fixture.company().path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = entries();
    let output = fixture.run(5, &["--dry-run"]).await;
    assert!(output.status.success(), "{}", logs(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("pipeline plan (dry run"), "{stdout}");
    assert!(
        stdout.contains("documents: 4 indexed in vector store vs_"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[6/10] deep dives: 5 calls, 0 checkpoint(s) present"),
        "{stdout}"
    );
    assert_eq!(before, entries());
    assert_eq!(fixture.responses(), 0);
}

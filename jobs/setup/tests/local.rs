//! `setup` without Drive: documents from `--source-dir` (same preprocessing), no source at all
//! (a profile-only run), and `--dry-run` (a plan, nothing written).

mod common;

use common::{World, assert_ok, write_workbook};
use shared::records::{DataDetails, DocumentOrigin};

#[tokio::test(flavor = "multi_thread")]
async fn a_local_folder_is_preprocessed_like_drive() {
    let world = World::start(None).await;
    let docs = world.tmp.path().join("docs");
    std::fs::create_dir_all(docs.join("Interviews")).unwrap();
    std::fs::write(
        docs.join("Interviews/cfo.md"),
        "Penalties cost EUR 620,000.\n",
    )
    .unwrap();
    std::fs::write(docs.join("lanes.tsv"), "Lane\tShipments\nHAM-MIL\t1240\n").unwrap();
    std::fs::write(docs.join("archive.zip"), "PK").unwrap();
    std::fs::write(docs.join(".DS_Store"), "junk").unwrap();
    write_workbook(
        &docs.join("metrics.xlsx"),
        &[("Orders", 2), ("Customs", 2), ("Warehouse", 1)],
    );

    let source = docs.display().to_string();
    let output = world
        .setup(&["--source-dir", &source, "--run-id", "local-1"], &[])
        .await;
    assert_ok(&output);
    let marker = world.marker();
    assert_eq!(marker.run_id, "local-1");
    let paths: Vec<&str> = marker.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        &paths[..3],
        [
            "data/Interviews/cfo.md",
            "data/lanes.tsv.md",
            "data/metrics.xlsx.md"
        ],
        "{paths:?}"
    );
    let data = world.company().data_dir();
    let tsv = std::fs::read_to_string(data.join("lanes.tsv.md")).unwrap();
    assert!(
        tsv.contains("| Lane | Shipments |") && tsv.contains("| HAM-MIL | 1240 |"),
        "{tsv}"
    );
    let xlsx = std::fs::read_to_string(data.join("metrics.xlsx.md")).unwrap();
    for sheet in ["Orders", "Customs", "Warehouse"] {
        assert!(xlsx.contains(&format!("## Sheet: {sheet}")), "{xlsx}");
    }
    let origin: DocumentOrigin = serde_json::from_value(marker.files[0].origin.clone()).unwrap();
    assert_eq!(
        (origin.source.as_str(), origin.original_path.as_str()),
        ("local", "Interviews/cfo.md")
    );
    let details: DataDetails = serde_json::from_value(marker.details.clone()).unwrap();
    assert_eq!(details.source, "local");
    assert_eq!(details.skipped.len(), 1);
    assert_eq!(details.skipped[0].original_path, "archive.zip");

    let submission: serde_json::Value =
        serde_json::from_slice(&std::fs::read(world.company().join(&details.submission)).unwrap())
            .unwrap();
    assert_eq!(submission["run_id"], "local-1");
    assert_eq!(submission["resolved"]["company_slug"], common::SLUG);
    assert_eq!(submission["received"]["company_name"]["source"], "flag");
    assert_eq!(submission["source"]["kind"], "local");

    // A document removed at the source disappears from data/ on the next run.
    std::fs::remove_file(docs.join("lanes.tsv")).unwrap();
    assert_ok(
        &world
            .setup(&["--source-dir", &source, "--run-id", "local-2"], &[])
            .await,
    );
    assert!(!data.join("lanes.tsv.md").exists());
    assert_eq!(world.marker().run_id, "local-2");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_source_is_a_profile_only_run_with_a_warning() {
    let world = World::start(None).await;
    let output = world.setup(&["--use-cases-count", "5"], &[]).await;
    assert_ok(&output);
    assert!(String::from_utf8_lossy(&output.stdout).contains("no document source"));
    let marker = world.marker();
    assert_eq!(marker.files.len(), 1, "only the submission file");
    let details: DataDetails = serde_json::from_value(marker.details).unwrap();
    assert_eq!(details.source, "none");
    assert_eq!(marker.files[0].path, details.submission);
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_prints_the_plan_and_writes_nothing() {
    let world = World::start(None).await;
    let output = world
        .setup(
            &[
                "--dry-run",
                "--google-drive-link",
                "1AbCdEfGhIjKlMnOpQrStUvWxYz012345",
            ],
            &world.env(),
        )
        .await;
    assert_ok(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("acme_logistics_gmbh")
            && stdout.contains("1AbCdEfGhIjKlMnOpQrStUvWxYz012345"),
        "{stdout}"
    );
    assert!(stdout.contains("service account"), "{stdout}");
    assert!(!world.outputs().exists(), "a dry run writes nothing");
    assert!(
        world.emulator.requests().entries().is_empty(),
        "a dry run touches no network"
    );

    let (code, stderr) = common::failure(
        &world
            .setup(
                &[
                    "--dry-run",
                    "--google-drive-link",
                    "1AbCdEfGhIjKlMnOpQrStUvWxYz012345",
                ],
                &[],
            )
            .await,
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("GDRIVE_CREDENTIALS_PATH"));
}

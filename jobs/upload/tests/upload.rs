//! The `upload` binary against the emulated Google Drive, run as a user runs it: a final stage
//! on disk (written with the shared contract, as `pipeline` writes it), flags and environment
//! variables, then the exit code, the one-line error, the receipt and what Drive holds.

mod common;

use std::path::{Path, PathBuf};

use common::{Run, children, requests_matching};
use emulator::{Config, Emulator};
use serde_json::{Value, json};
use shared::layout::{CompanyDir, Stage};
use shared::markers::{FileRecord, Marker, fingerprint, sha256_hex};
use shared::records::{FinalDetails, UploadReceipt};

const COMPANY: &str = "Acme Robotics";
const SLUG: &str = "acme_robotics";
const RUN_ID: &str = "run-upload-1";
const REPORT: &str = "# Acme Robotics: AI agent-readiness\n\n## Current state\n\nOrders wait **4.2 days** \
                      on average before picking [source: ops_metrics.md].\n\n| KPI | Value |\n|---|---|\n| Lead time | 4.2 days |\n";

/// One test's world: an emulator, a final-report folder, a service account key, an outputs tree.
struct World {
    emulator: Emulator,
    folder_id: String,
    key_path: PathBuf,
    outputs: PathBuf,
    _tmp: tempfile::TempDir,
}

impl World {
    async fn new() -> World {
        let emulator = Emulator::start(Config::new()).await.unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let key_path = tmp.path().join("sa.json");
        emulator
            .google()
            .write_service_account_key(&key_path)
            .unwrap();
        let folder_id = emulator.google().create_folder("Final reports", None);
        let outputs = tmp.path().join("outputs");
        World {
            emulator,
            folder_id,
            key_path,
            outputs,
            _tmp: tmp,
        }
    }

    fn company_dir(&self) -> CompanyDir {
        CompanyDir::new(&self.outputs, SLUG)
    }

    /// Writes a final report and its marker as `pipeline` does; returns the report's path.
    fn write_final_stage(&self, ts: &str, report: &str) -> PathBuf {
        let dir = self.company_dir();
        let path = dir.final_report(ts);
        shared::atomic::write_atomic(&path, report.as_bytes()).unwrap();
        let relative = dir.relative(&path).unwrap();
        let details = FinalDetails {
            report: relative.clone(),
            model_set: "gpt5".into(),
            use_cases_count: 3,
            input_tokens: 12_000,
            output_tokens: 3_400,
            cost_usd: 0.0421,
        };
        let now = chrono::Utc::now();
        let marker = Marker {
            stage: Stage::Final.as_str().into(),
            run_id: RUN_ID.into(),
            slug: SLUG.into(),
            job: "pipeline".into(),
            job_version: "test".into(),
            started: now,
            finished: now,
            fingerprint: fingerprint(&json!({ "report": report })),
            files: vec![FileRecord::of(&dir, &relative).unwrap()],
            metrics: Default::default(),
            details: serde_json::to_value(details).unwrap(),
        };
        marker.write(&dir.marker(Stage::Final, ts)).unwrap();
        path
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "GDRIVE_CREDENTIALS_PATH",
                self.key_path.display().to_string(),
            ),
            ("GOOGLE_API_BASE_URL", self.emulator.url()),
            (
                "GDRIVE_FINAL_REPORT_FOLDER",
                format!(
                    "https://drive.google.com/drive/folders/{}?usp=sharing",
                    self.folder_id
                ),
            ),
        ]
    }

    async fn upload(&self, extra: &[&str]) -> Run {
        self.upload_with_env(extra, &self.env()).await
    }

    async fn upload_with_env(&self, extra: &[&str], env: &[(&str, String)]) -> Run {
        let outputs = self.outputs.display().to_string();
        let mut args = vec!["--company-name", COMPANY, "--outputs", &outputs];
        args.extend_from_slice(extra);
        common::run(Path::new(env!("CARGO_BIN_EXE_upload")), &args, env).await
    }

    fn receipt_path(&self) -> PathBuf {
        self.company_dir().upload_receipt(RUN_ID)
    }

    fn receipt(&self) -> UploadReceipt {
        serde_json::from_slice(&std::fs::read(self.receipt_path()).unwrap()).unwrap()
    }

    fn folder_files(&self) -> Vec<Value> {
        children(&self.emulator, &self.folder_id)
    }

    /// Requests that start or carry an upload (any upload type).
    fn upload_requests(&self) -> usize {
        requests_matching(&self.emulator, "upload/drive/v3/files")
    }
}

/// Exactly one resumable session was opened for a new file and completed by exactly one media
/// request, and nothing else reached an upload route.
fn assert_resumable_create(world: &World) {
    let counts = world.emulator.requests().counts();
    assert_eq!(
        counts.get("POST /resumable/upload/drive/v3/files"),
        Some(&1),
        "{counts:#?}"
    );
    assert_eq!(
        counts.get("POST /upload/drive/v3/files"),
        Some(&1),
        "{counts:#?}"
    );
    assert_eq!(world.upload_requests(), 2, "{counts:#?}");
    assert_eq!(
        world.emulator.google().dump()["uploads_in_progress"],
        0,
        "the session was completed"
    );
}

/// The one-line error of a failed run: stderr holds that line and nothing else.
fn only_error_line(run: &Run) -> &str {
    assert_eq!(run.stderr.lines().count(), 1, "one line: {run:?}");
    run.error_line()
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_the_report_with_its_checksum_and_writes_the_receipt() {
    let world = World::new().await;
    let report_path = world.write_final_stage("20260102_030405", REPORT);

    let run = world.upload(&[]).await;
    assert_eq!(run.code, 0, "{run:?}");

    let files = world.folder_files();
    assert_eq!(files.len(), 1, "{files:#?}");
    let file = &files[0];
    let id = file["id"].as_str().unwrap();
    assert_eq!(
        file["name"],
        "FINAL_REPORT_acme_robotics_20260102_030405.md"
    );
    assert_eq!(
        world.emulator.google().file_bytes(id).unwrap(),
        std::fs::read(&report_path).unwrap()
    );
    let sha256 = sha256_hex(REPORT.as_bytes());
    assert_eq!(
        file["appProperties"],
        json!({ "run_id": RUN_ID, "sha256": sha256, "slug": SLUG })
    );

    // A resumable upload: one request opened the session, one more carried the media to the
    // session's URL and completed it. A multipart or simple upload would be another
    // `POST /upload/drive/v3/files` and open no session.
    assert_resumable_create(&world);

    let receipt = world.receipt();
    assert_eq!(receipt.file_id, id);
    assert_eq!(receipt.folder_id, world.folder_id);
    assert_eq!(receipt.run_id, RUN_ID);
    assert_eq!(receipt.slug, SLUG);
    assert_eq!(
        receipt.report,
        "final/FINAL_REPORT_acme_robotics_20260102_030405.md"
    );
    assert_eq!(
        receipt.name,
        "FINAL_REPORT_acme_robotics_20260102_030405.md"
    );
    assert_eq!(receipt.bytes, REPORT.len() as u64);
    assert_eq!(receipt.sha256, sha256);
    assert!(
        receipt.web_view_link.contains(id),
        "{}",
        receipt.web_view_link
    );
    assert!(
        run.stdout.contains("\"metric_name\":\"files_uploaded\""),
        "{run:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_uploads_nothing_and_creates_no_second_file() {
    let world = World::new().await;
    world.write_final_stage("20260102_030405", REPORT);
    assert_eq!(world.upload(&[]).await.code, 0);
    let first = world.receipt();
    let uploads = world.upload_requests();
    let searches = world.emulator.requests().count("GET", "/drive/v3/files");

    // With the receipt: one metadata look-up, then "already done".
    let rerun = world.upload(&[]).await;
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert!(rerun.stdout.contains("already done"), "{rerun:?}");
    assert_eq!(world.upload_requests(), uploads);
    assert_eq!(
        world.emulator.requests().count("GET", "/drive/v3/files"),
        searches,
        "no search needed"
    );

    // Without the receipt (e.g. a fresh outputs volume): found by its appProperties, not re-sent.
    std::fs::remove_file(world.receipt_path()).unwrap();
    let rerun = world.upload(&[]).await;
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert_eq!(world.upload_requests(), uploads);
    assert_eq!(world.folder_files().len(), 1);
    assert_eq!(world.receipt().file_id, first.file_id);

    // --force sends the report again, into the same file.
    let forced = world.upload(&["--force"]).await;
    assert_eq!(forced.code, 0, "{forced:?}");
    assert!(world.upload_requests() > uploads);
    assert_eq!(world.folder_files().len(), 1);
    assert_eq!(world.receipt().file_id, first.file_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_report_updates_the_same_drive_file() {
    let world = World::new().await;
    world.write_final_stage("20260102_030405", REPORT);
    assert_eq!(world.upload(&[]).await.code, 0);
    let first = world.receipt();

    let changed = format!("{REPORT}\n## Addendum\n\nA second look at the warehouse.\n");
    world.write_final_stage("20260103_030405", &changed);
    let run = world.upload(&[]).await;
    assert_eq!(run.code, 0, "{run:?}");

    let files = world.folder_files();
    assert_eq!(files.len(), 1, "no duplicate: {files:#?}");
    assert_eq!(files[0]["id"], first.file_id.as_str());
    assert_eq!(
        files[0]["name"],
        "FINAL_REPORT_acme_robotics_20260103_030405.md"
    );
    assert_eq!(
        files[0]["appProperties"]["sha256"],
        sha256_hex(changed.as_bytes()).as_str()
    );
    assert_eq!(
        world.emulator.google().file_bytes(&first.file_id).unwrap(),
        changed.as_bytes()
    );
    let receipt = world.receipt();
    assert_eq!(receipt.file_id, first.file_id);
    assert_eq!(receipt.sha256, sha256_hex(changed.as_bytes()));
    let counts = world.emulator.requests().counts();
    // The new content went to the existing file's resumable session, not to a new file.
    assert_eq!(
        counts.get("POST /upload/drive/v3/files/{id}"),
        Some(&1),
        "{counts:#?}"
    );
    assert_eq!(
        counts.get("POST /upload/drive/v3/files"),
        Some(&1),
        "{counts:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn as_google_doc_lets_drive_convert_the_report() {
    let world = World::new().await;
    world.write_final_stage("20260102_030405", REPORT);
    let run = world.upload(&["--as-google-doc"]).await;
    assert_eq!(run.code, 0, "{run:?}");

    let files = world.folder_files();
    assert_eq!(files.len(), 1, "{files:#?}");
    assert_eq!(files[0]["mimeType"], "application/vnd.google-apps.document");
    assert_eq!(
        files[0]["name"],
        "FINAL_REPORT_acme_robotics_20260102_030405"
    );
    assert_eq!(
        files[0]["appProperties"]["sha256"],
        sha256_hex(REPORT.as_bytes()).as_str()
    );
    // The Doc holds the report's content (rendered to HTML, converted back by Drive).
    let doc = String::from_utf8(
        world
            .emulator
            .google()
            .file_bytes(files[0]["id"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(doc.contains("Acme Robotics: AI agent-readiness"), "{doc}");
    assert!(doc.contains("4.2 days"), "{doc}");
    // The emulated Drive keeps a text/markdown (or text/plain) upload as it is and converts only
    // text/html: the table markup gone means the media went up as rendered HTML.
    assert_rendered(&doc);
    assert_resumable_create(&world);
    assert!(
        world
            .receipt()
            .web_view_link
            .contains("docs.google.com/document"),
        "{:?}",
        world.receipt()
    );

    // A re-run finds the Doc; a plain upload of the same run is a different file kind.
    let rerun = world.upload(&["--as-google-doc"]).await;
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert!(rerun.stdout.contains("already done"), "{rerun:?}");
    assert_eq!(world.folder_files().len(), 1);

    // A changed report updates the same Doc, converted again.
    let doc_id = files[0]["id"].as_str().unwrap().to_string();
    let changed = format!(
        "{REPORT}\n## Addendum\n\nA second look at the warehouse.\n\n| Dock | Wait |\n|---|---|\n| North | 2 hours |\n"
    );
    world.write_final_stage("20260103_030405", &changed);
    let run = world.upload(&["--as-google-doc"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let files = world.folder_files();
    assert_eq!(files.len(), 1, "no duplicate: {files:#?}");
    assert_eq!(files[0]["id"], doc_id.as_str());
    assert_eq!(files[0]["mimeType"], "application/vnd.google-apps.document");
    assert_eq!(
        files[0]["name"],
        "FINAL_REPORT_acme_robotics_20260103_030405"
    );
    assert_eq!(
        files[0]["appProperties"]["sha256"],
        sha256_hex(changed.as_bytes()).as_str()
    );
    let doc = String::from_utf8(world.emulator.google().file_bytes(&doc_id).unwrap()).unwrap();
    assert!(doc.contains("A second look at the warehouse."), "{doc}");
    assert!(doc.contains("North") && doc.contains("2 hours"), "{doc}");
    assert!(!doc.contains("| North |"), "{doc}");
    assert_rendered(&doc);
    let counts = world.emulator.requests().counts();
    assert_eq!(
        counts.get("POST /upload/drive/v3/files/{id}"),
        Some(&1),
        "the new content went to the Doc's own session: {counts:#?}"
    );
    assert_eq!(world.receipt().file_id, doc_id);
}

/// A Google Doc's content as Drive made it from HTML: the report's Markdown table syntax is
/// gone (a Markdown upload would keep it verbatim), its cells' text is kept. Bold may come
/// back as `**` in a Doc's Markdown export, so it proves nothing either way.
fn assert_rendered(doc: &str) {
    for markup in ["|---|", "| Lead time |", "| KPI |"] {
        assert!(
            !doc.contains(markup),
            "Markdown table markup {markup:?} reached the Doc: {doc}"
        );
    }
    assert!(
        doc.contains("Lead time") && doc.contains("4.2 days"),
        "{doc}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_into_a_folder_of_a_shared_drive() {
    let world = World::new().await;
    let report_path = world.write_final_stage("20260102_030405", REPORT);
    // A folder in a shared drive: Drive answers 404 for it unless every call says
    // supportsAllDrives (and listings includeItemsFromAllDrives).
    let seed = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(seed.path().join("Team.shareddrive/Reports")).unwrap();
    std::fs::write(seed.path().join("Team.shareddrive/Reports/.gitkeep"), "").unwrap();
    let google = world.emulator.google();
    let root = google.seed_from_dir(seed.path()).unwrap();
    let team = google.find_child(&root, "Team").unwrap();
    let reports = google.find_child(&team, "Reports").unwrap();
    let mut env = world.env();
    env.retain(|(k, _)| *k != "GDRIVE_FINAL_REPORT_FOLDER");
    env.push(("GDRIVE_FINAL_REPORT_FOLDER", reports.clone()));

    let run = world.upload_with_env(&[], &env).await;
    assert_eq!(run.code, 0, "{run:?}");
    let files = children(&world.emulator, &reports);
    assert_eq!(files.len(), 1, "{files:#?}");
    let id = files[0]["id"].as_str().unwrap().to_string();
    assert_eq!(files[0]["driveId"], team.as_str(), "{files:#?}");
    assert_eq!(
        google.file_bytes(&id).unwrap(),
        std::fs::read(&report_path).unwrap()
    );
    let receipt = world.receipt();
    assert_eq!(
        (receipt.file_id.as_str(), receipt.folder_id.as_str()),
        (id.as_str(), reports.as_str())
    );
    assert_resumable_create(&world);

    // A re-run checks the file in the shared drive (already done); without the receipt it
    // finds the file by searching the shared drive's folder. Neither uploads again.
    let rerun = world.upload_with_env(&[], &env).await;
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert!(rerun.stdout.contains("already done"), "{rerun:?}");
    std::fs::remove_file(world.receipt_path()).unwrap();
    let rerun = world.upload_with_env(&[], &env).await;
    assert_eq!(rerun.code, 0, "{rerun:?}");
    assert_eq!(world.receipt().file_id, id);
    assert_eq!(children(&world.emulator, &reports).len(), 1);
    assert_eq!(world.upload_requests(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_prints_the_plan_and_touches_nothing() {
    let world = World::new().await;
    world.write_final_stage("20260102_030405", REPORT);
    let run = world.upload(&["--dry-run"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(&world.folder_id), "{run:?}");
    assert!(
        run.stdout.contains(&sha256_hex(REPORT.as_bytes())),
        "{run:?}"
    );
    assert!(
        world.emulator.requests().entries().is_empty(),
        "{:?}",
        world.emulator.requests().counts()
    );
    assert!(!world.receipt_path().exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn input_errors_fail_before_any_network_call() {
    let world = World::new().await;
    world.write_final_stage("20260102_030405", REPORT);

    let mut env = world.env();
    env.retain(|(k, _)| *k != "GDRIVE_FINAL_REPORT_FOLDER");
    let run = world.upload_with_env(&[], &env).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.error_line().contains("GDRIVE_FINAL_REPORT_FOLDER"),
        "{run:?}"
    );

    env.push((
        "GDRIVE_FINAL_REPORT_FOLDER",
        "https://example.com/not-drive".into(),
    ));
    let run = world.upload_with_env(&[], &env).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.error_line().contains("GDRIVE_FINAL_REPORT_FOLDER"),
        "{run:?}"
    );

    let mut env = world.env();
    env.retain(|(k, _)| *k != "GDRIVE_CREDENTIALS_PATH");
    let run = world.upload_with_env(&[], &env).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.error_line().contains("GDRIVE_CREDENTIALS_PATH"),
        "{run:?}"
    );

    assert!(
        world.emulator.requests().entries().is_empty(),
        "{:?}",
        world.emulator.requests().counts()
    );
    assert!(run.stderr.lines().count() == 1, "one line: {run:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_final_marker_is_an_upstream_error() {
    let world = World::new().await;
    let run = world.upload(&[]).await;
    assert_eq!(run.code, 3, "{run:?}");
    let line = only_error_line(&run);
    assert!(
        line.contains("final") && line.contains("`pipeline`"),
        "{run:?}"
    );

    // A run id that has no final report names the run that has one.
    world.write_final_stage("20260102_030405", REPORT);
    let run = world.upload(&["--run-id", "another-run"]).await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(
        run.error_line().contains("another-run") && run.error_line().contains(RUN_ID),
        "{run:?}"
    );
    assert!(world.emulator.requests().entries().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_changed_after_its_marker_is_refused() {
    let world = World::new().await;
    let path = world.write_final_stage("20260102_030405", REPORT);
    std::fs::write(&path, REPORT.replace("4.2 days", "1.0 days")).unwrap();
    let run = world.upload(&[]).await;
    assert_eq!(run.code, 3, "{run:?}");
    let line = only_error_line(&run);
    assert!(
        line.contains("sha256") && line.contains("FINAL_REPORT_acme_robotics"),
        "{run:?}"
    );
    assert!(world.folder_files().is_empty());
    assert!(world.emulator.requests().entries().is_empty());
    assert!(!world.receipt_path().exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_folder_not_found_or_not_shared_names_the_service_account() {
    let world = World::new().await;
    world.write_final_stage("20260102_030405", REPORT);
    let email = world.emulator.google().dump()["service_accounts"][0]["client_email"]
        .as_str()
        .unwrap()
        .to_string();

    // Seed a folder the service account cannot see, and one it may only read.
    let seed = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(seed.path().join("Private.unshared")).unwrap();
    std::fs::write(seed.path().join("Private.unshared/.gitkeep"), "").unwrap();
    std::fs::create_dir_all(seed.path().join("Reports.readonly")).unwrap();
    std::fs::write(seed.path().join("Reports.readonly/.gitkeep"), "").unwrap();
    let root = world.emulator.google().seed_from_dir(seed.path()).unwrap();
    let private = world
        .emulator
        .google()
        .find_child(&root, "Private")
        .unwrap();
    let read_only = world
        .emulator
        .google()
        .find_child(&root, "Reports")
        .unwrap();

    for missing in ["1NoSuchFolderAnywhereInThisDrive00", private.as_str()] {
        let mut env = world.env();
        env.retain(|(k, _)| *k != "GDRIVE_FINAL_REPORT_FOLDER");
        env.push(("GDRIVE_FINAL_REPORT_FOLDER", missing.to_string()));
        let run = world.upload_with_env(&[], &env).await;
        assert_eq!(run.code, 2, "{run:?}");
        let line = only_error_line(&run);
        assert!(
            line.contains(missing) && line.contains(&email) && line.contains("share"),
            "{run:?}"
        );
    }

    let mut env = world.env();
    env.retain(|(k, _)| *k != "GDRIVE_FINAL_REPORT_FOLDER");
    env.push(("GDRIVE_FINAL_REPORT_FOLDER", read_only.clone()));
    let run = world.upload_with_env(&[], &env).await;
    assert_eq!(run.code, 2, "{run:?}");
    let line = only_error_line(&run);
    assert!(
        line.contains(&read_only) && line.contains(&email) && line.contains("Editor"),
        "{run:?}"
    );

    assert!(!world.receipt_path().exists());
    assert_eq!(world.upload_requests(), 0);
}

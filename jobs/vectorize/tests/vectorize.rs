//! The `vectorize` binary as a user runs it, against an in-process OpenAI emulator: request
//! counts prove that each document is uploaded once, however the run goes (faults, kills,
//! re-runs, expired stores), and the markers prove what a consumer would read.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use emulator::faults::{FaultError, FaultSpec, Service};
use emulator::openai::FileErrorCode;
use emulator::{Config, Emulator};
use openai_client::async_openai::types::files::{CreateFileRequestArgs, FilePurpose};
use openai_client::async_openai::types::vectorstores::CreateVectorStoreRequestArgs;
use serde_json::Value;
use shared::layout::{CompanyDir, Stage};
use shared::markers::{FileRecord, Marker, read_verified};
use shared::records::{DataDetails, VectorRecord};

const SLUG: &str = "acme";
const RUN_ID: &str = "run-1";
const KEY: &str = "test-openai-key";
/// How long the emulator takes to process an attached file.
const PROCESSING_DELAY: Duration = Duration::from_millis(30);
/// `--poll-interval-ms` of every run: the first wait between polls (it grows by half).
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// One test's outputs tree and emulator.
struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    emulator: Emulator,
}

impl Fixture {
    async fn start(config: Config) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("outputs");
        std::fs::create_dir_all(&root).unwrap();
        let emulator = Emulator::start(config.file_processing_delay(PROCESSING_DELAY))
            .await
            .unwrap();
        Fixture {
            _tmp: tmp,
            root,
            emulator,
        }
    }

    fn dir(&self) -> CompanyDir {
        CompanyDir::new(&self.root, SLUG)
    }

    /// Writes `data/<path>` files, a submission file and `data/.ready`, as setup would.
    fn data_stage(&self, documents: &[(String, Vec<u8>)]) {
        let dir = self.dir();
        let submission = format!("debug/submission_20260101_000000_{RUN_ID}.json");
        std::fs::create_dir_all(dir.debug_dir()).unwrap();
        std::fs::write(dir.join(&submission), br#"{"company_name":"Acme"}"#).unwrap();
        let mut files = vec![FileRecord::of(&dir, &submission).unwrap()];
        for (path, bytes) in documents {
            let full = dir.join(&format!("data/{path}"));
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, bytes).unwrap();
            files.push(FileRecord::of(&dir, &format!("data/{path}")).unwrap());
        }
        let details = DataDetails {
            submission,
            source: "local".into(),
            skipped: vec![],
        };
        Marker {
            stage: Stage::Data.as_str().into(),
            run_id: RUN_ID.into(),
            slug: SLUG.into(),
            job: "setup".into(),
            job_version: "test".into(),
            started: chrono::Utc::now(),
            finished: chrono::Utc::now(),
            fingerprint: shared::markers::fingerprint(&documents.len()),
            files,
            metrics: Default::default(),
            details: serde_json::to_value(details).unwrap(),
        }
        .write(&dir.marker(Stage::Data, ""))
        .unwrap();
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_vectorize"));
        command
            .args([
                "--outputs",
                self.root.to_str().unwrap(),
                "--company-name",
                "Acme",
            ])
            .args([
                "--poll-interval-ms",
                &POLL_INTERVAL.as_millis().to_string(),
                "--retry-min-delay-ms",
                "10",
                "--max-retries",
                "8",
            ])
            .args(args)
            .env_clear()
            .env("OPENAI_API_KEY", KEY)
            .env("OPENAI_BASE_URL", self.emulator.openai_base())
            .env("LOG_FORMAT", "json")
            .kill_on_drop(true);
        command
    }

    async fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().await.unwrap()
    }

    /// The verified vectorize marker and the record it vouches for.
    fn vectors(&self) -> (Marker, VectorRecord) {
        let dir = self.dir();
        let marker = read_verified(&dir, Stage::Vectors, &dir.marker(Stage::Vectors, "")).unwrap();
        let record: VectorRecord =
            serde_json::from_slice(&std::fs::read(dir.join(&marker.files[0].path)).unwrap())
                .unwrap();
        assert_eq!(serde_json::to_value(&record).unwrap(), marker.details);
        (marker, record)
    }

    /// Answered (not faulted) requests on a route.
    fn served(&self, method: &str, route: &str) -> usize {
        self.emulator
            .requests()
            .entries()
            .iter()
            .filter(|e| e.method == method && e.route == route && e.status == Some(200))
            .count()
    }

    fn uploads(&self) -> usize {
        self.served("POST", "/v1/files")
    }

    fn state(&self) -> Value {
        self.emulator.openai().dump()
    }

    /// The ids of a kind of object (`files`, `vector_stores`) the emulator holds.
    fn ids(&self, kind: &str) -> Vec<String> {
        let mut ids: Vec<String> = self.state()[kind]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    }

    /// A client of the emulator, to put there what an earlier, interrupted run would have.
    fn openai(&self) -> openai_client::OpenAi {
        let config = openai_client::async_openai::config::OpenAIConfig::new()
            .with_api_key(KEY)
            .with_api_base(self.emulator.openai_base());
        let http = shared::http::client(&shared::http::HttpSettings::default()).unwrap();
        openai_client::async_openai::Client::build(http, config)
    }

    /// Creates a vector store tagged with `run_id`, as `vectorize` names and tags its stores.
    async fn create_store(&self, run_id: &str) -> String {
        let request = CreateVectorStoreRequestArgs::default()
            .name(format!("{SLUG}-{run_id}"))
            .metadata(serde_json::json!({"slug": SLUG, "run_id": run_id}))
            .build()
            .unwrap();
        self.openai()
            .vector_stores()
            .create(request)
            .await
            .unwrap()
            .id
    }

    /// Uploads `path` under its base name, as `vectorize` uploads a document.
    async fn upload(&self, path: &Path) -> String {
        let request = CreateFileRequestArgs::default()
            .file(path)
            .purpose(FilePurpose::Assistants)
            .build()
            .unwrap();
        self.openai().files().create(request).await.unwrap().id
    }
}

/// The JSON log lines of a run.
fn log_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// The value and unit of the metric `name` a run logged (exactly once).
fn metric(lines: &[Value], name: &str) -> (f64, String) {
    let found: Vec<&Value> = lines.iter().filter(|l| l["metric_name"] == name).collect();
    assert_eq!(found.len(), 1, "metric {name} logged once: {found:?}");
    (
        found[0]["metric_value"].as_f64().unwrap(),
        found[0]["metric_unit"].as_str().unwrap().to_string(),
    )
}

/// The progress metrics a run logged for uploading every one of `docs`, `failed` of which
/// failed processing, and the line naming its store (logged before any failure is reported).
fn assert_progress_logged(
    lines: &[Value],
    docs: &[(String, Vec<u8>)],
    failed: usize,
    store_id: &str,
) {
    let bytes: usize = docs.iter().map(|(_, b)| b.len()).sum();
    assert_eq!(
        metric(lines, "files_uploaded"),
        (docs.len() as f64, "files".into())
    );
    assert_eq!(
        metric(lines, "bytes_uploaded"),
        (bytes as f64, "bytes".into())
    );
    assert_eq!(
        metric(lines, "files_failed"),
        (failed as f64, "files".into())
    );
    let (elapsed, unit) = metric(lines, "vectorize_elapsed");
    assert!(elapsed > 0.0 && unit == "seconds", "{elapsed} {unit}");
    assert!(
        lines.iter().any(|l| l["vector_store_id"] == store_id
            && l["message"] == format!("vector store: {store_id}")),
        "the store id is logged"
    );
}

/// The most store polls a run needs once its last batch is attached: it polls at once, then
/// after waits growing by half from the poll interval, and the first poll after the processing
/// delay has passed sees every file done (a slow machine only means fewer polls).
fn max_polls(first_wait: Duration, processing: Duration) -> usize {
    let (mut polls, mut waited, mut wait) = (1, Duration::ZERO, first_wait);
    while waited < processing {
        waited += wait;
        wait += wait / 2;
        polls += 1;
    }
    polls
}

fn documents(n: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            (
                format!("doc_{i:03}.md"),
                format!("# Document {i}\nRevenue grew {i}%.\n").into_bytes(),
            )
        })
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stderr: {}\nstdout: {}",
        stderr(output),
        String::from_utf8_lossy(&output.stdout)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn indexes_300_documents_once_and_a_second_run_uploads_nothing() {
    // A little latency per request, so uploads that may run together do overlap at the server.
    let fx = Fixture::start(Config::new().fault(
        Service::OpenAi,
        FaultSpec::latency(Duration::from_millis(5), Duration::ZERO),
    ))
    .await;
    let mut docs = documents(298);
    // Two documents share a base name: both are uploaded under their path.
    docs.push(("interviews/cto.md".into(), b"# CTO interview\n".to_vec()));
    docs.push((
        "board/cto.md".into(),
        b"# Board notes on the CTO\n".to_vec(),
    ));
    fx.data_stage(&docs);

    let output = fx
        .run(&["--max-batch-files", "128", "--concurrency", "4"])
        .await;
    assert_exit(&output, 0);
    let peak = fx.emulator.requests().max_concurrency(Some("openai"));
    assert!(
        (2..=4).contains(&peak),
        "uploads run in parallel, at most --concurrency 4 at once ({peak})"
    );
    assert_eq!(
        fx.uploads(),
        300,
        "one upload per document, the submission file not among them"
    );
    assert_eq!(fx.served("POST", "/v1/vector_stores"), 1);
    assert_eq!(
        fx.served("POST", "/v1/vector_stores/{vector_store_id}/file_batches"),
        3,
        "300 ids in batches of ≤ 128"
    );
    let entries = fx.emulator.requests().entries();
    let attached = entries
        .iter()
        .filter(|e| e.route == "/v1/vector_stores/{vector_store_id}/file_batches")
        .map(|e| e.end_us)
        .max()
        .unwrap();
    let polls = entries
        .iter()
        .filter(|e| {
            e.method == "GET"
                && e.route == "/v1/vector_stores/{vector_store_id}"
                && e.start_us >= attached
        })
        .count();
    let most = max_polls(POLL_INTERVAL, PROCESSING_DELAY);
    assert_eq!(
        most, 3,
        "polls at 0, 20 and 50 ms cover a 30 ms processing delay"
    );
    assert!(
        (1..=most).contains(&polls),
        "polling stops once processing ends ({polls} polls, at most {most})"
    );

    let (marker, record) = fx.vectors();
    assert_eq!(marker.run_id, RUN_ID);
    assert_eq!(record.files.len(), 300);
    assert_eq!(record.counts["completed"], 300);
    assert_eq!(record.counts["total"], 300);
    assert!(
        record
            .files
            .iter()
            .all(|f| f.status == "completed" && f.last_error.is_none())
    );
    assert_eq!(marker.metrics["files_uploaded"], 300);
    let store_id = record.vector_store_id.clone().unwrap();
    let lines = log_lines(&output);
    assert_progress_logged(&lines, &docs, 0, &store_id);
    let state = fx.state();
    let store = &state["vector_stores"][0];
    assert_eq!(store["id"], store_id.as_str());
    assert_eq!(store["name"], format!("{SLUG}-{RUN_ID}"));
    assert_eq!(store["metadata"]["run_id"], RUN_ID);
    assert_eq!(
        store["expires_after"],
        serde_json::json!({"anchor": "last_active_at", "days": 7})
    );
    let mut names: Vec<&str> = state["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filename"].as_str().unwrap())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 300, "upload names are unique");
    assert!(
        names.contains(&"interviews__cto.md") && names.contains(&"board__cto.md"),
        "{names:?}"
    );
    assert!(
        state["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["purpose"] == "assistants")
    );
    let cto = record
        .files
        .iter()
        .find(|f| f.path == "data/interviews/cto.md")
        .unwrap();
    assert_eq!(cto.filename, "interviews__cto.md");

    let output = fx.run(&[]).await;
    assert_exit(&output, 0);
    assert!(String::from_utf8_lossy(&output.stdout).contains("already done"));
    assert_eq!(fx.uploads(), 300, "the second run uploads nothing");
    assert_eq!(
        fx.served("POST", "/v1/vector_stores"),
        1,
        "and creates no store"
    );
    assert_eq!(
        fx.vectors().1.vector_store_id.as_deref(),
        Some(store_id.as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_file_is_reported_with_its_last_error() {
    let fx =
        Fixture::start(Config::new().failing_file("broken.md", FileErrorCode::InvalidFile)).await;
    let mut docs = documents(4);
    docs.push(("broken.md".into(), b"not really markdown".to_vec()));
    fx.data_stage(&docs);

    let output = fx.run(&[]).await;
    assert_exit(&output, 4);
    let message = stderr(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.contains("data/broken.md") && message.contains("invalid_file"),
        "{message}"
    );
    assert!(message.contains("--max-failed-files"), "{message}");
    assert!(
        !fx.dir().marker(Stage::Vectors, "").exists(),
        "no marker for a failed stage"
    );
    let store_id = fx.ids("vector_stores").remove(0);
    assert_progress_logged(&log_lines(&output), &docs, 1, &store_id);

    // Tolerating one failure: the re-run uploads nothing more and records the failure.
    let output = fx.run(&["--max-failed-files", "1"]).await;
    assert_exit(&output, 0);
    assert_eq!(fx.uploads(), 5);
    let (marker, record) = fx.vectors();
    assert_eq!(record.counts["failed"], 1);
    assert_eq!(marker.metrics["files_failed"], 1);
    let broken = record
        .files
        .iter()
        .find(|f| f.path == "data/broken.md")
        .unwrap();
    assert_eq!(broken.status, "failed");
    assert!(
        broken
            .last_error
            .as_deref()
            .unwrap()
            .starts_with("invalid_file: "),
        "{broken:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_503_storm_is_survived_without_duplicate_uploads() {
    survives_a_storm_of(FaultError::Status { status: 503 }).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_storm_of_dropped_connections_is_survived_without_duplicate_uploads() {
    survives_a_storm_of(FaultError::Drop).await;
}

/// Every other request fails with `error`, 25 times in all: the job still indexes each of its
/// 20 documents exactly once.
async fn survives_a_storm_of(error: FaultError) {
    let storm = FaultSpec {
        max_faults: Some(25),
        ..FaultSpec::every_nth(2, error)
    };
    let fx = Fixture::start(Config::new().fault(Service::OpenAi, storm)).await;
    fx.data_stage(&documents(20));
    let output = fx.run(&[]).await;
    assert_exit(&output, 0);
    let faulted = fx
        .emulator
        .requests()
        .entries()
        .iter()
        .filter(|e| e.fault.is_some())
        .count();
    assert_eq!(faulted, 25, "the storm happened");
    assert_eq!(fx.uploads(), 20);
    assert_eq!(fx.state()["files"].as_array().unwrap().len(), 20);
    assert_eq!(fx.vectors().1.counts["completed"], 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_storm_during_the_uploads_is_waited_out_without_duplicates() {
    // Every other request is rate-limited, ten times: the first 20 requests are all uploads
    // (none of the 20 can have succeeded before the 20th arrives), so the storm hits them.
    let storm = FaultSpec {
        max_faults: Some(10),
        ..FaultSpec::every_nth(
            2,
            FaultError::RateLimit {
                retry_after_secs: 1,
            },
        )
    };
    let fx = Fixture::start(Config::new().fault(Service::OpenAi, storm)).await;
    let docs = documents(20);
    fx.data_stage(&docs);
    let output = fx.run(&["--concurrency", "4"]).await;
    assert_exit(&output, 0);

    let entries = fx.emulator.requests().entries();
    let limited: Vec<_> = entries.iter().filter(|e| e.fault.is_some()).collect();
    assert_eq!(limited.len(), 10, "the storm happened");
    assert!(
        limited
            .iter()
            .all(|e| e.method == "POST" && e.route == "/v1/files" && e.status == Some(429)),
        "it hit the uploads: {limited:?}"
    );
    // The retry of the last rate-limited upload waited the second Retry-After asked for (less
    // the millisecond tokio's timer may round away; the backoff alone waits well under a second).
    let last_limited = limited.iter().map(|e| e.end_us).max().unwrap();
    let last_upload = entries
        .iter()
        .filter(|e| e.route == "/v1/files" && e.method == "POST")
        .map(|e| e.start_us)
        .max()
        .unwrap();
    assert!(
        last_upload + 1_000 >= last_limited + 1_000_000,
        "Retry-After was honoured ({last_limited} µs → {last_upload} µs)"
    );

    assert_eq!(fx.uploads(), 20, "one successful upload per document");
    let state = fx.state();
    let mut names: Vec<&str> = state["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filename"].as_str().unwrap())
        .collect();
    names.sort();
    let mut expected: Vec<&str> = docs.iter().map(|(name, _)| name.as_str()).collect();
    expected.sort();
    assert_eq!(
        names, expected,
        "each document once at OpenAI, no duplicate"
    );
    assert_eq!(fx.vectors().1.counts["completed"], 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_size_over_openais_limit_is_refused() {
    let fx = Fixture::start(Config::new()).await;
    fx.data_stage(&documents(2));
    let output = fx.run(&["--max-batch-files", "2001"]).await;
    assert_exit(&output, 2);
    let message = stderr(&output);
    assert!(
        message.contains("--max-batch-files") && message.contains("2001"),
        "{message}"
    );
    assert!(fx.emulator.requests().entries().is_empty());

    let output = fx.run(&["--max-batch-files", "2000", "--dry-run"]).await;
    assert_exit(&output, 0);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("1 file batch(es)"),
        "2,000 is OpenAI's limit and allowed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_or_tampered_data_stage_is_refused() {
    let fx = Fixture::start(Config::new()).await;
    let output = fx.run(&[]).await;
    assert_exit(&output, 3);
    let message = stderr(&output);
    assert!(
        message.contains("acme/data/.ready") && message.contains("`setup`"),
        "{message}"
    );

    fx.data_stage(&documents(2));
    std::fs::write(fx.dir().join("data/doc_001.md"), "changed after setup").unwrap();
    let output = fx.run(&[]).await;
    assert_exit(&output, 3);
    assert!(
        stderr(&output).contains("data/doc_001.md"),
        "{}",
        stderr(&output)
    );
    assert!(
        fx.emulator.requests().entries().is_empty(),
        "nothing was sent"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unindexable_documents_are_refused_before_any_upload() {
    let fx = Fixture::start(Config::new()).await;
    let mut docs = documents(2);
    docs.push(("sheet.csv".into(), b"a,b\n1,2\n".to_vec()));
    fx.data_stage(&docs);
    let output = fx.run(&[]).await;
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("data/sheet.csv (type .csv is not indexable)"),
        "{}",
        stderr(&output)
    );
    assert!(fx.emulator.requests().entries().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_or_revoked_key_is_refused_clearly() {
    let fx = Fixture::start(Config::new()).await;
    fx.data_stage(&documents(2));
    let output = fx
        .command(&[])
        .env_remove("OPENAI_API_KEY")
        .output()
        .await
        .unwrap();
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("OPENAI_API_KEY is not set"),
        "{}",
        stderr(&output)
    );

    fx.emulator.openai().revoke_key();
    let output = fx.run(&["--concurrency", "1"]).await;
    assert_exit(&output, 4);
    let message = stderr(&output);
    assert!(
        message.contains("OpenAI refused the API key (revoked or wrong)"),
        "{message}"
    );
    assert!(!message.contains(KEY), "the key is not echoed: {message}");
    assert_eq!(
        fx.emulator.requests().entries().len(),
        1,
        "a 401 is not retried"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_mid_upload_resumes_without_uploading_twice() {
    let fx = Fixture::start(Config::new()).await;
    fx.data_stage(&documents(12));
    fx.emulator.faults().set(
        Service::OpenAi,
        FaultSpec::latency(Duration::from_millis(150), Duration::ZERO),
    );
    let mut child = fx
        .command(&["--concurrency", "1"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let progress = fx.dir().join(&format!("vector_ids/progress_{RUN_ID}.json"));
    let uploaded = |path: &Path| {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .map_or(0, |v| v["files"].as_object().map_or(0, |f| f.len()))
    };
    // Kill right after an upload was recorded: the next one is still in its injected latency.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while uploaded(&progress) < 4 {
        assert!(std::time::Instant::now() < deadline, "no progress");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    // The request in flight at the kill may still complete at the server (as it can at OpenAI):
    // let it land, so the re-run must find it instead of uploading that document again.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let before = fx.uploads();
    assert!(
        (4..=5).contains(&before),
        "killed mid-upload ({before} uploads)"
    );
    fx.emulator.faults().clear(Service::OpenAi);

    let output = fx.run(&[]).await;
    assert_exit(&output, 0);
    assert_eq!(fx.uploads(), 12, "each document uploaded once in total");
    assert_eq!(fx.state()["files"].as_array().unwrap().len(), 12);
    assert_eq!(fx.vectors().1.counts["completed"], 12);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_store_is_rebuilt_from_the_uploaded_files() {
    let fx = Fixture::start(Config::new()).await;
    fx.data_stage(&documents(5));
    assert_exit(&fx.run(&[]).await, 0);
    let old = fx.vectors().1.vector_store_id.unwrap();
    assert!(fx.emulator.openai().expire_vector_store(&old));

    let output = fx.run(&[]).await;
    assert_exit(&output, 0);
    let (_, record) = fx.vectors();
    let new = record.vector_store_id.unwrap();
    assert_ne!(new, old);
    assert_eq!(record.counts["completed"], 5);
    assert_eq!(
        fx.uploads(),
        5,
        "the files themselves outlive the store: none uploaded again"
    );
    assert_eq!(fx.served("POST", "/v1/vector_stores"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_document_replaces_its_old_upload_in_the_store() {
    let fx = Fixture::start(Config::new()).await;
    let mut docs = documents(3);
    fx.data_stage(&docs);
    assert_exit(&fx.run(&[]).await, 0);
    let file_of = |record: &VectorRecord, path: &str| {
        record
            .files
            .iter()
            .find(|f| f.path == path)
            .unwrap()
            .file_id
            .clone()
    };
    let before = fx.vectors().1;
    let old = file_of(&before, "data/doc_001.md");

    docs[1].1 = b"# Document 1\nRevenue fell 4%.\n".to_vec();
    fx.data_stage(&docs);
    let output = fx.run(&[]).await;
    assert_exit(&output, 0);
    let (_, after) = fx.vectors();
    let new = file_of(&after, "data/doc_001.md");
    assert_ne!(new, old);
    assert_eq!(
        fx.uploads(),
        4,
        "only the changed document is uploaded again"
    );
    assert_eq!(after.counts["completed"], 3);

    let state = fx.state();
    let store = state["vector_stores"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == after.vector_store_id.as_deref().unwrap())
        .unwrap();
    let mut attached: Vec<&str> = store["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    attached.sort();
    let mut expected: Vec<&str> = after.files.iter().map(|f| f.file_id.as_str()).collect();
    expected.sort();
    assert_eq!(attached, expected, "the store serves the new version only");
    assert!(!fx.ids("files").contains(&old), "the old upload is deleted");
}

#[tokio::test(flavor = "multi_thread")]
async fn files_gone_with_their_store_are_uploaded_again() {
    let mut fx = Fixture::start(Config::new()).await;
    fx.data_stage(&documents(4));
    assert_exit(&fx.run(&[]).await, 0);
    // A fresh service (another account or endpoint) holds neither the store nor the files.
    fx.emulator = Emulator::start(Config::new().file_processing_delay(Duration::from_millis(30)))
        .await
        .unwrap();

    let output = fx.run(&[]).await;
    assert_exit(&output, 0);
    let (_, record) = fx.vectors();
    assert_eq!(record.counts["completed"], 4);
    assert_eq!(
        fx.uploads(),
        4,
        "every vanished file is uploaded to the new service"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cleanup_leaves_no_store_and_no_file_behind() {
    let fx = Fixture::start(Config::new()).await;
    fx.data_stage(&documents(6));
    assert_exit(&fx.run(&[]).await, 0);
    assert_eq!(fx.state()["files"].as_array().unwrap().len(), 6);

    let output = fx.run(&["--cleanup"]).await;
    assert_exit(&output, 0);
    let state = fx.state();
    assert_eq!(state["files"], serde_json::json!([]));
    assert_eq!(state["vector_stores"], serde_json::json!([]));
    let dir = fx.dir();
    assert!(!dir.marker(Stage::Vectors, "").exists());
    let left: Vec<_> = std::fs::read_dir(dir.vector_ids_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_a_kill_left_unrecorded_is_adopted_not_duplicated() {
    let fx = Fixture::start(Config::new()).await;
    fx.data_stage(&documents(4));
    // As a kill right after creating the store leaves it: tagged with the run, in no progress
    // file. Another run's store is not this run's.
    let orphan = fx.create_store(RUN_ID).await;
    let other = fx.create_store("run-0").await;

    let output = fx.run(&[]).await;
    assert_exit(&output, 0);
    let (_, record) = fx.vectors();
    assert_eq!(record.vector_store_id.as_deref(), Some(orphan.as_str()));
    assert_eq!(record.counts["completed"], 4);
    assert_eq!(
        fx.served("POST", "/v1/vector_stores"),
        2,
        "no store created besides the two above"
    );
    let mut stores = vec![orphan, other];
    stores.sort();
    assert_eq!(fx.ids("vector_stores"), stores);
    assert_eq!(fx.uploads(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn cleanup_also_deletes_what_a_kill_or_a_retried_upload_left_unrecorded() {
    let fx = Fixture::start(Config::new()).await;
    fx.data_stage(&documents(3));
    assert_exit(&fx.run(&[]).await, 0);
    let dir = fx.dir();
    // Left unrecorded: a second store tagged with the run (a kill before its id was saved) and
    // a copy of doc_000.md (a timed-out upload that reached OpenAI, then was retried).
    fx.create_store(RUN_ID).await;
    fx.upload(&dir.join("data/doc_000.md")).await;
    // Not this run's: another run's store, a file of another name, and a copy of doc_001.md
    // that another run recorded.
    let other_store = fx.create_store("run-0").await;
    let scratch = tempfile::tempdir().unwrap();
    let notes = scratch.path().join("notes.md");
    std::fs::write(&notes, "# Notes\n").unwrap();
    let other_name = fx.upload(&notes).await;
    let other_run = fx.upload(&dir.join("data/doc_001.md")).await;
    let bytes = std::fs::metadata(dir.join("data/doc_001.md"))
        .unwrap()
        .len();
    let other_progress = serde_json::json!({
        "run_id": "run-0",
        "started_at": 0,
        "files": {"data/doc_001.md": {
            "file_id": other_run, "sha256": "0", "filename": "doc_001.md", "bytes": bytes
        }}
    });
    std::fs::write(
        dir.join("vector_ids/progress_run-0.json"),
        other_progress.to_string(),
    )
    .unwrap();
    assert_eq!(fx.ids("vector_stores").len(), 3);
    assert_eq!(fx.ids("files").len(), 6);

    let output = fx.run(&["--cleanup"]).await;
    assert_exit(&output, 0);
    assert_eq!(fx.ids("vector_stores"), vec![other_store]);
    let mut kept = vec![other_name, other_run];
    kept.sort();
    assert_eq!(fx.ids("files"), kept);
    assert!(!dir.marker(Stage::Vectors, "").exists());
    assert!(
        !dir.join(&format!("vector_ids/progress_{RUN_ID}.json"))
            .exists()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_data_set_records_no_vector_store() {
    let fx = Fixture::start(Config::new()).await;
    fx.data_stage(&[]);
    let output = fx
        .command(&[])
        .env_remove("OPENAI_API_KEY")
        .output()
        .await
        .unwrap();
    assert_exit(&output, 0);
    let (_, record) = fx.vectors();
    assert_eq!(record.vector_store_id, None);
    assert_eq!(record.counts["total"], 0);
    assert!(fx.emulator.requests().entries().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_prints_the_plan_and_touches_nothing() {
    let fx = Fixture::start(Config::new()).await;
    fx.data_stage(&documents(3));
    let output = fx.run(&["--dry-run"]).await;
    assert_exit(&output, 0);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("documents: 3") && stdout.contains("data/doc_002.md -> doc_002.md"),
        "{stdout}"
    );
    assert!(fx.emulator.requests().entries().is_empty());
    assert!(!fx.dir().vector_ids_dir().exists());
}

/// Peak memory of the job while it uploads a 200 MB document: uploads stream from disk, so the
/// child's peak RSS stays far below the file's size. Slow in debug builds; `make bench` runs it:
/// `cargo test -p vectorize --release -- --ignored --nocapture peak_memory`.
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn peak_memory_stays_flat_with_a_200_mb_document() {
    let small = peak_rss_mb(1).await;
    let big = peak_rss_mb(200).await;
    println!("vectorize peak RSS (VmHWM): document of   1 MB: {small:5.1} MB");
    println!("vectorize peak RSS (VmHWM): document of 200 MB: {big:5.1} MB");
    println!("ratio 200 MB / 1 MB: {:.2}", big / small);
    assert!(
        big < small * 2.0,
        "peak RSS grows with the document ({small:.1} MB -> {big:.1} MB): the upload was buffered"
    );
}

/// The `vectorize` child's own high-water mark (VmHWM) indexing three small documents and one
/// of `mb` MB, sampled until it exits. getrusage(RUSAGE_CHILDREN) would also count the moment
/// between fork and exec, when the child still maps this process.
async fn peak_rss_mb(mb: usize) -> f64 {
    let fx = Fixture::start(Config::new()).await;
    let mut big = Vec::with_capacity(mb * 1024 * 1024);
    let line = b"Quarterly revenue, customers and AI readiness notes for the board.\n";
    while big.len() + line.len() <= mb * 1024 * 1024 {
        big.extend_from_slice(line);
    }
    let mut docs = documents(3);
    docs.push(("big.txt".into(), big));
    fx.data_stage(&docs);
    drop(docs);
    let mut child = fx
        .command(&[])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id().unwrap());
    let mut peak_kb = 0u64;
    while child.try_wait().unwrap().is_none() {
        let status = std::fs::read_to_string(&status_path).unwrap_or_default();
        let hwm = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
        peak_kb = peak_kb.max(hwm.unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(child.wait().await.unwrap().success());
    assert_eq!(fx.uploads(), 4);
    peak_kb as f64 / 1024.0
}

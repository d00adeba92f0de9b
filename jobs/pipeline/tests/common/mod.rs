//! What every pipeline test needs: an emulator, the upstream stages a real run would find
//! (`data/` with its marker as `setup` writes it; the documents uploaded to the emulator, a
//! vector store and the vector marker as `vectorize` writes them), and the `pipeline` binary
//! run with flags and environment only, as a user runs it.

#![allow(dead_code)] // each test file uses a different subset of these helpers

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::files::{CreateFileRequestArgs, FilePurpose};
use async_openai::types::vectorstores::{
    CreateVectorStoreFileBatchRequestArgs, CreateVectorStoreRequestArgs, VectorStoreFileBatchStatus,
};
use emulator::{Config, Emulator};
use serde_json::{Value, json};
use shared::layout::{CompanyDir, Stage};
use shared::markers::{FileRecord, Marker, fingerprint};
use shared::records::{DataDetails, DocumentOrigin, IndexedFile, VectorRecord};

pub const KEY: &str = "test-openai-key";
pub const COMPANY: &str = "Acme Robotics";
pub const SLUG: &str = "acme_robotics";
pub const RUN_ID: &str = "run-test-1";
pub const RESPONSES: (&str, &str) = ("POST", "/v1/responses");

/// A sentence that exists in one document only, and that document.
pub const DISTINCTIVE: &str =
    "Every Thursday night two planners copy the forklift telemetry into spreadsheets by hand.";
pub const DISTINCTIVE_FILE: &str = "ops_review.md";
pub const DISTINCTIVE_PATH: &str = "data/operations/ops_review.md";
pub const DISTINCTIVE_DRIVE_ID: &str = "1OpsReviewDriveId0000000000000000";

/// A document of the fixture: path under the company directory, Drive id, text.
#[derive(Clone, Debug)]
pub struct Doc {
    pub path: String,
    pub drive_id: String,
    pub text: String,
}

/// The test company's documents: short enough to be one passage each, with 23 quotable
/// sentences in all (an odd count, so the emulator's deterministic titles do not repeat).
pub fn robotics_docs() -> Vec<Doc> {
    ROBOTICS_DOCS
        .iter()
        .map(|(path, drive_id, text)| Doc {
            path: path.to_string(),
            drive_id: drive_id.to_string(),
            text: text.to_string(),
        })
        .collect()
}

const ROBOTICS_DOCS: [(&str, &str, &str); 4] = [
    (
        DISTINCTIVE_PATH,
        DISTINCTIVE_DRIVE_ID,
        "# Operations review\n\n\
            Every Thursday night two planners copy the forklift telemetry into spreadsheets by hand. \
            The warehouse in Lyon ships four thousand orders on a normal day. \
            Picking errors cost the company about two percent of revenue last year. \
            Shift leads plan routes on whiteboards before each morning briefing. \
            Returns are logged in a shared mailbox that nobody owns. \
            The team would welcome tools that remove the weekly copying work.\n",
    ),
    (
        "data/interviews/cto_interview.md",
        "1CtoInterviewDriveId000000000000",
        "# CTO interview\n\n\
            Our ERP system was installed in 2011 and has never been upgraded. \
            Customer data lives in three separate databases that disagree with each other. \
            The board asked for a clear plan to use AI within two years. \
            We have two data engineers and no data scientist on staff. \
            Security reviews take six weeks for any new cloud service. \
            I would start with the problems that cost us money every single week.\n",
    ),
    (
        "data/finance/finance_notes.txt",
        "1FinanceNotesDriveId000000000000",
        "Supplier invoices arrive as PDF files and are typed into the ledger manually. \
            Month-end closing takes eleven working days on average. \
            Late payment penalties reached ninety thousand euros in the last fiscal year. \
            The controller keeps a private spreadsheet to reconcile bank statements. \
            Budget owners receive their reports three weeks after the month ends.\n",
    ),
    (
        "data/sales/customer_service.md",
        "1CustomerServiceDriveId000000000",
        "# Customer service\n\n\
            Customers wait forty minutes on average before an agent picks up the phone. \
            Half of all calls ask where an order currently is. \
            Agents search four systems to answer a single delivery question. \
            The service team lost five experienced people over the summer. \
            A chatbot pilot was stopped because it gave wrong delivery dates. \
            Managers want answers that are grounded in real order data.\n",
    ),
];

/// An emulator and an outputs tree for one test.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub emulator: Emulator,
    pub slug: String,
}

impl Fixture {
    /// For the test company ([`COMPANY`]).
    pub async fn start(config: Config) -> Fixture {
        Fixture::start_for(config, SLUG).await
    }

    /// For the company whose slug is `slug`.
    pub async fn start_for(config: Config, slug: &str) -> Fixture {
        shared::http::install_crypto_provider();
        let emulator = Emulator::start(config).await.unwrap();
        Fixture {
            tmp: tempfile::tempdir().unwrap(),
            emulator,
            slug: slug.to_string(),
        }
    }

    pub fn outputs(&self) -> PathBuf {
        self.tmp.path().join("outputs")
    }

    pub fn company(&self) -> CompanyDir {
        CompanyDir::new(self.outputs(), &self.slug)
    }

    /// Writes `data/` and its marker the way `setup` does.
    pub fn write_data_stage(&self, docs: &[Doc]) {
        let dir = self.company();
        let submission = format!("debug/submission_20260101_000000_{RUN_ID}.json");
        write(
            &dir.join(&submission),
            br#"{"resolved": {"company_name": "Acme Robotics"}}"#,
        );
        let mut files = vec![FileRecord::of(&dir, &submission).unwrap()];
        for doc in docs {
            write(&dir.join(&doc.path), doc.text.as_bytes());
            let name = doc.path.rsplit('/').next().unwrap();
            let origin = DocumentOrigin {
                source: "drive".into(),
                original_name: name.into(),
                original_path: doc.path.trim_start_matches("data/").into(),
                drive_id: Some(doc.drive_id.clone()),
                mime_type: Some("text/markdown".into()),
                modified_time: None,
                md5_checksum: None,
                export_format: None,
                sheet: None,
            };
            files.push(
                FileRecord::of(&dir, &doc.path)
                    .unwrap()
                    .with_origin(serde_json::to_value(origin).unwrap()),
            );
        }
        let details = DataDetails {
            submission,
            source: "drive".into(),
            skipped: vec![],
        };
        marker(
            &self.slug,
            Stage::Data,
            "setup",
            files,
            serde_json::to_value(details).unwrap(),
        )
        .write(&dir.marker(Stage::Data, ""))
        .unwrap();
    }

    /// Uploads the documents to the emulator, indexes them in a vector store and writes the
    /// vector record and marker the way `vectorize` does.
    pub async fn write_vector_stage(&self, docs: &[Doc]) {
        let dir = self.company();
        let openai = self.openai();
        let mut indexed = Vec::new();
        for doc in docs {
            let request = CreateFileRequestArgs::default()
                .file(dir.join(&doc.path))
                .purpose(FilePurpose::Assistants)
                .build()
                .unwrap();
            let file = openai.files().create(request).await.unwrap();
            indexed.push(IndexedFile {
                path: doc.path.clone(),
                file_id: file.id,
                filename: file.filename,
                status: "completed".into(),
                last_error: None,
            });
        }
        let store_id = if indexed.is_empty() {
            None
        } else {
            let store = openai
                .vector_stores()
                .create(
                    CreateVectorStoreRequestArgs::default()
                        .name(format!("{}_{RUN_ID}", self.slug))
                        .build()
                        .unwrap(),
                )
                .await
                .unwrap();
            let ids: Vec<String> = indexed.iter().map(|f| f.file_id.clone()).collect();
            let batch = openai
                .vector_stores()
                .file_batches(&store.id)
                .create(
                    CreateVectorStoreFileBatchRequestArgs::default()
                        .file_ids(ids)
                        .build()
                        .unwrap(),
                )
                .await
                .unwrap();
            wait_for_batch(&openai, &store.id, &batch.id).await;
            Some(store.id)
        };
        let record = VectorRecord {
            run_id: RUN_ID.into(),
            vector_store_id: store_id,
            counts: [
                ("completed".to_string(), indexed.len() as u64),
                ("total".to_string(), indexed.len() as u64),
            ]
            .into_iter()
            .collect(),
            files: indexed,
        };
        let record_path = dir.vector_record("20260101_000001");
        write(&record_path, &serde_json::to_vec_pretty(&record).unwrap());
        let files = vec![FileRecord::of(&dir, "vector_ids/vector_20260101_000001.json").unwrap()];
        marker(
            &self.slug,
            Stage::Vectors,
            "vectorize",
            files,
            serde_json::to_value(&record).unwrap(),
        )
        .write(&dir.marker(Stage::Vectors, ""))
        .unwrap();
    }

    /// Both upstream stages for `docs`.
    pub async fn upstream(&self, docs: &[Doc]) {
        self.write_data_stage(docs);
        self.write_vector_stage(docs).await;
    }

    fn openai(&self) -> Client<OpenAIConfig> {
        let http = shared::http::client(&shared::http::HttpSettings::default()).unwrap();
        Client::build(
            http,
            OpenAIConfig::new()
                .with_api_base(self.emulator.openai_base())
                .with_api_key(KEY),
        )
    }

    /// The `pipeline` command with a clean environment pointing at the emulator and the
    /// fixture's outputs root, and `args`.
    pub fn bare_command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_pipeline"));
        command
            .env_clear()
            .env("OPENAI_API_KEY", KEY)
            .env("OPENAI_BASE_URL", self.emulator.openai_base())
            .env("LOG_FORMAT", "json")
            .env("LOG_LEVEL", "info")
            .arg("--outputs")
            .arg(self.outputs())
            .args(args)
            .kill_on_drop(true);
        command
    }

    /// The `pipeline` command for the test company with `use_cases` use cases and `extra` args.
    pub fn command(&self, use_cases: u32, extra: &[&str]) -> tokio::process::Command {
        let mut command = self.bare_command(&[]);
        command
            .args([
                "--company-name",
                COMPANY,
                "--use-cases-count",
                &use_cases.to_string(),
            ])
            .args(["--readiness-score", "42", "--readiness-category", "Adopter"])
            .args([
                "--company-description",
                "Acme Robotics builds warehouse robots in Lyon.",
            ])
            .args(extra);
        command
    }

    /// Runs `pipeline` for the test company to its end.
    pub async fn run(&self, use_cases: u32, extra: &[&str]) -> Output {
        self.command(use_cases, extra).output().await.unwrap()
    }

    /// Model calls so far.
    pub fn responses(&self) -> usize {
        self.emulator.requests().count(RESPONSES.0, RESPONSES.1)
    }

    /// The one final marker of the company, verified, and the report's text.
    pub fn final_report(&self) -> (Marker, String) {
        let dir = self.company();
        let markers: Vec<PathBuf> = std::fs::read_dir(dir.final_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "ready"))
            .collect();
        assert_eq!(markers.len(), 1, "{markers:?}");
        let marker = shared::markers::read_verified(&dir, Stage::Final, &markers[0]).unwrap();
        let report = marker.details["report"].as_str().unwrap().to_string();
        let text = std::fs::read_to_string(dir.join(&report)).unwrap();
        (marker, text)
    }

    /// The `<ts>` of the final report `marker` lists (`final/FINAL_REPORT_<slug>_<ts>.md`).
    pub fn report_ts(&self, marker: &Marker) -> String {
        let report = marker.details["report"].as_str().unwrap();
        let prefix = format!("final/FINAL_REPORT_{}_", self.slug);
        let ts = report
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".md"))
            .unwrap_or_else(|| panic!("{report} is not named {prefix}<ts>.md"));
        assert!(
            chrono::NaiveDateTime::parse_from_str(ts, "%Y%m%d_%H%M%S").is_ok(),
            "{report}: <ts> is not YYYYmmdd_HHMMSS"
        );
        ts.to_string()
    }

    /// The names of the files in `part_a/` or `part_b/`, sorted.
    pub fn part_files(&self, folder: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.company().join(folder))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Exactly one Part A and one Part B, named for the company and `ts`; their texts.
    pub fn parts(&self, ts: &str) -> (String, String) {
        let slug = &self.slug;
        let part_a = format!("report_draft_{slug}_{ts}.md");
        let part_b = format!("report_enhanced_{slug}_{ts}.md");
        assert_eq!(self.part_files("part_a"), std::slice::from_ref(&part_a));
        assert_eq!(self.part_files("part_b"), std::slice::from_ref(&part_b));
        let read = |path: String| std::fs::read_to_string(self.company().join(&path)).unwrap();
        (
            read(format!("part_a/{part_a}")),
            read(format!("part_b/{part_b}")),
        )
    }

    /// The bytes of every step checkpoint, by file name (the run stamp `run.json` is not a
    /// step's).
    pub fn checkpoints(&self) -> std::collections::BTreeMap<String, Vec<u8>> {
        let mut checkpoints = self.checkpoint_files();
        checkpoints.remove("run.json");
        checkpoints
    }

    /// The bytes of every file in `checkpoints/`, by file name.
    pub fn checkpoint_files(&self) -> std::collections::BTreeMap<String, Vec<u8>> {
        let dir = self.company().checkpoints_dir();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Default::default();
        };
        entries
            .map(|e| e.unwrap())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect()
    }
}

fn marker(slug: &str, stage: Stage, job: &str, files: Vec<FileRecord>, details: Value) -> Marker {
    Marker {
        stage: stage.as_str().into(),
        run_id: RUN_ID.into(),
        slug: slug.into(),
        job: job.into(),
        job_version: "test".into(),
        started: chrono::Utc::now(),
        finished: chrono::Utc::now(),
        fingerprint: fingerprint(&json!({"fixture": stage.as_str()})),
        files,
        metrics: Default::default(),
        details,
    }
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

async fn wait_for_batch(openai: &Client<OpenAIConfig>, store: &str, batch: &str) {
    for _ in 0..500 {
        let status = openai
            .vector_stores()
            .file_batches(store)
            .retrieve(batch)
            .await
            .unwrap()
            .status;
        if status == VectorStoreFileBatchStatus::Completed {
            return;
        }
        assert_eq!(
            status,
            VectorStoreFileBatchStatus::InProgress,
            "batch failed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("batch {batch} never completed");
}

/// stdout and stderr of a run, for assertion messages.
pub fn logs(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The JSON log lines of a run's stdout.
pub fn log_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The value of metric `name` in a run's log, if logged.
pub fn metric(output: &Output, name: &str) -> Option<f64> {
    log_lines(output)
        .iter()
        .rev()
        .find(|l| l["metric_name"] == name)
        .and_then(|l| l["metric_value"].as_f64())
}

//! End to end, offline: what `make demo` does, asserted. The example company's documents
//! (`examples/acme/drive`) are seeded into the emulated Drive; the four job binaries run one
//! after the other as separate processes on one outputs tree, with flags and environment only;
//! then the markers, the Drive copy of the report, a fact traced from a seeded Google Doc into the
//! report, and a second full run that must cost nothing.
//!
//! The other jobs' binaries are taken from the directory cargo built `upload` into
//! (`make test` builds every binary first: `cargo build --workspace --bins`).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{children, requests_matching};
use emulator::{Config, Emulator};
use shared::inputs::InputArgs;
use shared::layout::{CompanyDir, Stage};
use shared::markers::{read_verified, sha256_hex};
use shared::records::{UploadReceipt, VectorRecord};
use shared::roots::{RootArgs, Roots};

const JOBS: [&str; 4] = ["setup", "vectorize", "pipeline", "upload"];
const GOOGLE_DOC_MIME: &str = "application/vnd.google-apps.document";
/// A distinctive fact of the example company, stated only in a seeded Google Doc.
const FACT: &str = "1,400 customs declarations a month";
const FACT_SOURCE: &str = "examples/acme/drive/Customs Backlog Review.gdoc.md";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A job binary built next to `upload`.
fn job_binary(job: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_upload")).with_file_name(job);
    assert!(
        path.exists(),
        "{} is missing: build every job first (`cargo build --workspace --bins`, which `make test` does)",
        path.display()
    );
    path
}

struct Demo {
    emulator: Emulator,
    drive_folder: String,
    final_folder: String,
    key_path: PathBuf,
    outputs: PathBuf,
    inputs_file: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Demo {
    async fn start() -> Demo {
        let example = repo_root().join("examples/acme");
        assert!(
            example.join("drive").is_dir(),
            "{} is missing: the example company",
            example.display()
        );
        let emulator = Emulator::start(Config::new().seed_drive(example.join("drive")))
            .await
            .unwrap();
        let drive_folder = emulator.seeded_folder_id().unwrap();
        let final_folder = emulator.google().create_folder("Final reports", None);
        let tmp = tempfile::tempdir().unwrap();
        let key_path = tmp.path().join("service-account.json");
        emulator
            .google()
            .write_service_account_key(&key_path)
            .unwrap();
        Demo {
            emulator,
            drive_folder,
            final_folder,
            key_path,
            outputs: tmp.path().join("outputs"),
            inputs_file: example.join("inputs.yaml"),
            _tmp: tmp,
        }
    }

    /// setup → vectorize → pipeline → upload, each as its own process; every one must succeed.
    async fn run_pipeline(&self) {
        let env = [
            ("OPENAI_API_KEY", "test-openai-key".to_string()),
            ("OPENAI_BASE_URL", self.emulator.openai_base()),
            ("GOOGLE_API_BASE_URL", self.emulator.url()),
            (
                "GDRIVE_CREDENTIALS_PATH",
                self.key_path.display().to_string(),
            ),
            ("GDRIVE_FINAL_REPORT_FOLDER", self.final_folder.clone()),
        ];
        let inputs_file = self.inputs_file.display().to_string();
        let outputs = self.outputs.display().to_string();
        let args = [
            "--inputs-file",
            &inputs_file,
            "--google-drive-link",
            &self.drive_folder,
            "--outputs",
            &outputs,
        ];
        for job in JOBS {
            let run = common::run(&job_binary(job), &args, &env).await;
            assert_eq!(run.code, 0, "{job} failed: {run:?}");
        }
    }

    fn company_dir(&self) -> CompanyDir {
        let inputs = InputArgs {
            inputs_file: Some(self.inputs_file.clone()),
            ..InputArgs::default()
        };
        CompanyDir::new(
            &self.outputs,
            &inputs.resolve().unwrap().resolved.company_slug,
        )
    }

    /// Paid or state-changing calls and what they leave behind: model responses, OpenAI file
    /// uploads, vector stores and file batches, Drive uploads, and the files in
    /// the final-report folder and in the whole emulated Drive.
    fn costly_counts(&self) -> BTreeMap<&'static str, usize> {
        let requests = self.emulator.requests();
        BTreeMap::from([
            ("model responses", requests.count("POST", "/v1/responses")),
            ("OpenAI file uploads", requests.count("POST", "/v1/files")),
            (
                "vector stores created",
                requests.count("POST", "/v1/vector_stores"),
            ),
            (
                "file batches created",
                requests.count("POST", "/v1/vector_stores/{vector_store_id}/file_batches"),
            ),
            (
                "Drive upload requests",
                requests_matching(&self.emulator, "upload/drive/v3/files"),
            ),
            (
                "files in the final-report folder",
                children(&self.emulator, &self.final_folder).len(),
            ),
            (
                "files in Drive",
                self.emulator.google().dump()["files"]
                    .as_array()
                    .map_or(0, Vec::len),
            ),
        ])
    }
}

/// The `"quote" [source: NAME]` citations in a report: (quote, cited name).
fn citations(report: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = report;
    while let Some(start) = rest.find("[source: ") {
        let before = &rest[..start];
        let after = &rest[start + "[source: ".len()..];
        let Some(end) = after.find(']') else { break };
        let quote = before
            .trim_end()
            .strip_suffix('"')
            .and_then(|b| b.rfind('"').map(|q| b[q + 1..].to_string()));
        if let Some(quote) = quote {
            found.push((quote, after[..end].to_string()));
        }
        rest = &after[end..];
    }
    found
}

/// Whitespace runs as single spaces (quotes are sentences with their whitespace collapsed).
fn normalize(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_company_end_to_end_offline() {
    let demo = Demo::start().await;
    demo.run_pipeline().await;
    let dir = demo.company_dir();

    // Every stage's marker verifies (sizes and checksums of every file it lists).
    let data = read_verified(&dir, Stage::Data, &dir.marker(Stage::Data, "")).unwrap();
    let vectors = read_verified(&dir, Stage::Vectors, &dir.marker(Stage::Vectors, "")).unwrap();
    let roots = Roots::open(&RootArgs {
        outputs: demo.outputs.clone(),
        inputs: Vec::new(),
    })
    .unwrap();
    let (_, final_marker, _) = roots.upstream_final(dir.slug(), None).unwrap();
    let receipt_path = dir.upload_receipt(&final_marker.run_id);
    let receipt: UploadReceipt =
        serde_json::from_slice(&std::fs::read(&receipt_path).unwrap()).unwrap();
    let report_record = final_marker
        .file(&receipt.report)
        .expect("the receipt names the report the final marker lists");
    assert_eq!(receipt.sha256, report_record.sha256);
    assert_eq!(receipt.bytes, report_record.bytes);
    // One run: setup's run id carried through every marker and the receipt.
    for (stage, run_id) in [
        ("vector", &vectors.run_id),
        ("final", &final_marker.run_id),
        ("receipt", &receipt.run_id),
    ] {
        assert_eq!(run_id, &data.run_id, "{stage} marker of another run");
    }

    // The report in Drive is byte-identical to the local final report.
    let report = std::fs::read(dir.join(&receipt.report)).unwrap();
    assert_eq!(sha256_hex(&report), receipt.sha256);
    let in_drive = children(&demo.emulator, &demo.final_folder);
    assert_eq!(in_drive.len(), 1, "{in_drive:#?}");
    assert_eq!(in_drive[0]["id"], receipt.file_id.as_str());
    assert_eq!(
        demo.emulator.google().file_bytes(&receipt.file_id).unwrap(),
        report
    );

    // Content flows from a seeded Google Doc into the report, quoted and cited by the name the
    // document was indexed under.
    let report = String::from_utf8(report).unwrap();
    let indexed: VectorRecord = serde_json::from_value(vectors.details).unwrap();
    let google_doc_names: Vec<&str> = indexed
        .files
        .iter()
        .filter(|f| {
            data.file(&f.path)
                .is_some_and(|r| r.origin["mime_type"] == GOOGLE_DOC_MIME)
        })
        .map(|f| f.filename.as_str())
        .collect();
    assert!(
        !google_doc_names.is_empty(),
        "no seeded Google Doc was indexed: {indexed:#?}"
    );
    let doc = std::fs::read_to_string(repo_root().join(FACT_SOURCE)).unwrap();
    assert!(doc.contains(FACT), "{FACT_SOURCE} no longer says {FACT:?}");
    let (quote, cited) = citations(&report)
        .into_iter()
        .find(|(quote, _)| quote.contains(FACT))
        .unwrap_or_else(|| {
            panic!("{FACT:?} is not quoted with a citation in the report:\n{report}")
        });
    assert!(
        google_doc_names.contains(&cited.as_str()),
        "{quote:?} cites {cited:?}, not the Google Doc {google_doc_names:?}"
    );
    assert!(
        normalize(&doc).contains(&normalize(&quote)),
        "{quote:?} is not verbatim from {FACT_SOURCE}"
    );
    // Sources lists the cited Doc with its local path and the id it has in the seeded Drive.
    let seeded_id = demo
        .emulator
        .google()
        .find_child(&demo.drive_folder, "Customs Backlog Review")
        .expect("the Google Doc is seeded");
    let cited_file = indexed
        .files
        .iter()
        .find(|f| f.filename == cited)
        .expect("the cited name is indexed");
    assert_eq!(
        data.file(&cited_file.path).unwrap().origin["drive_id"],
        seeded_id.as_str()
    );
    let sources = &report[report.find("## Sources").expect("a Sources section")..];
    let entry = format!("`{}` (Drive id `{seeded_id}`)", cited_file.path);
    assert!(sources.contains(&entry), "{entry} not in:\n{sources}");

    // A second full run pays for nothing, uploads nothing and creates no Drive file.
    let before = demo.costly_counts();
    for (what, count) in &before {
        assert!(*count > 0, "the first run made no {what}: {before:#?}");
    }
    assert_eq!(before["files in the final-report folder"], 1);
    demo.run_pipeline().await;
    assert_eq!(demo.costly_counts(), before);
    let (_, again, _) = roots.upstream_final(dir.slug(), None).unwrap();
    assert_eq!(again.files, final_marker.files, "the same report");
    let receipt_again: UploadReceipt =
        serde_json::from_slice(&std::fs::read(&receipt_path).unwrap()).unwrap();
    assert_eq!(receipt_again.file_id, receipt.file_id);
}

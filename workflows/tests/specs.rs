//! The deployment specs are code: parse them and run every job's arguments through the real
//! binary's argument parser and `--dry-run` (validation of inputs, roots and configuration with no
//! network and no writes), with the values of the example inputs filled in.
//!
//! Each job is dry-run with its upstream stages present (small but valid stages written with the
//! shared contract), as it would find them in a real run. The job binaries are built by
//! `make build` (which `make test` runs first).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;

const JOBS: [&str; 4] = ["setup", "vectorize", "pipeline", "upload"];
const SLUG: &str = "acme_logistics_gmbh";
/// What Argo's `{{workflow.name}}` (the template's default run_id) becomes in a run.
const ARGO_RUN_ID: &str = "report-pipeline-x7k2p";

/// Writes a small, valid stage (files + marker) produced by `job` under `root`.
fn write_stage(root: &Path, job: &str, run_id: &str) {
    use shared::layout::{CompanyDir, Stage};
    use shared::markers::{FileRecord, Marker};
    use shared::records::{DataDetails, FinalDetails, IndexedFile, VectorRecord};
    let dir = CompanyDir::new(root, SLUG);
    let write = |rel: &str, bytes: &[u8]| {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
        FileRecord::of(&dir, rel).unwrap()
    };
    let (stage, files, details, marker_path) = match job {
        "setup" => {
            let submission = "debug/submission_20260101_000000_r1.json";
            let files = vec![
                write(submission, b"{}"),
                write("data/notes.md", b"# Notes\n"),
            ];
            let details = DataDetails {
                submission: submission.into(),
                source: "local".into(),
                skipped: vec![],
            };
            (
                Stage::Data,
                files,
                serde_json::to_value(details).unwrap(),
                dir.marker(Stage::Data, ""),
            )
        }
        "vectorize" => {
            let record = VectorRecord {
                run_id: "r1".into(),
                vector_store_id: Some("vs_dry_run".into()),
                files: vec![IndexedFile {
                    path: "data/notes.md".into(),
                    file_id: "file-dry-run".into(),
                    filename: "notes.md".into(),
                    status: "completed".into(),
                    last_error: None,
                }],
                counts: [("completed".to_string(), 1), ("total".to_string(), 1)].into(),
            };
            let files = vec![write(
                "vector_ids/vector_20260101_000000.json",
                &serde_json::to_vec(&record).unwrap(),
            )];
            (
                Stage::Vectors,
                files,
                serde_json::to_value(record).unwrap(),
                dir.marker(Stage::Vectors, ""),
            )
        }
        "pipeline" => {
            let report = format!("final/FINAL_REPORT_{SLUG}_20260101_000000.md");
            let files = vec![write(&report, b"# Report\n")];
            let details = FinalDetails {
                report,
                model_set: "gpt5".into(),
                use_cases_count: 7,
                ..Default::default()
            };
            (
                Stage::Final,
                files,
                serde_json::to_value(details).unwrap(),
                dir.marker(Stage::Final, "20260101_000000"),
            )
        }
        other => panic!("{other} produces no stage a job reads"),
    };
    Marker {
        stage: stage.as_str().into(),
        run_id: run_id.into(),
        slug: SLUG.into(),
        job: job.into(),
        job_version: "test".into(),
        started: chrono::Utc::now(),
        finished: chrono::Utc::now(),
        fingerprint: "spec-test".into(),
        files,
        metrics: Default::default(),
        details,
    }
    .write(&marker_path)
    .unwrap();
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn binary(job: &str) -> PathBuf {
    // target/<profile>/deps/specs-<hash> → target/<profile>/<job>
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join(job);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` (make build) first",
        path.display()
    );
    path
}

fn yaml(relative: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(relative)).unwrap();
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{relative} is not valid YAML: {e}"))
}

fn example_inputs() -> BTreeMap<String, String> {
    let Value::Mapping(map) = yaml("workflows/paperspace/inputs.example.yaml") else {
        panic!("inputs must be a mapping")
    };
    map.into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                other => serde_yaml::to_string(&other).unwrap().trim().to_string(),
            };
            (k.as_str().unwrap().to_string(), v)
        })
        .collect()
}

/// Runs `job` with `args` plus `--dry-run` and asserts it validated and wrote nothing.
fn dry_run(job: &str, args: &[String], envs: &BTreeMap<String, String>, watched: &Path) {
    let before = tree(watched);
    let output = Command::new(binary(job))
        .args(args)
        .arg("--dry-run")
        .env_clear()
        .env("LOG_FORMAT", "json")
        .envs(envs)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{job} {args:?} --dry-run failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(tree(watched), before, "{job} --dry-run wrote files");
}

fn tree(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The secrets a deployment injects, as fakes: a freshly generated service account key (written
/// under `dir`) and obviously fake ids.
fn secrets_env(dir: &Path) -> BTreeMap<String, String> {
    let key = dir.join("service-account.json");
    emulator::google::GoogleState::new("http://127.0.0.1:9")
        .write_service_account_key(&key)
        .unwrap();
    [
        ("OPENAI_API_KEY", "test-openai-key"),
        ("GDRIVE_CREDENTIALS_PATH", key.to_str().unwrap()),
        (
            "GDRIVE_FINAL_REPORT_FOLDER",
            "final-reports-folder-0000000000001",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn paperspace_workflow_args_pass_the_real_parsers() {
    let spec = yaml("workflows/paperspace/pipeline-workflow.yaml");
    let inputs = example_inputs();
    let declared = spec["inputs"].as_mapping().expect("workflow inputs");
    for key in inputs.keys() {
        assert!(
            declared.contains_key(key.as_str()),
            "example input {key} is not a workflow input"
        );
    }
    assert!(
        !declared["company_name"]["optional"]
            .as_bool()
            .unwrap_or(false),
        "company_name is required"
    );

    // /inputs and /outputs of the containers, made real: per-key input files plus one volume
    // directory per upstream job, exactly as Paperspace mounts them.
    let tmp = tempfile::tempdir().unwrap();
    let inputs_dir = tmp.path().join("inputs");
    let outputs_dir = tmp.path().join("outputs");
    std::fs::create_dir_all(&inputs_dir).unwrap();
    for (key, value) in &inputs {
        std::fs::write(inputs_dir.join(key), value).unwrap();
    }
    let secrets = tempfile::tempdir().unwrap();
    let envs = secrets_env(secrets.path());
    let jobs = spec["jobs"].as_mapping().unwrap();
    assert_eq!(jobs.len(), 4);
    let mut previous: Option<&str> = None;
    for job in JOBS {
        let def = &spec["jobs"][job];
        assert_eq!(def["uses"].as_str(), Some("container@v1"), "{job}");
        assert!(def["timeout"].as_u64().is_some(), "{job} has no timeout");
        if let Some(prev) = previous {
            assert!(
                def["needs"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .any(|n| n.as_str() == Some(prev)),
                "{job} must need {prev}"
            );
        }
        previous = Some(job);
        let image = def["with"]["image"].as_str().unwrap();
        assert!(image.contains(job), "{job} runs image {image}");
        let args: Vec<String> = def["with"]["args"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            args[0],
            format!("/usr/local/bin/{job}"),
            "the binary's path comes first"
        );
        for (name, source) in def["inputs"].as_mapping().unwrap() {
            let (name, source) = (name.as_str().unwrap(), source.as_str().unwrap());
            if let Some(upstream) = source.strip_suffix(&format!(".outputs.{name}")) {
                assert!(JOBS.contains(&upstream), "{job} reads {source}");
                write_stage(&inputs_dir.join(name), upstream, "r1");
            } else {
                assert_eq!(source, format!("workflow.inputs.{name}"), "{job}");
            }
        }
        for (name, out) in def["outputs"].as_mapping().unwrap() {
            assert_eq!(out["type"].as_str(), Some("volume"), "{job}");
            std::fs::create_dir_all(outputs_dir.join(name.as_str().unwrap())).unwrap();
        }
        let args: Vec<String> = args[1..]
            .iter()
            .map(|a| {
                a.replace("/inputs", inputs_dir.to_str().unwrap())
                    .replace("/outputs", outputs_dir.to_str().unwrap())
            })
            .collect();
        dry_run(job, &args, &envs, tmp.path());
    }
}

#[test]
fn argo_template_args_pass_the_real_parsers() {
    let template = yaml("workflows/argo/report-pipeline.yaml");
    assert_eq!(template["kind"].as_str(), Some("WorkflowTemplate"));
    assert!(template["spec"]["activeDeadlineSeconds"].as_u64().is_some());
    assert_eq!(
        template["spec"]["securityContext"]["runAsNonRoot"].as_bool(),
        Some(true)
    );
    let job_template = template["spec"]["templates"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|t| t["name"].as_str() == Some("job"))
        .expect("the job template");
    assert!(
        job_template["retryStrategy"]["expression"]
            .as_str()
            .unwrap()
            .contains('4'),
        "retries external failures"
    );
    let steps: Vec<&str> = template["spec"]["templates"][0]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| {
            s[0]["arguments"]["parameters"][0]["value"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(steps, JOBS);

    // Parameter defaults of the template, overridden by the example inputs.
    let mut values: BTreeMap<String, String> = template["spec"]["arguments"]["parameters"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["value"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    values.extend(example_inputs());
    let tmp = tempfile::tempdir().unwrap();
    let outputs = tmp.path().join("outputs");
    std::fs::create_dir_all(&outputs).unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let container = &job_template["container"];
    for (k, job) in JOBS.into_iter().enumerate() {
        if k > 0 {
            write_stage(&outputs, JOBS[k - 1], ARGO_RUN_ID);
        }
        let fill = |s: &str| -> String {
            let mut s = s
                .replace("{{inputs.parameters.job}}", job)
                .replace("/outputs", outputs.to_str().unwrap());
            for (key, value) in &values {
                s = s.replace(&format!("{{{{workflow.parameters.{key}}}}}"), value);
            }
            s.replace("{{workflow.name}}", ARGO_RUN_ID)
        };
        let command = fill(container["command"][0].as_str().unwrap());
        assert_eq!(command, format!("/usr/local/bin/{job}"));
        let args: Vec<String> = container["args"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| fill(a.as_str().unwrap()))
            .collect();
        let mut envs = secrets_env(secrets.path());
        for var in container["env"].as_sequence().unwrap() {
            if let Some(value) = var["value"].as_str() {
                let value = fill(value);
                assert!(!value.contains("{{"), "unfilled placeholder in {value}");
                envs.insert(var["name"].as_str().unwrap().to_string(), value);
            }
        }
        dry_run(job, &args, &envs, tmp.path());
    }
}

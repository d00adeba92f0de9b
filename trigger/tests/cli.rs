//! The `trigger` binary against the emulator's Paperspace routes, run exactly as a user runs it:
//! flags and environment only; assertions on exit codes, output and what the API received.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use emulator::faults::{FaultError, FaultSpec, Service};
use emulator::paperspace::Outcome;
use emulator::{Config, Emulator};
use serde_json::Value;

const KEY: &str = "test-paperspace-key";
const WORKFLOW: &str = "wf-report";

const SPEC: &str = "\
inputs:
  company_name: {type: string}
  company_slug: {type: string}
  use_cases_count: {type: string}
  readiness_score: {type: string}
  run_id: {type: string}
jobs:
  setup:
    uses: container@v1
    with: {image: 'report/setup:test', args: ['/setup']}
  upload:
    uses: container@v1
    needs: [setup]
    with: {image: 'report/upload:test', args: ['/upload']}
";

struct Env {
    emulator: Emulator,
    dir: tempfile::TempDir,
}

impl Env {
    async fn start() -> Env {
        let emulator = Emulator::start(Config::new().phase_delay(Duration::from_millis(50)))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("spec.yaml"), SPEC).unwrap();
        Env { emulator, dir }
    }

    fn spec(&self) -> String {
        self.dir.path().join("spec.yaml").display().to_string()
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_trigger"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_clear()
            .env("PAPERSPACE_API_KEY", KEY)
            .env("PAPERSPACE_API_URL", self.emulator.paperspace_base())
            .env("PAPERSPACE_WORKFLOW_ID", WORKFLOW)
            .env("PAPERSPACE_PROJECT_ID", "pr-test");
        cmd
    }

    async fn trigger(&self, args: &[&str]) -> Output {
        self.command(args).output().await.unwrap()
    }

    fn runs(&self) -> Vec<Value> {
        self.emulator.paperspace().dump()["runs"]
            .as_array()
            .unwrap()
            .clone()
    }

    fn paperspace_requests(&self) -> usize {
        self.emulator
            .requests()
            .entries()
            .iter()
            .filter(|e| e.service == "paperspace")
            .count()
    }

    async fn start_run(&self, company: &str) -> Value {
        let out = self
            .trigger(&[
                "--json",
                "run",
                "--spec",
                &self.spec(),
                "--company-name",
                company,
            ])
            .await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn one_line(stderr: &[u8]) -> String {
    let text = text(stderr);
    assert_eq!(text.trim_end().lines().count(), 1, "not one line: {text}");
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn run_sends_the_spec_and_the_validated_inputs() {
    let env = Env::start().await;
    let out = env
        .trigger(&[
            "run",
            "--spec",
            &env.spec(),
            "--company-name",
            "Acme Rockets",
            "--readiness-score",
            "75 %",
            "--use-cases-count",
            "3",
            "--run-id",
            "acme-2026",
        ])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("started run 1"), "{stdout}");
    assert!(stdout.contains("run_id acme-2026"), "{stdout}");
    assert!(
        stdout.contains("/projects/pr-test/workflows/wf-report/runs/1"),
        "{stdout}"
    );

    let runs = env.runs();
    assert_eq!(runs.len(), 1);
    let inputs = &runs[0]["inputs"];
    let value = |key: &str| inputs[key]["with"]["value"].as_str().unwrap().to_string();
    assert_eq!(value("company_name"), "Acme Rockets");
    assert_eq!(value("company_slug"), "acme_rockets");
    assert_eq!(value("readiness_score"), "75");
    assert_eq!(value("use_cases_count"), "3");
    assert_eq!(value("run_id"), "acme-2026");
    assert_eq!(inputs["run_id"]["type"], "string");
    // Only the inputs the spec declares are sent.
    assert!(inputs.get("model_set").is_none(), "{inputs}");
    let spec: Value = serde_yaml::from_str(SPEC).unwrap();
    assert_eq!(runs[0]["spec"], spec);
}

#[tokio::test(flavor = "multi_thread")]
async fn run_json_reports_a_generated_run_id_that_the_run_carries() {
    let env = Env::start().await;
    let started = env.start_run("Beta GmbH").await;
    assert_eq!(started["run"], 1);
    assert_eq!(started["company_slug"], "beta_gmbh");
    let run_id = started["run_id"].as_str().unwrap();
    assert!(shared::inputs::is_valid_run_id(run_id), "{run_id}");
    let runs = env.runs();
    assert_eq!(runs[0]["inputs"]["run_id"]["with"]["value"], run_id);
    assert_eq!(runs[0]["meta"]["runId"], run_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_inputs_are_refused_before_any_request() {
    let env = Env::start().await;
    let out = env
        .trigger(&[
            "run",
            "--spec",
            &env.spec(),
            "--company-name",
            "Acme",
            "--use-cases-count",
            "21",
        ])
        .await;
    assert_eq!(out.status.code(), Some(2));
    let err = one_line(&out.stderr);
    assert!(
        err.contains("use_cases_count") && err.contains("21") && err.contains("1 to 20"),
        "{err}"
    );
    assert_eq!(env.paperspace_requests(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_api_key_is_one_line_and_exit_2() {
    let env = Env::start().await;
    let out = env
        .command(&["run", "--spec", &env.spec(), "--company-name", "Acme"])
        .env_remove("PAPERSPACE_API_KEY")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(one_line(&out.stderr).contains("PAPERSPACE_API_KEY"));
    assert_eq!(env.paperspace_requests(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_api_key_fails_at_once_with_exit_4() {
    let env = Env::start().await;
    let out = env
        .command(&["status", "1"])
        .env("PAPERSPACE_API_KEY", "not-the-key")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let err = one_line(&out.stderr);
    assert!(err.contains("401") && !err.contains("not-the-key"), "{err}");
    assert_eq!(env.paperspace_requests(), 1, "a 401 is not retried");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_shows_the_run_and_its_jobs_and_honours_retry_after() {
    let env = Env::start().await;
    let run = env.start_run("Acme").await;
    env.emulator.faults().set(
        Service::Paperspace,
        FaultSpec::first(
            1,
            FaultError::RateLimit {
                retry_after_secs: 1,
            },
        ),
    );
    let started = Instant::now();
    let out = env.trigger(&["--json", "status", "1"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(started.elapsed() >= Duration::from_millis(950));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["run"], 1);
    assert_eq!(status["workflow_id"], WORKFLOW);
    // Read from the run's inputs, which the API returns (not from its meta).
    assert_eq!(status["run_id"], run["run_id"]);
    let phase = status["phase"].as_str().unwrap();
    assert!(
        ["Pending", "Running", "Succeeded"].contains(&phase),
        "{phase}"
    );
    let jobs: Vec<&str> = status["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j[0].as_str().unwrap())
        .collect();
    assert_eq!(jobs, vec!["setup", "upload"]);
    assert_eq!(
        env.emulator
            .requests()
            .count("GET", "/paperspace/v1/workflows/{workflow_id}/runs/{run}"),
        2
    );
}

async fn wait_for(env: &Env, timeout: &str) -> (Output, Duration) {
    let started = Instant::now();
    let out = env
        .trigger(&[
            "wait",
            "1",
            "--timeout",
            timeout,
            "--poll-interval",
            "20ms",
            "--max-poll-interval",
            "50ms",
        ])
        .await;
    (out, started.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_exits_0_on_success() {
    let env = Env::start().await;
    env.start_run("Acme").await;
    let (out, _) = wait_for(&env, "10s").await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("run 1 Succeeded"));
    assert_eq!(env.runs()[0]["phase"], "Succeeded");
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_exits_10_on_failure_and_11_on_cancellation() {
    let env = Env::start().await;
    env.emulator
        .paperspace()
        .set_outcome_for_new_runs(Outcome::Failed);
    env.start_run("Acme").await;
    let (out, _) = wait_for(&env, "10s").await;
    assert_eq!(out.status.code(), Some(10), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("failed"));
    assert!(
        text(&out.stdout).contains("exit code 1"),
        "the run's message is shown"
    );

    env.emulator
        .paperspace()
        .set_run_outcome(WORKFLOW, 1, Outcome::Cancelled);
    let (out, _) = wait_for(&env, "10s").await;
    assert_eq!(out.status.code(), Some(11), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn wait_exits_12_when_the_timeout_passes_first() {
    let env = Env::start().await;
    env.emulator
        .paperspace()
        .set_outcome_for_new_runs(Outcome::RunsForever);
    env.start_run("Acme").await;
    let (out, elapsed) = wait_for(&env, "400ms").await;
    assert_eq!(out.status.code(), Some(12), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("did not finish within 400ms"));
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert_eq!(env.runs()[0]["phase"], "Running", "the run goes on");
}

#[tokio::test(flavor = "multi_thread")]
async fn logs_prints_each_jobs_lines() {
    let env = Env::start().await;
    env.start_run("Acme").await;
    wait_for(&env, "10s").await;
    let out = env.trigger(&["logs", "1"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("Pulling image report/setup:test"),
        "{stdout}"
    );
    assert!(stdout.contains("[upload] Job upload succeeded"), "{stdout}");
}

async fn batch(env: &Env, file: &Path, extra: &[&str]) -> Output {
    let file = file.display().to_string();
    let spec = env.spec();
    let mut args = vec!["--json", "batch", file.as_str(), "--spec", spec.as_str()];
    args.extend_from_slice(extra);
    env.trigger(&args).await
}

fn write_batch(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("companies.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_batch_starts_no_duplicates() {
    let env = Env::start().await;
    let file = write_batch(
        env.dir.path(),
        "- company_name: Acme\n  use_cases_count: 3\n- company_name: Beta\n- company_name: Gamma\n  readiness_score: 80%\n",
    );
    let out = batch(&env, &file, &["--concurrency", "2"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let first: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(first.iter().all(|r| r["result"] == "started"), "{first:?}");
    assert_eq!(env.runs().len(), 3);
    let slugs: Vec<String> = env
        .runs()
        .iter()
        .map(|r| {
            r["inputs"]["company_slug"]["with"]["value"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for slug in ["acme", "beta", "gamma"] {
        assert!(slugs.contains(&slug.to_string()), "{slugs:?}");
    }
    assert!(env.dir.path().join("companies.yaml.state.json").is_file());

    // Retried as is: every company is recognised from the state file.
    let out = batch(&env, &file, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let second: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        second.iter().all(|r| r["result"] == "already_started"),
        "{second:?}"
    );
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(a["run"], b["run"]);
    }
    assert_eq!(env.runs().len(), 3);

    // Even with the state file lost (a crash before it was written), the runs' inputs (with
    // the run ids derived from the entries' keys) keep the retry from starting duplicates.
    std::fs::remove_file(env.dir.path().join("companies.yaml.state.json")).unwrap();
    let out = batch(&env, &file, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let third: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        third.iter().all(|r| r["result"] == "already_started"),
        "{third:?}"
    );
    assert_eq!(env.runs().len(), 3);

    // A company added to the file is started; the others are not.
    std::fs::write(
        &file,
        "- company_name: Acme\n  use_cases_count: 3\n- company_name: Beta\n- company_name: Gamma\n  readiness_score: 80%\n- company_name: Delta\n",
    )
    .unwrap();
    let out = batch(&env, &file, &[]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(env.runs().len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_with_one_bad_entry_starts_nothing() {
    let env = Env::start().await;
    let file = write_batch(
        env.dir.path(),
        "- company_name: Acme\n- company_name: Beta\n  readiness_category: Wizard\n",
    );
    let out = env
        .trigger(&["batch", &file.display().to_string(), "--spec", &env.spec()])
        .await;
    assert_eq!(out.status.code(), Some(2));
    let err = one_line(&out.stderr);
    assert!(
        err.contains("entry 2") && err.contains("readiness_category"),
        "{err}"
    );
    assert_eq!(env.paperspace_requests(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn help_documents_the_exit_codes() {
    let env = Env::start().await;
    let out = env.trigger(&["--help"]).await;
    let help = text(&out.stdout);
    for line in [
        "10  `wait`: the run failed",
        "11  `wait`: the run was cancelled",
        "12  `wait`: the timeout",
    ] {
        assert!(help.contains(line), "{help}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_with_the_repository_spec_sends_every_declared_input_and_nothing() {
    let env = Env::start().await;
    let spec = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../workflows/paperspace/pipeline-workflow.yaml"
    );
    let out = env
        .command(&["run", "--dry-run", "--spec", spec, "--company-name", "Acme"])
        .env_remove("PAPERSPACE_API_KEY")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    let declared: Vec<&String> = body["spec"]["inputs"].as_object().unwrap().keys().collect();
    let sent: Vec<&String> = body["inputs"].as_object().unwrap().keys().collect();
    assert_eq!(sent, declared);
    assert_eq!(body["inputs"]["company_name"]["with"]["value"], "Acme");
    assert_eq!(env.paperspace_requests(), 0);
}

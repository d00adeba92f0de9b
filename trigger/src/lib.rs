//! `trigger`: starts report-pipeline runs on Paperspace Workflows and watches them (SPEC §10).
//!
//! `run` validates the §3 inputs with the same code as the jobs BEFORE any network call, sends
//! the workflow spec from `workflows/paperspace/` with the inputs to `POST /workflows/{id}/runs`,
//! and prints the run's sequence number, its pipeline run id and a console link. `status`,
//! `wait` and `logs` take that sequence number; `wait` exits 0 only when the run succeeded
//! (codes in [`wait`]); `batch` starts one run per company without ever starting two for the
//! same entry (see [`batch`]).
//!
//! The library is also what the webhook server uses to start runs ([`start::start_run`]).
//! Standard output carries the command's result only (text, or JSON with `--json`); logs go to
//! standard error.

pub mod api;
pub mod batch;
mod frame;
pub mod spec;
pub mod start;
pub mod wait;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde::Serialize;
use shared::Result;
use shared::http::HttpSettings;
use shared::inputs::InputArgs;

pub use frame::main;

use crate::api::{ApiArgs, PaperspaceClient, WorkflowRun};
use crate::start::{RunMeta, StartedRun};
use crate::wait::{EXIT_CANCELLED, EXIT_FAILED, EXIT_TIMED_OUT, Polling};

const EXIT_CODES: &str = "\
Exit codes:
  0   success (for `wait`: the run succeeded)
  1   internal error
  2   bad input: invalid run inputs, missing PAPERSPACE_API_KEY or workflow id, unreadable spec
  4   the Paperspace API failed or refused the request (after retries)
  5   the batch state file cannot be written
  10  `wait`: the run failed
  11  `wait`: the run was cancelled
  12  `wait`: the timeout passed before the run finished (the run goes on)

Environment: PAPERSPACE_API_KEY (required except for `run --dry-run`), PAPERSPACE_API_URL,
PAPERSPACE_WORKFLOW_ID, PAPERSPACE_PROJECT_ID.";

/// Start and watch report-pipeline runs on Paperspace Workflows.
#[derive(Parser, Debug)]
#[command(name = "trigger", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Print the result as one JSON document (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start one run with the §3 inputs (flags, env, --inputs-file or --company-info).
    Run(Box<RunArgs>),
    /// Show a run's phase and its jobs' phases.
    Status {
        /// The run's sequence number (printed by `run`).
        run: u64,
    },
    /// Wait until a run finishes; the exit code says how it ended.
    Wait(WaitArgs),
    /// Print a run's logs, job by job.
    Logs {
        /// The run's sequence number.
        run: u64,
    },
    /// Start one run per company listed in FILE (a YAML or JSON list of input maps). A retried
    /// batch skips companies already started (state in FILE.state.json).
    Batch(BatchArgs),
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub inputs: InputArgs,
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Validate and print the request that would be sent; send nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(clap::Args, Debug)]
pub struct SpecArgs {
    /// The workflow spec sent with each run [default: workflows/paperspace/pipeline-workflow.yaml].
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct WaitArgs {
    /// The run's sequence number.
    pub run: u64,
    /// Give up after this long (e.g. 90s, 10m, 2h); exit code 12.
    #[arg(long, value_parser = wait::parse_duration, default_value = "2h")]
    pub timeout: Duration,
    /// First delay between polls; it grows by half each poll.
    #[arg(long, value_parser = wait::parse_duration, default_value = "5s")]
    pub poll_interval: Duration,
    /// Longest delay between polls.
    #[arg(long, value_parser = wait::parse_duration, default_value = "60s")]
    pub max_poll_interval: Duration,
}

#[derive(clap::Args, Debug)]
pub struct BatchArgs {
    /// YAML or JSON list of company inputs (the keys of an inputs file).
    pub file: PathBuf,
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Runs started at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

fn http_settings(concurrency: usize) -> HttpSettings {
    HttpSettings {
        request_timeout: Duration::from_secs(60),
        max_concurrency: concurrency,
        ..HttpSettings::default()
    }
}

/// Runs the command; `Ok` carries the exit code (non-zero only for `wait`'s outcomes).
pub async fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Run(args) => run_one(&cli.api, *args, cli.json).await,
        Command::Status { run } => {
            let client = cli.api.connect(&http_settings(1))?;
            let found = client.get_run(run).await?;
            print_status(&client, &found, cli.json);
            Ok(0)
        }
        Command::Wait(args) => {
            wait::check_timeout(args.timeout)?;
            let client = cli.api.connect(&http_settings(1))?;
            let polling = Polling {
                first: args.poll_interval,
                max: args.max_poll_interval.max(args.poll_interval),
            };
            let waited = wait::wait(&client, args.run, args.timeout, polling).await?;
            let code = waited.exit_code();
            print_waited(&client, args.run, &waited, code, args.timeout, cli.json);
            Ok(code)
        }
        Command::Logs { run } => {
            let client = cli.api.connect(&http_settings(1))?;
            let logs = client.logs(run).await?;
            if cli.json {
                print_json(&logs);
            } else {
                for job in &logs {
                    println!("== {} ({})", job.name, job.phase);
                    for line in &job.logs {
                        println!("{} [{}] {}", line.dt_created, job.name, line.message);
                    }
                }
            }
            Ok(0)
        }
        Command::Batch(args) => run_batch(&cli.api, args, cli.json).await,
    }
}

async fn run_one(api: &ApiArgs, args: RunArgs, json: bool) -> Result<u8> {
    let resolution = args.inputs.resolve()?;
    let inputs = resolution.resolved;
    shared::logging::context().set_company(&inputs.company_slug);
    let spec = spec::load_spec(&spec::spec_path(&args.spec.spec))?;
    let run_id = start::run_id_for(&inputs);
    let meta = RunMeta {
        started_by: "trigger",
        ..RunMeta::default()
    };
    if args.dry_run {
        let body = start::request_body(&spec, &inputs, &run_id, &meta)?;
        print_json(&body);
        return Ok(0);
    }
    let client = api.connect(&http_settings(1))?;
    shared::logging::context().set_run_id(&run_id);
    let started = start::start_run(&client, &spec, &inputs, &run_id, &meta).await?;
    print_started(&started, json);
    Ok(0)
}

async fn run_batch(api: &ApiArgs, args: BatchArgs, json: bool) -> Result<u8> {
    let workflow_id = api.workflow_id()?.to_string();
    let entries = batch::read_entries(&args.file, &workflow_id)?;
    let spec = spec::load_spec(&spec::spec_path(&args.spec.spec))?;
    let concurrency = usize::from(args.concurrency);
    let client = api.connect(&http_settings(concurrency))?;
    let state_file = batch::state_path(&args.file);
    let results = batch::run_batch(&client, &spec, entries, &state_file, concurrency).await?;
    if json {
        print_json(&results);
    } else {
        for r in &results {
            match (r.result, r.run, &r.error) {
                (_, Some(run), _) => println!(
                    "{:<32} {:<16} run {run}  {}",
                    r.company_slug,
                    r.result,
                    r.console_url.as_deref().unwrap_or_default()
                ),
                (_, None, error) => println!(
                    "{:<32} {:<16} {}",
                    r.company_slug,
                    r.result,
                    error.as_deref().unwrap_or_default()
                ),
            }
        }
    }
    let failed = results.iter().filter(|r| r.result == "failed").count();
    if failed > 0 {
        return Err(shared::Error::external(format!(
            "{failed} of {} companies could not be started; run the same command again to \
             retry them (companies already started are skipped)",
            results.len()
        )));
    }
    Ok(0)
}

fn print_json(value: &impl Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => tracing::error!("cannot encode the result as JSON: {e}"),
    }
}

fn print_started(started: &StartedRun, json: bool) {
    if json {
        print_json(started);
    } else {
        println!(
            "started run {} of workflow {} for {} (run_id {})",
            started.run, started.workflow_id, started.company_slug, started.run_id
        );
        println!("{}", started.console_url);
    }
}

/// The `status` / `wait` summary of a run.
#[derive(Serialize)]
struct Summary<'a> {
    workflow_id: String,
    run: u64,
    uuid: &'a str,
    phase: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<&'a str>,
    jobs: Vec<(&'a str, &'a str)>,
    console_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    timed_out: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<u8>,
}

fn summary<'a>(client: &PaperspaceClient, run: &'a WorkflowRun) -> Summary<'a> {
    let status = run.status.as_ref();
    Summary {
        workflow_id: client.workflow_id().to_string(),
        run: run.id,
        uuid: &run.uuid,
        phase: run.phase(),
        message: status.and_then(|s| s.message.as_deref()),
        run_id: run.input("run_id"),
        jobs: status
            .map(|s| {
                s.jobs
                    .iter()
                    .map(|(name, job)| (name.as_str(), job.phase.as_str()))
                    .collect()
            })
            .unwrap_or_default(),
        console_url: client.console_link(run.id),
        timed_out: None,
        exit_code: None,
    }
}

fn print_summary(summary: Summary<'_>, json: bool) {
    if json {
        print_json(&summary);
        return;
    }
    let message = summary
        .message
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    println!("run {} {}{message}", summary.run, summary.phase);
    for (name, phase) in &summary.jobs {
        println!("  {name:<16} {phase}");
    }
    println!("{}", summary.console_url);
}

fn print_status(client: &PaperspaceClient, run: &WorkflowRun, json: bool) {
    print_summary(summary(client, run), json);
}

fn print_waited(
    client: &PaperspaceClient,
    sequence: u64,
    waited: &wait::Waited,
    code: u8,
    timeout: Duration,
    json: bool,
) {
    let verdict = match code {
        0 => "succeeded".to_string(),
        EXIT_FAILED => "failed".to_string(),
        EXIT_CANCELLED => "was cancelled".to_string(),
        EXIT_TIMED_OUT => format!(
            "did not finish within {}; it goes on",
            humantime::format_duration(timeout)
        ),
        other => format!("ended with exit code {other}"),
    };
    if !json {
        eprintln!("trigger: run {sequence} {verdict}");
    }
    match &waited.run {
        Some(run) => print_summary(
            Summary {
                timed_out: Some(waited.timed_out),
                exit_code: Some(code),
                ..summary(client, run)
            },
            json,
        ),
        None if json => print_json(&serde_json::json!({
            "workflow_id": client.workflow_id(),
            "run": sequence,
            "timed_out": true,
            "exit_code": code,
        })),
        None => {}
    }
}

//! The `emulator` binary: serves the OpenAI, Google and Paperspace emulations on one port.
//!
//! stdout carries only machine-readable lines: the base URL first, then `drive_folder_id=ID`
//! and `final_folder_id=ID` when asked for; logs go to stderr. Every flag is documented in
//! README.md.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use emulator::faults::{FaultSpec, Service};
use emulator::openai::FileErrorCode;
use emulator::{Config, Emulator};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Offline emulator of the OpenAI, Google Drive and Paperspace APIs"
)]
struct Args {
    /// Interface to bind (0.0.0.0 inside a container).
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to bind; 0 picks a free port (the first stdout line says which).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// URL other processes reach the emulator at (becomes the key file's token_uri).
    #[arg(long)]
    public_url: Option<String>,
    /// The only OpenAI API key accepted.
    #[arg(
        long,
        env = "EMULATOR_OPENAI_API_KEY",
        default_value = "test-openai-key",
        hide_env_values = true
    )]
    openai_api_key: String,
    /// The only Paperspace API key accepted.
    #[arg(
        long,
        env = "EMULATOR_PAPERSPACE_API_KEY",
        default_value = "test-paperspace-key",
        hide_env_values = true
    )]
    paperspace_api_key: String,
    /// Milliseconds a vector-store file stays in_progress.
    #[arg(long, default_value_t = 50)]
    file_processing_ms: u64,
    /// Milliseconds a Paperspace workflow run stays in each phase.
    #[arg(long, default_value_t = 50)]
    phase_delay_ms: u64,
    /// Write a service account key file (JSON) for the emulated Google here.
    #[arg(long, value_name = "PATH")]
    write_service_account_key: Option<PathBuf>,
    /// Seed Drive from this directory; prints `drive_folder_id=ID`.
    #[arg(long, value_name = "DIR")]
    seed_drive: Option<PathBuf>,
    /// Create an empty Drive folder with this name; prints `final_folder_id=ID`.
    #[arg(long, value_name = "NAME")]
    final_folder: Option<String>,
    /// Fault rule for one service: SERVICE=JSON, e.g.
    /// `openai={"error":{"kind":"rate_limit","retry_after_secs":1},"every_nth":3}`.
    #[arg(long = "fault", value_name = "SERVICE=JSON", value_parser = parse_fault)]
    faults: Vec<(Service, FaultSpec)>,
    /// A filename whose vector-store processing fails: NAME or NAME=CODE
    /// (CODE: server_error (default), invalid_file, unsupported_file).
    #[arg(long = "failing-file", value_name = "NAME[=CODE]", value_parser = parse_failing_file)]
    failing_files: Vec<(String, FileErrorCode)>,
    /// Make model outputs cite a filename that exists in no vector store.
    #[arg(long)]
    fabricate_citations: bool,
}

fn parse_fault(text: &str) -> Result<(Service, FaultSpec), String> {
    let (service, spec) = text
        .split_once('=')
        .ok_or_else(|| "expected SERVICE=JSON".to_string())?;
    let service: Service = service.trim().parse()?;
    let spec: FaultSpec =
        serde_json::from_str(spec).map_err(|error| format!("invalid fault JSON: {error}"))?;
    Ok((service, spec))
}

fn parse_failing_file(text: &str) -> Result<(String, FileErrorCode), String> {
    match text.rsplit_once('=') {
        Some((name, code)) => {
            let code: FileErrorCode = serde_json::from_value(serde_json::Value::String(
                code.trim().to_string(),
            ))
            .map_err(|_| {
                format!(
                    "unknown error code {code:?} (server_error, invalid_file, unsupported_file)"
                )
            })?;
            Ok((name.to_string(), code))
        }
        None => Ok((text.to_string(), FileErrorCode::ServerError)),
    }
}

fn config_from(args: &Args) -> Config {
    let mut config = Config::new()
        .host(args.host)
        .port(args.port)
        .openai_api_key(&args.openai_api_key)
        .paperspace_api_key(&args.paperspace_api_key)
        .file_processing_delay(Duration::from_millis(args.file_processing_ms))
        .phase_delay(Duration::from_millis(args.phase_delay_ms))
        .fabricate_citations(args.fabricate_citations);
    if let Some(url) = &args.public_url {
        config = config.public_url(url);
    }
    if let Some(dir) = &args.seed_drive {
        config = config.seed_drive(dir);
    }
    for (service, spec) in &args.faults {
        config = config.fault(*service, spec.clone());
    }
    for (name, code) in &args.failing_files {
        config = config.failing_file(name, *code);
    }
    config
}

async fn run(args: Args) -> std::io::Result<()> {
    let emulator = Emulator::start(config_from(&args)).await?;
    if let Some(path) = &args.write_service_account_key {
        emulator.google().write_service_account_key(path)?;
    }
    let mut lines = vec![emulator.url()];
    if let Some(id) = emulator.seeded_folder_id() {
        lines.push(format!("drive_folder_id={id}"));
    }
    if let Some(name) = &args.final_folder {
        lines.push(format!(
            "final_folder_id={}",
            emulator.google().create_folder(name, None)
        ));
    }
    let mut stdout = std::io::stdout().lock();
    for line in lines {
        writeln!(stdout, "{line}")?;
    }
    stdout.flush()?;
    drop(stdout);
    tracing::info!(url = %emulator.url(), "emulator ready");
    shutdown_signal().await;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM (what `docker stop` sends).
async fn shutdown_signal() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match terminate.as_mut() {
                Some(signal) => { signal.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("emulator: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("emulator: {error}");
            ExitCode::FAILURE
        }
    }
}

//! `webhook`: an always-on endpoint that turns a form submission into a pipeline run (SPEC §10).
//!
//! `POST /submissions` takes the §3 profile fields as JSON or multipart (with documents),
//! authenticates the caller (API key, or a Standard Webhooks HMAC signature with a 5-minute
//! timestamp tolerance and replay refusal), enforces a body-size limit, a CORS allow-list and a
//! per-client rate limit, honours `Idempotency-Key`, validates the inputs with the jobs' own
//! code, stores the documents in a new Drive folder under `WEBHOOK_DRIVE_PARENT_FOLDER` (so the
//! run's `setup` job fetches them like any other), starts the run through the `trigger` library
//! and answers 202 with the run and a confirmation code. `GET /health` is for health checks.
//!
//! Invariants: the server refuses to start without authentication configured; a run that was
//! not started is never reported as accepted; no credential reaches a log line; all state
//! (rate limits, message ids, idempotency keys) is in memory and bounded.

pub mod auth;
pub mod drive;
pub mod error;
pub mod idempotency;
pub mod limits;
pub mod server;
pub mod submission;

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::HeaderValue;
use clap::Parser;
use drive_client::{DriveClient, DriveScope};
use shared::http::HttpSettings;
use shared::{Error, Result};
use trigger::api::ApiArgs;
use trigger::spec::{DEFAULT_SPEC_PATH, load_spec};

pub use server::{ServerConfig, Services, router};

use crate::drive::DriveTarget;
use crate::limits::RateLimit;

/// Serve pipeline-run submissions from web forms and other services.
///
/// Secrets come from the environment only: WEBHOOK_API_KEY (callers send it in X-API-Key) and/or
/// WEBHOOK_SECRET (`whsec_…`, Standard Webhooks signatures); PAPERSPACE_API_KEY; and for
/// documents the service account key (GDRIVE_CREDENTIALS_JSON, or a file at
/// GDRIVE_CREDENTIALS_PATH) with WEBHOOK_DRIVE_PARENT_FOLDER.
#[derive(Parser, Debug)]
#[command(name = "webhook", version, about, long_about)]
pub struct Cli {
    /// Address to listen on.
    #[arg(long, env = "WEBHOOK_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Comma-separated origins browsers may submit from, e.g. https://forms.example.com (no `*`).
    #[arg(long, env = "WEBHOOK_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Largest request body accepted, in bytes (documents included).
    #[arg(long, env = "WEBHOOK_MAX_BODY_BYTES", default_value_t = 25 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Submissions per minute per client address.
    #[arg(long, env = "WEBHOOK_RATE_LIMIT_PER_MINUTE", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_per_minute: u32,
    /// Submissions a client may send in a burst.
    #[arg(long, env = "WEBHOOK_RATE_LIMIT_BURST", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: u32,
    /// Rate-limit by the last X-Forwarded-For address (set behind exactly one proxy).
    #[arg(long, env = "WEBHOOK_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,
    /// Drive folder (URL or id) under which each submission's documents get a new folder.
    #[arg(long, env = "WEBHOOK_DRIVE_PARENT_FOLDER")]
    pub drive_parent_folder: Option<String>,
    /// The workflow spec sent with each run.
    #[arg(long, env = "PAPERSPACE_WORKFLOW_SPEC", default_value = DEFAULT_SPEC_PATH)]
    pub spec: PathBuf,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Checks the allow-list: exact `scheme://host[:port]` origins, never `*`.
pub fn parse_origins(origins: &[String]) -> Result<Vec<HeaderValue>> {
    origins
        .iter()
        .map(|o| o.trim().trim_end_matches('/'))
        .filter(|o| !o.is_empty())
        .map(|origin| {
            let shaped = (origin.starts_with("https://") || origin.starts_with("http://"))
                && !origin.contains('*')
                && origin
                    .split("://")
                    .nth(1)
                    .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
            match HeaderValue::from_str(origin) {
                Ok(value) if shaped => Ok(value),
                _ => Err(Error::bad_input(format!(
                    "invalid WEBHOOK_ALLOWED_ORIGINS entry {origin:?}: give exact origins such as \
                     https://forms.example.com (scheme and host, no path, no `*`)"
                ))),
            }
        })
        .collect()
}

/// The guards' settings from the command line and the secrets from the environment.
pub fn server_config(cli: &Cli) -> Result<ServerConfig> {
    let secret_var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let api_key = secret_var("WEBHOOK_API_KEY");
    let signing_secret = secret_var("WEBHOOK_SECRET")
        .map(|text| {
            shared::logging::context().add_secret(&text);
            auth::decode_secret(&text).map_err(Error::bad_input)
        })
        .transpose()?;
    if api_key.is_none() && signing_secret.is_none() {
        return Err(Error::bad_input(
            "no authentication configured: set WEBHOOK_API_KEY and/or WEBHOOK_SECRET \
             (`whsec_` + base64); the server never runs open",
        ));
    }
    if let Some(key) = &api_key {
        shared::logging::context().add_secret(key);
        if key.trim().len() < 16 {
            return Err(Error::bad_input(
                "WEBHOOK_API_KEY is too short: use at least 16 random characters",
            ));
        }
    }
    let per_minute = NonZeroU32::new(cli.rate_limit_per_minute)
        .ok_or_else(|| Error::bad_input("--rate-limit-per-minute must be at least 1"))?;
    let burst = NonZeroU32::new(cli.rate_limit_burst)
        .ok_or_else(|| Error::bad_input("--rate-limit-burst must be at least 1"))?;
    Ok(ServerConfig {
        api_key,
        signing_secret,
        allowed_origins: parse_origins(&cli.allowed_origins)?,
        max_body_bytes: cli.max_body_bytes,
        rate_limit: RateLimit { per_minute, burst },
        trust_forwarded_for: cli.trust_forwarded_for,
    })
}

/// Serves `app` on `listener` until `shutdown` completes, with each connection's peer address
/// available to the rate limiter.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(|e| Error::internal(format!("the HTTP server stopped: {e}")))
}

/// Resolves on Ctrl-C or SIGTERM (how a container is stopped).
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}

/// Checks the configuration (before any network call), connects to Paperspace and Drive, and
/// serves until stopped.
pub async fn run(cli: Cli) -> Result<()> {
    let config = server_config(&cli)?;
    let spec = load_spec(&cli.spec)?;
    let parent_id = cli
        .drive_parent_folder
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|link| shared::drive_link::parse_drive_id("WEBHOOK_DRIVE_PARENT_FOLDER", link))
        .transpose()?;
    let http = HttpSettings {
        request_timeout: Duration::from_secs(60),
        ..HttpSettings::default()
    };
    let paperspace = cli.api.connect(&http)?;
    let drive = match parent_id {
        Some(parent_id) => Some(DriveTarget {
            client: Arc::new(DriveClient::connect(DriveScope::Full, &http).await?),
            parent_id,
        }),
        None => {
            tracing::warn!(
                "WEBHOOK_DRIVE_PARENT_FOLDER is not set: submissions with documents are refused"
            );
            None
        }
    };
    let app = router(
        config,
        Services {
            paperspace,
            spec,
            drive,
        },
    );
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .map_err(|e| {
            Error::bad_input(format!(
                "cannot listen on {}: {e}; pass another --listen",
                cli.listen
            ))
        })?;
    let address = listener
        .local_addr()
        .map_err(|e| Error::internal(format!("cannot read the bound address: {e}")))?;
    tracing::info!(address = %address, "listening on {address}");
    serve(listener, app, shutdown_signal()).await
}

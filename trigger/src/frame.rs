//! The frame around the `trigger` command: like `shared::job::run`, except that logs go to
//! standard error (standard output is the command's result, which scripts parse) and that
//! `wait` may exit with the run's outcome instead of 0.

use std::process::ExitCode;

use shared::Error;
use shared::logging::{self, LogFormat};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::Cli;

/// Runs `cli` and returns the process exit code: the command's own, or the error kind's after a
/// one-line message on standard error.
pub fn main(cli: Cli) -> ExitCode {
    init_logging();
    shared::http::install_crypto_provider();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))
        .and_then(|runtime| runtime.block_on(crate::run(cli)));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            tracing::debug!(error = %err.chain(), error_kind = err.kind().as_str(), "{err}");
            eprintln!(
                "trigger: error: {}",
                logging::context().redact(err.message())
            );
            ExitCode::from(err.exit_code())
        }
    }
}

/// JSON or pretty lines on stderr; quiet (warnings only) unless LOG_LEVEL or RUST_LOG asks for
/// more, since a person at a terminal wants the result, not the progress.
fn init_logging() {
    for var in ["PAPERSPACE_API_KEY", "WEBHOOK_API_KEY", "WEBHOOK_SECRET"] {
        if let Ok(value) = std::env::var(var) {
            logging::context().add_secret(&value);
        }
    }
    let filter =
        if std::env::var_os("LOG_LEVEL").is_some() || std::env::var_os("RUST_LOG").is_some() {
            logging::filter_from_env()
        } else {
            EnvFilter::new("warn")
        };
    let format = match std::env::var("LOG_FORMAT").ok().as_deref() {
        Some("json") => LogFormat::Json,
        _ => LogFormat::Pretty,
    };
    let layer = logging::layer(
        "trigger",
        format,
        logging::context().clone(),
        std::io::stderr,
    )
    .with_filter(filter);
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

//! The frame around every job's `main`: logging set up, errors turned into one line and an exit
//! code, the job's duration logged as a metric. Binaries stay thin: parse flags, call [`run`].

use std::future::Future;
use std::process::ExitCode;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::logging;

/// Runs `job` on a multi-threaded runtime and returns the process exit code (SPEC §8): 0 on
/// success, the error kind's code otherwise. The error is logged as a JSON line with its whole
/// chain and printed on stderr as one line.
pub fn run<F, Fut>(service: &'static str, job: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    logging::init(service);
    crate::http::install_crypto_provider();
    let started = Instant::now();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))
        .and_then(|runtime| runtime.block_on(job()));
    logging::metric(
        &format!("{service}_duration"),
        started.elapsed().as_secs_f64(),
        "seconds",
    );
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(
                error = %err.chain(),
                error_kind = err.kind().as_str(),
                exit_code = err.exit_code(),
                "{err}"
            );
            eprintln!(
                "{service}: error: {}",
                logging::context().redact(err.message())
            );
            ExitCode::from(err.exit_code())
        }
    }
}

//! Waiting for a run: poll with backoff until a terminal phase or the deadline, and the exit
//! codes that tell a script how the run ended.
//!
//! The codes sit above the shared ones (1–6: the trigger itself failed) so a script can tell
//! "the run failed" (10) from "the trigger could not ask" (4).

use std::time::Duration;

use shared::{Error, Result};
use tokio::time::Instant;

use crate::api::{PaperspaceClient, WorkflowRun};

/// `wait`: the run succeeded.
pub const EXIT_SUCCEEDED: u8 = 0;
/// `wait`: the run failed (phase Failed or Error).
pub const EXIT_FAILED: u8 = 10;
/// `wait`: the run was cancelled.
pub const EXIT_CANCELLED: u8 = 11;
/// `wait`: the timeout passed before the run finished (the run goes on).
pub const EXIT_TIMED_OUT: u8 = 12;

/// Where a run stands, from its phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    InProgress,
    Succeeded,
    Failed,
    Cancelled,
}

impl Outcome {
    /// Classifies a Paperspace (Argo-like) phase, case-insensitively. Unknown phases count as
    /// still in progress: the deadline bounds the wait either way.
    pub fn of_phase(phase: &str) -> Outcome {
        match phase.trim().to_ascii_lowercase().as_str() {
            "succeeded" | "success" | "completed" => Outcome::Succeeded,
            "failed" | "error" | "errored" => Outcome::Failed,
            "cancelled" | "canceled" | "terminated" | "stopped" => Outcome::Cancelled,
            _ => Outcome::InProgress,
        }
    }

    /// The exit code of `wait` for this outcome (`None` while in progress).
    pub fn exit_code(self) -> Option<u8> {
        match self {
            Outcome::InProgress => None,
            Outcome::Succeeded => Some(EXIT_SUCCEEDED),
            Outcome::Failed => Some(EXIT_FAILED),
            Outcome::Cancelled => Some(EXIT_CANCELLED),
        }
    }
}

/// How often to ask: `first` after the first look, growing by half each time up to `max`.
#[derive(Debug, Clone, Copy)]
pub struct Polling {
    pub first: Duration,
    pub max: Duration,
}

/// How a wait ended: the last state seen and whether the deadline passed first.
#[derive(Debug)]
pub struct Waited {
    /// `None` when the deadline passed before the first answer.
    pub run: Option<WorkflowRun>,
    pub timed_out: bool,
}

impl Waited {
    /// The process exit code for this result.
    pub fn exit_code(&self) -> u8 {
        if self.timed_out {
            return EXIT_TIMED_OUT;
        }
        self.run
            .as_ref()
            .and_then(|run| Outcome::of_phase(run.phase()).exit_code())
            .unwrap_or(EXIT_TIMED_OUT)
    }
}

/// Polls run `sequence` until it reaches a terminal phase or `timeout` passes. Each request is
/// also cut short at the deadline, so a hanging API cannot stretch the wait.
pub async fn wait(
    client: &PaperspaceClient,
    sequence: u64,
    timeout: Duration,
    polling: Polling,
) -> Result<Waited> {
    let deadline = Instant::now() + timeout;
    let mut delay = polling.first;
    let mut last: Option<WorkflowRun> = None;
    loop {
        let run = match tokio::time::timeout_at(deadline, client.get_run(sequence)).await {
            Ok(answer) => answer?,
            Err(_) => {
                return Ok(Waited {
                    run: last,
                    timed_out: true,
                });
            }
        };
        let phase = run.phase().to_string();
        if last.as_ref().is_none_or(|l| l.phase() != phase) {
            tracing::info!(run = sequence, phase = %phase, "workflow run {sequence} is {phase}");
        }
        if Outcome::of_phase(&phase) != Outcome::InProgress {
            return Ok(Waited {
                run: Some(run),
                timed_out: false,
            });
        }
        last = Some(run);
        if Instant::now() + delay >= deadline {
            tokio::time::sleep_until(deadline).await;
            return Ok(Waited {
                run: last,
                timed_out: true,
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay + delay / 2).min(polling.max);
    }
}

/// Parses `10m`, `90s`, `1h 30m`, `500ms` (clap value parser).
pub fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e}; write a duration such as 90s, 10m or 1h30m"))
}

/// A one-line error when a timeout is zero (nothing could be waited for).
pub fn check_timeout(timeout: Duration) -> Result<()> {
    if timeout.is_zero() {
        return Err(Error::bad_input(
            "invalid --timeout 0: give a positive duration such as 30m",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_map_to_distinct_exit_codes() {
        assert_eq!(Outcome::of_phase("Succeeded").exit_code(), Some(0));
        assert_eq!(Outcome::of_phase("Failed").exit_code(), Some(EXIT_FAILED));
        assert_eq!(Outcome::of_phase("Error").exit_code(), Some(EXIT_FAILED));
        assert_eq!(
            Outcome::of_phase("canceled").exit_code(),
            Some(EXIT_CANCELLED)
        );
        assert_eq!(Outcome::of_phase("Running").exit_code(), None);
        assert_eq!(Outcome::of_phase("Pending").exit_code(), None);
        let codes = [EXIT_FAILED, EXIT_CANCELLED, EXIT_TIMED_OUT];
        assert!(codes.iter().all(|c| *c > 6), "must not collide with 1-6");
    }

    #[test]
    fn durations_parse_like_a_human_writes_them() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("soon").is_err());
    }
}

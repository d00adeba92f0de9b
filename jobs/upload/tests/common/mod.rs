//! Helpers shared by the upload tests: run a job binary the way a user does (flags and a clean
//! environment), and look at the emulated Drive.

#![allow(dead_code)] // each test file uses a different subset

use std::path::Path;
use std::process::Output;

use serde_json::Value;

/// A finished job process.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The one-line error the job printed on stderr (`<job>: error: ...`).
    pub fn error_line(&self) -> &str {
        self.stderr
            .lines()
            .find(|l| l.contains(": error: "))
            .unwrap_or("")
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `program` with `args` and exactly the environment `env` (nothing inherited, so a
/// developer's real credentials can never leak into a test).
pub async fn run(program: &Path, args: &[&str], env: &[(&str, String)]) -> Run {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env_clear()
        .env("LOG_FORMAT", "json")
        .env("LOG_LEVEL", "info");
    for (key, value) in env {
        command.env(key, value);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().await.expect("start the job binary");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// The emulated Drive's files whose parents include `folder_id`, from the emulator's dump.
pub fn children(emulator: &emulator::Emulator, folder_id: &str) -> Vec<Value> {
    let dump = emulator.google().dump();
    dump["files"]
        .as_array()
        .expect("dump lists files")
        .iter()
        .filter(|f| {
            f["parents"]
                .as_array()
                .is_some_and(|p| p.iter().any(|id| id == folder_id))
        })
        .cloned()
        .collect()
}

/// How many requests the emulator served for each `"METHOD route"` whose route contains `part`.
pub fn requests_matching(emulator: &emulator::Emulator, part: &str) -> usize {
    emulator
        .requests()
        .counts()
        .iter()
        .filter(|(k, _)| k.contains(part))
        .map(|(_, n)| n)
        .sum()
}

//! What the setup tests share: an emulator seeded from a folder written by the test, a service
//! account key, and the real `setup` binary run with flags and environment only.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

use shared::layout::{CompanyDir, Stage};
use shared::markers::{Marker, read_verified};

pub const COMPANY: &str = "Acme Logistics GmbH";
pub const SLUG: &str = "acme_logistics_gmbh";

/// A running emulator, a key for it, and a scratch directory for outputs.
pub struct World {
    pub emulator: emulator::Emulator,
    pub key: PathBuf,
    pub tmp: tempfile::TempDir,
}

impl World {
    /// An emulator whose Drive is seeded with `tree` (may be absent: nothing seeded).
    pub async fn start(tree: Option<&Path>) -> World {
        let mut config = emulator::Config::new();
        if let Some(tree) = tree {
            config = config.seed_drive(tree);
        }
        let emulator = emulator::Emulator::start(config).await.unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let key = tmp.path().join("service-account.json");
        emulator.google().write_service_account_key(&key).unwrap();
        World { emulator, key, tmp }
    }

    pub fn outputs(&self) -> PathBuf {
        self.tmp.path().join("outputs")
    }

    pub fn company(&self) -> CompanyDir {
        CompanyDir::new(self.outputs(), SLUG)
    }

    /// The base environment of a Drive run.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "GDRIVE_CREDENTIALS_PATH".into(),
                self.key.display().to_string(),
            ),
            ("GOOGLE_API_BASE_URL".into(), self.emulator.url()),
        ]
    }

    /// Runs `setup --company-name ... --outputs ...` plus `args`, with `env` only.
    pub async fn setup(&self, args: &[&str], env: &[(String, String)]) -> Output {
        let mut command = self.command(args, env);
        command.output().await.unwrap()
    }

    pub fn command(&self, args: &[&str], env: &[(String, String)]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_setup"));
        command
            .env_clear()
            .env("LOG_FORMAT", "json")
            .arg("--outputs")
            .arg(self.outputs());
        if !args
            .iter()
            .any(|a| a.starts_with("--company-name") || a.starts_with("--inputs-file"))
        {
            command.args(["--company-name", COMPANY]);
        }
        command.args(args);
        for (key, value) in env {
            command.env(key, value);
        }
        command.kill_on_drop(true);
        command
    }

    pub fn marker(&self) -> Marker {
        let dir = self.company();
        read_verified(&dir, Stage::Data, &dir.marker(Stage::Data, "")).unwrap()
    }

    /// Requests to one Drive file's content or export (the metadata GET of the same path is
    /// counted too, so callers exclude the linked root).
    pub fn fetches_of(&self, id: &str) -> usize {
        let own = format!("/drive/v3/files/{id}");
        self.emulator
            .requests()
            .entries()
            .iter()
            .filter(|e| e.path == own || e.path == format!("{own}/export"))
            .count()
    }

    /// Every content or export request, except to `root` (whose metadata setup reads).
    pub fn fetches_except(&self, root: &str) -> usize {
        let own = format!("/drive/v3/files/{root}");
        self.emulator
            .requests()
            .entries()
            .iter()
            .filter(|e| e.path.starts_with("/drive/v3/files/") && e.path != own)
            .count()
    }
}

/// The process's exit code and its stderr, which must be a single line on failure.
pub fn failure(output: &Output) -> (i32, String) {
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_string();
    (output.status.code().unwrap_or(-1), stderr)
}

pub fn assert_ok(output: &Output) {
    assert!(
        output.status.success(),
        "setup failed: {}\nstdout:\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
}

/// A small workbook with several sheets; the first has `rows` data rows.
pub fn write_workbook(path: &Path, sheets: &[(&str, usize)]) {
    let mut book = rust_xlsxwriter::Workbook::new();
    for (name, rows) in sheets {
        let sheet = book.add_worksheet();
        sheet.set_name(*name).unwrap();
        sheet.write_string(0, 0, "Region").unwrap();
        sheet.write_string(0, 1, format!("{name} value")).unwrap();
        for r in 1..=*rows as u32 {
            sheet.write_string(r, 0, format!("{name}-R{r}")).unwrap();
            sheet.write_number(r, 1, f64::from(r) * 1.5).unwrap();
        }
    }
    book.save(path).unwrap();
}

/// Every file under `dir`, relative, `/`-separated, sorted.
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(
                    path.strip_prefix(base)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

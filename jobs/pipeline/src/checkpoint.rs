//! Per-step checkpoints under `checkpoints/`: what a re-run after a crash, a kill or an edited
//! prompt reuses instead of paying for it again.
//!
//! `checkpoints/<step>.json` (and `checkpoints/deep_dive_<k>.json` per use case) holds the
//! step's result, the tokens it cost and the fingerprint of everything it consumed (the rendered
//! prompt, the templates' hashes, the model, the schema, the documents). A step whose planned
//! fingerprint equals its checkpoint's is skipped. Checkpoints are written atomically, so a kill
//! leaves either the old checkpoint or the new one, never half of one.
//!
//! `checkpoints/run.json` holds the `<ts>` of the run's first invocation: a resumed or re-run
//! invocation of the same run writes its Part A, Part B and final report under the same names,
//! so each run leaves exactly one of each.

use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::atomic::write_atomic;
use shared::layout::CompanyDir;
use shared::{Error, Result};

use crate::llm::Usage;

/// One checkpoint file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    pub step: String,
    pub fingerprint: String,
    pub model: String,
    pub usage: Usage,
    pub result: Value,
    pub saved: chrono::DateTime<chrono::Utc>,
}

/// `checkpoints/run.json`: which run the checkpoints belong to and the `<ts>` of its files.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunStamp {
    run_id: String,
    ts: String,
}

/// The file name of the run stamp; no step checkpoint is called `run`.
const RUN_STAMP: &str = "run";

/// A step's result and what it cost, fresh or reused.
#[derive(Debug, Clone)]
pub struct Outcome<T> {
    pub result: T,
    pub usage: Usage,
    pub reused: bool,
}

/// The checkpoint directory of one company.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    dir: PathBuf,
    /// `--force`: never reuse, always overwrite.
    force: bool,
}

impl Checkpoints {
    pub fn new(company: &CompanyDir, force: bool) -> Checkpoints {
        Checkpoints {
            dir: company.checkpoints_dir(),
            force,
        }
    }

    /// `checkpoints/<name>.json`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// The saved result of `name` if it was computed from exactly `fingerprint`. A checkpoint
    /// that is missing, unreadable, from other inputs, or of another shape is ignored: the step
    /// simply runs again.
    pub fn load<T: DeserializeOwned>(&self, name: &str, fingerprint: &str) -> Option<(T, Usage)> {
        if self.force {
            return None;
        }
        let bytes = std::fs::read(self.path(name)).ok()?;
        let checkpoint: Checkpoint = serde_json::from_slice(&bytes).ok()?;
        if checkpoint.fingerprint != fingerprint {
            return None;
        }
        let result = serde_json::from_value(checkpoint.result).ok()?;
        Some((result, checkpoint.usage))
    }

    /// Whether a checkpoint file exists for `name` (for the dry-run plan).
    pub fn exists(&self, name: &str) -> bool {
        self.path(name).is_file()
    }

    pub fn save<T: Serialize>(
        &self,
        name: &str,
        fingerprint: &str,
        model: &str,
        result: &T,
        usage: Usage,
    ) -> Result<()> {
        let checkpoint = Checkpoint {
            step: name.to_string(),
            fingerprint: fingerprint.to_string(),
            model: model.to_string(),
            usage,
            result: serde_json::to_value(result)
                .map_err(|e| Error::internal(format!("cannot encode the result of {name}: {e}")))?,
            saved: chrono::Utc::now(),
        };
        let mut json = serde_json::to_vec_pretty(&checkpoint)
            .map_err(|e| Error::internal(format!("cannot encode checkpoint {name}: {e}")))?;
        json.push(b'\n');
        write_atomic(&self.path(name), &json)
    }

    /// The `<ts>` of run `run_id`: the one recorded by an earlier invocation of the same run,
    /// or `now`, recorded for the invocations that follow. `--force` keeps it too: forcing redoes
    /// the steps of the same run, whose files are replaced, not duplicated.
    pub fn run_timestamp(&self, run_id: &str, now: &str) -> Result<String> {
        let recorded = std::fs::read(self.path(RUN_STAMP))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<RunStamp>(&bytes).ok())
            .filter(|stamp| stamp.run_id == run_id);
        if let Some(stamp) = recorded {
            return Ok(stamp.ts);
        }
        let stamp = RunStamp {
            run_id: run_id.to_string(),
            ts: now.to_string(),
        };
        let mut json = serde_json::to_vec_pretty(&stamp)
            .map_err(|e| Error::internal(format!("cannot encode the run stamp: {e}")))?;
        json.push(b'\n');
        write_atomic(&self.path(RUN_STAMP), &json)?;
        Ok(stamp.ts)
    }

    /// Reuses the checkpoint of `name` when its fingerprint matches, otherwise runs `compute`
    /// and checkpoints its result before returning it.
    pub async fn run<T, F>(
        &self,
        name: &str,
        fingerprint: &str,
        model: &str,
        compute: F,
    ) -> Result<Outcome<T>>
    where
        T: Serialize + DeserializeOwned,
        F: Future<Output = Result<(T, Usage)>>,
    {
        if let Some((result, usage)) = self.load(name, fingerprint) {
            tracing::info!(
                checkpoint = name,
                "{name}: reusing its checkpoint (inputs unchanged)"
            );
            return Ok(Outcome {
                result,
                usage,
                reused: true,
            });
        }
        let (result, usage) = compute.await?;
        self.save(name, fingerprint, model, &result, usage)?;
        Ok(Outcome {
            result,
            usage,
            reused: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_is_reused_only_for_its_fingerprint_and_never_with_force() {
        let tmp = tempfile::tempdir().unwrap();
        let company = CompanyDir::new(tmp.path(), "acme");
        let checkpoints = Checkpoints::new(&company, false);
        let usage = Usage {
            input_tokens: 10,
            output_tokens: 5,
            calls: 1,
        };
        checkpoints
            .save("s02_profile", "fp1", "gpt-5", &vec!["a".to_string()], usage)
            .unwrap();
        let (result, reused_usage): (Vec<String>, Usage) =
            checkpoints.load("s02_profile", "fp1").unwrap();
        assert_eq!((result, reused_usage), (vec!["a".to_string()], usage));
        assert!(
            checkpoints
                .load::<Vec<String>>("s02_profile", "fp2")
                .is_none()
        );
        assert!(
            checkpoints.load::<u32>("s02_profile", "fp1").is_none(),
            "another shape"
        );
        assert!(
            Checkpoints::new(&company, true)
                .load::<Vec<String>>("s02_profile", "fp1")
                .is_none()
        );
    }

    #[test]
    fn a_run_keeps_the_timestamp_of_its_first_invocation() {
        let tmp = tempfile::tempdir().unwrap();
        let company = CompanyDir::new(tmp.path(), "acme");
        let checkpoints = Checkpoints::new(&company, false);
        let first = checkpoints
            .run_timestamp("run-1", "20260101_000000")
            .unwrap();
        assert_eq!(first, "20260101_000000");
        let resumed = Checkpoints::new(&company, true)
            .run_timestamp("run-1", "20260102_000000")
            .unwrap();
        assert_eq!(resumed, first, "a resumed or forced run keeps its names");
        let next = checkpoints
            .run_timestamp("run-2", "20260103_000000")
            .unwrap();
        assert_eq!(next, "20260103_000000", "another run gets its own");
        assert_eq!(
            checkpoints
                .run_timestamp("run-2", "20260104_000000")
                .unwrap(),
            next
        );
    }
}

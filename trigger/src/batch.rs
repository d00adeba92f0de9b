//! `trigger batch FILE`: one run per company, at most N starting at once, and never two runs for
//! the same batch entry — however often the batch is retried.
//!
//! Each entry gets an idempotency key: the SHA-256 fingerprint of the workflow, the company's
//! slug and its validated inputs. A started run is recorded under its key in a state file next
//! to the batch file (`FILE.state.json`, written atomically after every start), and the key is
//! also sent in the run's `meta`. A retried batch skips recorded keys, and before starting the
//! rest it looks for runs carrying their keys among the workflow's recent runs — that covers a
//! crash between the API's answer and the state write.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::inputs::{KEYS, RunInputs};
use shared::{Error, Result};
use tokio::sync::Mutex;

use crate::api::PaperspaceClient;
use crate::start::{RunMeta, StartedRun, run_id_for, start_run};

/// How many of the workflow's newest runs are searched for keys of unrecorded entries.
const RECOVERY_SCAN_RUNS: usize = 500;

/// One validated entry of a batch file.
#[derive(Debug, Clone)]
pub struct Entry {
    /// 1-based position in the file, for messages.
    pub number: usize,
    pub inputs: RunInputs,
    pub key: String,
}

/// A run recorded in the state file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recorded {
    pub company_slug: String,
    pub workflow_id: String,
    pub run: u64,
    pub uuid: String,
    pub run_id: String,
    pub recorded_at: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// Idempotency key → the run started for it.
    runs: BTreeMap<String, Recorded>,
}

/// What happened to one entry (the `--json` output is a list of these).
#[derive(Debug, Clone, Serialize)]
pub struct EntryResult {
    pub company_slug: String,
    pub idempotency_key: String,
    /// `started`, `already_started` or `failed`.
    pub result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where the state of batch file `path` is kept.
pub fn state_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".state.json");
    path.with_file_name(name)
}

/// Reads and validates every entry of a batch file (a YAML or JSON list of §3 input maps)
/// before anything is started.
pub fn read_entries(path: &Path, workflow_id: &str) -> Result<Vec<Entry>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::bad_input(format!(
            "cannot read batch file {}: {e}; pass a YAML or JSON list of company inputs",
            path.display()
        ))
    })?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| {
        Error::bad_input(format!(
            "batch file {} is not YAML or JSON: {e}",
            path.display()
        ))
    })?;
    let serde_yaml::Value::Sequence(items) = doc else {
        return Err(Error::bad_input(format!(
            "batch file {} must be a list of company inputs (`- company_name: ...`)",
            path.display()
        )));
    };
    if items.is_empty() {
        return Err(Error::bad_input(format!(
            "batch file {} lists no companies",
            path.display()
        )));
    }
    let mut entries: Vec<Entry> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let number = index + 1;
        let fail =
            |msg: &str| Error::bad_input(format!("{} entry {number}: {msg}", path.display()));
        let raw = entry_values(item).map_err(|msg| fail(&msg))?;
        let borrowed: BTreeMap<&str, &str> =
            raw.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let inputs = shared::inputs::validate(&borrowed).map_err(|e| fail(e.message()))?;
        if let Some(earlier) = entries
            .iter()
            .find(|e| e.inputs.company_slug == inputs.company_slug)
        {
            return Err(fail(&format!(
                "company_slug {:?} is also entry {}; one run per company",
                inputs.company_slug, earlier.number
            )));
        }
        let key = shared::markers::fingerprint(&json!({
            "workflow_id": workflow_id,
            "company_slug": inputs.company_slug,
            "inputs": inputs,
        }));
        entries.push(Entry {
            number,
            inputs,
            key,
        });
    }
    Ok(entries)
}

/// The string values of one entry; scalars of any type count as their text, so
/// `use_cases_count: 5` and `"5"` mean the same, as in an inputs file.
fn entry_values(item: &serde_yaml::Value) -> std::result::Result<BTreeMap<String, String>, String> {
    let serde_yaml::Value::Mapping(map) = item else {
        return Err("must be a mapping of input keys to values".into());
    };
    let mut out = BTreeMap::new();
    for (key, value) in map {
        let key = key.as_str().ok_or("every key must be a string")?;
        if !KEYS.contains(&key) {
            return Err(format!(
                "unknown key {key:?}; known keys: {}",
                KEYS.join(", ")
            ));
        }
        let text = match value {
            serde_yaml::Value::Null => continue,
            serde_yaml::Value::String(s) => s.clone(),
            serde_yaml::Value::Number(n) => n.to_string(),
            serde_yaml::Value::Bool(b) => b.to_string(),
            _ => return Err(format!("value of {key:?} must be a single value")),
        };
        out.insert(key.to_string(), text);
    }
    Ok(out)
}

fn read_state(path: &Path) -> Result<State> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            Error::bad_input(format!(
                "the batch state file {} is damaged ({e}); it records which companies were \
                 started: repair it, or delete it knowing that a rerun may start duplicates",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

fn write_state(path: &Path, state: &State) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(state)
        .map_err(|e| Error::internal(format!("cannot encode the batch state: {e}")))?;
    shared::atomic::write_atomic(path, &bytes)
}

fn recorded(started: &StartedRun) -> Recorded {
    Recorded {
        company_slug: started.company_slug.clone(),
        workflow_id: started.workflow_id.clone(),
        run: started.run,
        uuid: started.uuid.clone(),
        run_id: started.run_id.clone(),
        recorded_at: chrono::Utc::now().to_rfc3339(),
    }
}

/// Starts the runs of `entries` not started before; returns one result per entry, in order.
pub async fn run_batch(
    client: &PaperspaceClient,
    spec: &Value,
    entries: Vec<Entry>,
    state_file: &Path,
    concurrency: usize,
) -> Result<Vec<EntryResult>> {
    let mut state = read_state(state_file)?;
    let unrecorded: Vec<&Entry> = entries
        .iter()
        .filter(|e| !state.runs.contains_key(&e.key))
        .collect();
    if !unrecorded.is_empty() {
        let wanted: HashMap<&str, &Entry> =
            unrecorded.iter().map(|e| (e.key.as_str(), *e)).collect();
        let mut found = false;
        for run in client.recent_runs(RECOVERY_SCAN_RUNS).await? {
            let key = run.meta.get("idempotencyKey").and_then(Value::as_str);
            if let Some(entry) = key.and_then(|k| wanted.get(k))
                && !state.runs.contains_key(&entry.key)
            {
                let run_id = run
                    .meta
                    .get("runId")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                tracing::info!(
                    run = run.id,
                    company = %entry.inputs.company_slug,
                    "found run {} started earlier for {}",
                    run.id,
                    entry.inputs.company_slug
                );
                state.runs.insert(
                    entry.key.clone(),
                    Recorded {
                        company_slug: entry.inputs.company_slug.clone(),
                        workflow_id: client.workflow_id().to_string(),
                        run: run.id,
                        uuid: run.uuid.clone(),
                        run_id,
                        recorded_at: chrono::Utc::now().to_rfc3339(),
                    },
                );
                found = true;
            }
        }
        if found {
            write_state(state_file, &state)?;
        }
    }

    let state = Arc::new(Mutex::new(state));
    let results = futures::stream::iter(entries.iter())
        .map(|entry| {
            let state = Arc::clone(&state);
            async move { start_entry(client, spec, entry, &state, state_file).await }
        })
        .buffered(concurrency.max(1))
        .collect::<Vec<Result<EntryResult>>>()
        .await;
    results.into_iter().collect()
}

/// Starts one entry unless its key is recorded. A failure to start is a result, not an error:
/// the other companies go on. A failure to record a started run IS an error (a rerun would
/// start it again), and stops the batch.
async fn start_entry(
    client: &PaperspaceClient,
    spec: &Value,
    entry: &Entry,
    state: &Mutex<State>,
    state_file: &Path,
) -> Result<EntryResult> {
    let slug = entry.inputs.company_slug.clone();
    let result = |result: &'static str| EntryResult {
        company_slug: slug.clone(),
        idempotency_key: entry.key.clone(),
        result,
        run: None,
        run_id: None,
        console_url: None,
        error: None,
    };
    if let Some(done) = state.lock().await.runs.get(&entry.key) {
        return Ok(EntryResult {
            run: Some(done.run),
            run_id: Some(done.run_id.clone()),
            console_url: Some(client.console_link(done.run)),
            ..result("already_started")
        });
    }
    let meta = RunMeta {
        started_by: "trigger",
        idempotency_key: Some(entry.key.clone()),
        confirmation_code: None,
    };
    let run_id = run_id_for(&entry.inputs);
    match start_run(client, spec, &entry.inputs, &run_id, &meta).await {
        Ok(started) => {
            let mut state = state.lock().await;
            state.runs.insert(entry.key.clone(), recorded(&started));
            write_state(state_file, &state)?;
            Ok(EntryResult {
                run: Some(started.run),
                run_id: Some(started.run_id.clone()),
                console_url: Some(started.console_url.clone()),
                ..result("started")
            })
        }
        Err(e) => {
            tracing::warn!(company = %slug, error = %e.chain(), "could not start the run for {slug}: {e}");
            Ok(EntryResult {
                error: Some(e.message().to_string()),
                ..result("failed")
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("companies.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn keys_are_stable_per_company_and_change_with_the_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(
            dir.path(),
            "- company_name: Acme\n  use_cases_count: 5\n- company_name: Beta\n",
        );
        let first = read_entries(&a, "wf").unwrap();
        let again = read_entries(&a, "wf").unwrap();
        assert_eq!(first[0].key, again[0].key);
        assert_ne!(first[0].key, first[1].key);
        let b = write(dir.path(), "- company_name: Acme\n  use_cases_count: 6\n");
        assert_ne!(read_entries(&b, "wf").unwrap()[0].key, first[0].key);
        assert_ne!(read_entries(&a, "other").unwrap()[0].key, first[0].key);
    }

    #[test]
    fn invalid_entries_and_duplicates_are_refused_by_number() {
        let dir = tempfile::tempdir().unwrap();
        let bad = write(
            dir.path(),
            "- company_name: Acme\n- company_name: Beta\n  use_cases_count: 21\n",
        );
        let msg = read_entries(&bad, "wf").unwrap_err().to_string();
        assert!(
            msg.contains("entry 2") && msg.contains("use_cases_count"),
            "{msg}"
        );
        let dup = write(dir.path(), "- company_name: Acme\n- company_name: ACME\n");
        let msg = read_entries(&dup, "wf").unwrap_err().to_string();
        assert!(msg.contains("entry 2") && msg.contains("entry 1"), "{msg}");
        let unknown = write(dir.path(), "- company: Acme\n");
        assert!(
            read_entries(&unknown, "wf")
                .unwrap_err()
                .to_string()
                .contains("unknown key")
        );
    }

    #[test]
    fn state_lives_next_to_the_batch_file() {
        assert_eq!(
            state_path(Path::new("/data/q3/companies.yaml")),
            PathBuf::from("/data/q3/companies.yaml.state.json")
        );
    }
}

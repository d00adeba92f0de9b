//! `trigger batch FILE`: one run per company, at most N starting at once, and never two runs for
//! the same batch entry — however often the batch is retried.
//!
//! Each entry gets an idempotency key: the SHA-256 fingerprint of the workflow, the company's
//! slug and its validated inputs; an entry without a `run_id` gets one derived from its key, so
//! every attempt at the entry sends the same run id. A started run is recorded under its key in
//! a state file next to the batch file (`FILE.state.json`, written atomically after every start).
//! A retried batch skips recorded keys, and before starting the rest it looks among the
//! workflow's recent runs for one whose inputs are the entry's (run id included) — that covers a
//! crash between the API's answer and the state write. The key also goes into the run's `meta`
//! for people reading the run, but recovery never reads `meta`: the API reference types it as
//! empty on runs it returns, while it does return a run's inputs.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::inputs::{KEYS, RunInputs};
use shared::{Error, Result};
use tokio::sync::Mutex;

use crate::api::{PaperspaceClient, WorkflowRun};
use crate::spec::input_values;
use crate::start::{RunMeta, StartedRun, start_run};

/// How many of the workflow's newest runs are searched for keys of unrecorded entries.
const RECOVERY_SCAN_RUNS: usize = 500;

/// One validated entry of a batch file.
#[derive(Debug, Clone)]
pub struct Entry {
    /// 1-based position in the file, for messages.
    pub number: usize,
    pub inputs: RunInputs,
    pub key: String,
    /// The run id every attempt at this entry sends: the entry's own, or one derived from `key`.
    pub run_id: String,
}

impl Entry {
    /// Whether `run` was started for this entry: it carries the entry's run id, and every §3
    /// input it reports has the value this entry sends.
    pub fn started(&self, run: &WorkflowRun) -> bool {
        run.input("run_id") == Some(self.run_id.as_str())
            && input_values(&self.inputs, &self.run_id)
                .iter()
                .all(|(key, value)| run.input(key).is_none_or(|got| got == value))
    }
}

/// The run id of an entry without one: fixed by its key, so a retry sends the same id and a
/// run started before a crash can be recognised by it.
fn derived_run_id(key: &str) -> String {
    format!("batch_{}", &key[..32.min(key.len())])
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
        let run_id = inputs
            .run_id
            .clone()
            .unwrap_or_else(|| derived_run_id(&key));
        if let Some(earlier) = entries.iter().find(|e| e.run_id == run_id) {
            return Err(fail(&format!(
                "run_id {run_id:?} is also entry {}'s; give each company its own run_id",
                earlier.number
            )));
        }
        entries.push(Entry {
            number,
            inputs,
            key,
            run_id,
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
        if spec
            .get("inputs")
            .and_then(Value::as_object)
            .is_some_and(|declared| !declared.contains_key("run_id"))
        {
            tracing::warn!(
                "the workflow spec declares no run_id input: runs started by an earlier attempt \
                 whose state was not saved cannot be recognised and may be started again"
            );
        }
        let by_run_id: HashMap<&str, &Entry> =
            unrecorded.iter().map(|e| (e.run_id.as_str(), *e)).collect();
        let mut found = false;
        for run in client.recent_runs(RECOVERY_SCAN_RUNS).await? {
            let entry = run.input("run_id").and_then(|id| by_run_id.get(id));
            if let Some(entry) = entry.filter(|entry| entry.started(&run))
                && !state.runs.contains_key(&entry.key)
            {
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
                        run_id: entry.run_id.clone(),
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
    match start_run(client, spec, &entry.inputs, &entry.run_id, &meta).await {
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
    use serde_json::Map;

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
    fn run_ids_are_derived_from_the_key_unless_given() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "- company_name: Acme\n- company_name: Beta\n  run_id: q3-beta\n",
        );
        let entries = read_entries(&path, "wf").unwrap();
        assert_eq!(
            entries[0].run_id,
            read_entries(&path, "wf").unwrap()[0].run_id
        );
        assert!(entries[0].run_id.starts_with("batch_"));
        assert!(shared::inputs::is_valid_run_id(&entries[0].run_id));
        assert_eq!(entries[1].run_id, "q3-beta");
    }

    /// A run as the API lists it: `meta` empty, the inputs in `status.inputs`.
    fn listed(inputs: Value) -> WorkflowRun {
        serde_json::from_value(json!({
            "id": 7, "uuid": "u7", "meta": {},
            "status": { "phase": "Running", "logId": "l7", "inputs": inputs },
        }))
        .unwrap()
    }

    #[test]
    fn a_listed_run_is_recognised_by_its_inputs_without_meta() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "- company_name: Acme\n  use_cases_count: 3\n");
        let entry = &read_entries(&path, "wf").unwrap()[0];
        let sent: Map<String, Value> = input_values(&entry.inputs, &entry.run_id)
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    json!({ "type": "string", "with": { "value": v } }),
                )
            })
            .collect();
        assert!(entry.started(&listed(Value::Object(sent.clone()))));
        let plain: Map<String, Value> = input_values(&entry.inputs, &entry.run_id)
            .into_iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        assert!(entry.started(&listed(Value::Object(plain))));

        let mut other_count = sent.clone();
        other_count["use_cases_count"] = json!({ "type": "string", "with": { "value": "4" } });
        assert!(!entry.started(&listed(Value::Object(other_count))));
        let mut other_id = sent;
        other_id["run_id"] = json!({ "type": "string", "with": { "value": "batch_other" } });
        assert!(!entry.started(&listed(Value::Object(other_id))));
        assert!(!entry.started(&listed(json!({}))), "no inputs, no match");
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
        let same_id = write(
            dir.path(),
            "- company_name: Acme\n  run_id: q3\n- company_name: Beta\n  run_id: q3\n",
        );
        let msg = read_entries(&same_id, "wf").unwrap_err().to_string();
        assert!(msg.contains("entry 2") && msg.contains("run_id"), "{msg}");
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

//! The emulated Paperspace Workflows API over HTTP, as a trigger would use it: create a run,
//! poll its phase, read its logs, cancel it, list runs; plus the test hooks that choose how runs
//! end.

use std::time::Duration;

use emulator::paperspace::Outcome;
use emulator::{Config, Emulator};
use serde_json::{Value, json};

const KEY: &str = "test-paperspace-key";
const DELAY: Duration = Duration::from_millis(40);
/// Long enough that polling every DELAY/4 cannot miss the Running phase on a loaded machine.
const OBSERVED_DELAY: Duration = Duration::from_millis(300);

async fn start() -> (Emulator, reqwest::Client) {
    start_with(DELAY).await
}

async fn start_with(delay: Duration) -> (Emulator, reqwest::Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let emulator = Emulator::start(Config::default().phase_delay(delay))
        .await
        .unwrap();
    (emulator, reqwest::Client::new())
}

fn run_request(company: &str) -> Value {
    json!({
        "spec": {
            "jobs": {
                "setup": { "uses": "container@v1", "with": { "image": "report/setup:1", "args": ["setup"] } },
                "upload": { "uses": "container@v1", "needs": ["setup"], "with": { "image": "report/upload:1" } },
            }
        },
        "inputs": { "company_name": { "type": "string", "with": { "value": company } } },
    })
}

async fn create(
    emulator: &Emulator,
    http: &reqwest::Client,
    workflow: &str,
    company: &str,
) -> Value {
    let response = http
        .post(format!(
            "{}/workflows/{workflow}/runs",
            emulator.paperspace_base()
        ))
        .bearer_auth(KEY)
        .json(&run_request(company))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.unwrap()
}

async fn get(emulator: &Emulator, http: &reqwest::Client, path: &str) -> (u16, Value) {
    let response = http
        .get(format!("{}{path}", emulator.paperspace_base()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Polls a run until it reaches a terminal phase; returns every phase seen, in order.
async fn phases_until_done(emulator: &Emulator, http: &reqwest::Client, path: &str) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..400 {
        let (_, run) = get(emulator, http, path).await;
        let phase = run["status"]["phase"].as_str().unwrap().to_string();
        if seen.last() != Some(&phase) {
            seen.push(phase.clone());
        }
        if !matches!(phase.as_str(), "Pending" | "Running") {
            return seen;
        }
        tokio::time::sleep(DELAY / 4).await;
    }
    panic!("run never finished; phases seen: {seen:?}");
}

#[tokio::test]
async fn a_run_moves_through_its_phases_and_keeps_its_inputs() {
    let (emulator, http) = start_with(OBSERVED_DELAY).await;
    let run = create(&emulator, &http, "wf-1", "Acme").await;
    assert_eq!(run["id"], json!(1));
    assert_eq!(run["status"]["phase"], json!("Pending"));
    assert_eq!(run["uuid"].as_str().unwrap().len(), 36);

    let phases = phases_until_done(&emulator, &http, "/workflows/wf-1/runs/1").await;
    assert_eq!(phases, ["Pending", "Running", "Succeeded"]);
    let (_, done) = get(&emulator, &http, "/workflows/wf-1/runs/1").await;
    assert_eq!(
        done["status"]["jobs"]["upload"]["phase"],
        json!("Succeeded")
    );
    assert!(done["status"]["finished"].is_string());
    assert_eq!(
        done["status"]["inputs"]["company_name"]["with"]["value"],
        json!("Acme")
    );

    let (status, logs) = get(&emulator, &http, "/workflows/wf-1/runs/1/logs").await;
    assert_eq!(status, 200);
    let jobs: Vec<&str> = logs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["setup", "upload"]);
    let setup_lines: Vec<&str> = logs[0]["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        setup_lines,
        [
            "Pulling image report/setup:1",
            "Starting job setup",
            "Job setup succeeded"
        ]
    );

    let dump = emulator.paperspace().dump();
    assert_eq!(
        dump["runs"][0]["inputs"]["company_name"]["with"]["value"],
        json!("Acme")
    );
    assert_eq!(
        dump["runs"][0]["spec"]["jobs"]["upload"]["needs"],
        json!(["setup"])
    );
}

#[tokio::test]
async fn runs_are_listed_newest_first_with_paging() {
    let (emulator, http) = start().await;
    for company in ["A", "B", "C"] {
        create(&emulator, &http, "wf-list", company).await;
    }
    create(&emulator, &http, "wf-other", "D").await;

    let (_, first) = get(&emulator, &http, "/workflows/wf-list/runs?limit=2").await;
    let ids: Vec<u64> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [3, 2]);
    assert_eq!(first["hasMore"], json!(true));
    let cursor = first["nextPage"].as_str().unwrap();
    let (_, second) = get(
        &emulator,
        &http,
        &format!("/workflows/wf-list/runs?limit=2&after={cursor}"),
    )
    .await;
    let ids: Vec<u64> = second["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [1]);
    assert_eq!(second["hasMore"], json!(false));
}

#[tokio::test]
async fn hooks_make_runs_fail_or_run_forever_and_cancel_stops_them() {
    let (emulator, http) = start().await;
    emulator
        .paperspace()
        .set_outcome_for_new_runs(Outcome::Failed);
    create(&emulator, &http, "wf", "Fails").await;
    let phases = phases_until_done(&emulator, &http, "/workflows/wf/runs/1").await;
    assert_eq!(phases.last().map(String::as_str), Some("Failed"));
    let (_, failed) = get(&emulator, &http, "/workflows/wf/runs/1").await;
    assert!(failed["status"]["message"].is_string());

    // The admin hook does the same over HTTP.
    let hook = http
        .post(format!("{}/_admin/paperspace/outcome", emulator.url()))
        .json(&json!({ "outcome": "RunsForever" }))
        .send()
        .await
        .unwrap();
    assert_eq!(hook.status().as_u16(), 200);
    create(&emulator, &http, "wf", "Hangs").await;
    tokio::time::sleep(DELAY * 5).await;
    let (_, hanging) = get(&emulator, &http, "/workflows/wf/runs/2").await;
    assert_eq!(hanging["status"]["phase"], json!("Running"));

    let cancel = http
        .post(format!(
            "{}/workflows/wf/runs/2/cancel",
            emulator.paperspace_base()
        ))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status().as_u16(), 200);
    let (_, cancelled) = get(&emulator, &http, "/workflows/wf/runs/2").await;
    assert_eq!(cancelled["status"]["phase"], json!("Cancelled"));

    // A finished run cannot be cancelled.
    let too_late = http
        .post(format!(
            "{}/workflows/wf/runs/1/cancel",
            emulator.paperspace_base()
        ))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(too_late.status().as_u16(), 400);

    emulator
        .paperspace()
        .set_outcome_for_new_runs(Outcome::Succeeded);
    create(&emulator, &http, "wf", "Cancelled later").await;
    assert!(
        emulator
            .paperspace()
            .set_run_outcome("wf", 3, Outcome::Cancelled)
    );
    let phases = phases_until_done(&emulator, &http, "/workflows/wf/runs/3").await;
    assert_eq!(phases.last().map(String::as_str), Some("Cancelled"));
}

#[tokio::test]
async fn bearer_key_and_body_are_checked() {
    let (emulator, http) = start().await;
    let url = format!("{}/workflows/wf/runs", emulator.paperspace_base());
    let anonymous = http
        .post(&url)
        .json(&run_request("X"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let body: Value = anonymous.json().await.unwrap();
    assert!(body["message"].is_string());
    let wrong = http
        .get(&url)
        .bearer_auth("not-the-key")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);

    let no_spec = http
        .post(&url)
        .bearer_auth(KEY)
        .json(&json!({ "inputs": {} }))
        .send()
        .await
        .unwrap();
    assert_eq!(no_spec.status().as_u16(), 400);
    let (status, _) = get(&emulator, &http, "/workflows/wf/runs/99").await;
    assert_eq!(status, 404);
    assert!(
        emulator.paperspace().dump()["runs"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

//! Fault injection as clients see it: 429 with Retry-After then success, a run of 503s that
//! async-openai retries through, dropped connections, latency, and the admin endpoint.

mod openai_common;

use std::time::{Duration, Instant};

use emulator::Config;
use emulator::faults::{FaultError, FaultSpec, Service};
use openai_common::{KEY, client, start};
use serde_json::{Value, json};

fn statuses(emulator: &emulator::Emulator, route: &str) -> Vec<Option<u16>> {
    emulator
        .requests()
        .entries()
        .iter()
        .filter(|entry| entry.route == route)
        .map(|entry| entry.status)
        .collect()
}

#[tokio::test]
async fn a_429_with_retry_after_is_honoured_then_the_call_succeeds() {
    let emulator = start(Config::new().fault(
        Service::OpenAi,
        FaultSpec::first(
            1,
            FaultError::RateLimit {
                retry_after_secs: 1,
            },
        ),
    ))
    .await;
    let raw = reqwest::Client::new()
        .get(format!("{}/files", emulator.openai_base()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 429);
    assert_eq!(raw.headers()["retry-after"], "1");
    let body: Value = raw.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");

    emulator.faults().set(
        Service::OpenAi,
        FaultSpec::first(
            1,
            FaultError::RateLimit {
                retry_after_secs: 1,
            },
        ),
    );
    let openai = client(&emulator, KEY);
    let started = Instant::now();
    openai.files().list().await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "the client waited for Retry-After"
    );
    assert_eq!(
        statuses(&emulator, "/v1/files"),
        [Some(429), Some(429), Some(200)]
    );
}

#[tokio::test]
async fn a_run_of_503s_is_retried_through() {
    let emulator = start(Config::new()).await;
    emulator.faults().set(
        Service::OpenAi,
        FaultSpec::first(2, FaultError::Status { status: 503 }),
    );
    let openai = client(&emulator, KEY);
    openai.vector_stores().list().await.unwrap();
    assert_eq!(
        statuses(&emulator, "/v1/vector_stores"),
        [Some(503), Some(503), Some(200)]
    );
    let entries = emulator.requests().entries();
    assert_eq!(entries[0].fault.as_deref(), Some("status 503"));
}

#[tokio::test]
async fn a_dropped_connection_is_a_connection_error_for_the_client() {
    let emulator = start(Config::new()).await;
    emulator
        .faults()
        .set(Service::Paperspace, FaultSpec::first(1, FaultError::Drop));
    let http = reqwest::Client::new();
    let url = format!("{}/workflows/wf-1/runs", emulator.paperspace_base());
    let error = http
        .get(&url)
        .bearer_auth("test-paperspace-key")
        .send()
        .await
        .unwrap_err();
    assert!(error.status().is_none(), "no HTTP status at all: {error:?}");
    assert!(error.is_request() || error.is_connect(), "{error:?}");

    let next = http
        .get(&url)
        .bearer_auth("test-paperspace-key")
        .send()
        .await
        .unwrap();
    assert_eq!(next.status(), 200);
    let body: Value = next.json().await.unwrap();
    assert_eq!(body["items"], json!([]));
    let logged: Vec<(Option<u16>, Option<String>)> = emulator
        .requests()
        .entries()
        .into_iter()
        .map(|entry| (entry.status, entry.fault))
        .collect();
    assert_eq!(
        logged,
        [(None, Some("drop".to_string())), (Some(200), None)],
        "the drop is logged without a status"
    );
}

#[tokio::test]
async fn a_download_cut_mid_body_sends_headers_then_breaks_off() {
    let emulator = start(Config::new()).await;
    let openai = client(&emulator, KEY);
    let dir = tempfile::tempdir().unwrap();
    let content = "Dispatch prints 85 tour plans a day. ".repeat(200);
    let file = openai_common::upload(
        &openai,
        &openai_common::write(dir.path(), "notes.md", content.as_bytes()),
    )
    .await;
    emulator.faults().set(
        Service::OpenAi,
        FaultSpec {
            downloads_only: true,
            ..FaultSpec::first(1, FaultError::Truncate)
        },
    );
    let http = reqwest::Client::new();
    let metadata = http
        .get(format!("{}/files/{}", emulator.openai_base(), file.id))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(metadata.status(), 200, "API calls are not downloads");
    let url = format!("{}/files/{}/content", emulator.openai_base(), file.id);
    let cut = http.get(&url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(cut.status(), 200);
    assert_eq!(cut.content_length(), Some(content.len() as u64));
    let error = cut.bytes().await.unwrap_err();
    assert!(error.is_body() || error.is_decode(), "{error:?}");

    let whole = http.get(&url).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(whole.text().await.unwrap(), content);
    let faults: Vec<Option<String>> = emulator
        .requests()
        .entries()
        .into_iter()
        .filter(|entry| entry.route == "/v1/files/{file_id}/content")
        .map(|entry| entry.fault)
        .collect();
    assert_eq!(faults, [Some("truncate".to_string()), None]);
}

#[tokio::test]
async fn latency_delays_requests_and_concurrent_requests_overlap() {
    let emulator = start(Config::new()).await;
    emulator.faults().set(
        Service::OpenAi,
        FaultSpec::latency(Duration::from_millis(150), Duration::from_millis(20)),
    );
    let openai = client(&emulator, KEY);
    let started = Instant::now();
    let (files_a, files_b, stores) = (openai.files(), openai.files(), openai.vector_stores());
    let (a, b, c) = tokio::join!(files_a.list(), files_b.list(), stores.list());
    a.unwrap();
    b.unwrap();
    c.unwrap();
    // Lower bounds only: a sleep is never shorter than asked, however loaded the machine.
    assert!(started.elapsed() >= Duration::from_millis(150));
    let entries = emulator.requests().entries();
    for entry in &entries {
        assert!(entry.end_us - entry.start_us >= 150_000);
        assert_eq!(entry.fault.as_deref(), Some("latency"));
    }
    // Served concurrently: the three request intervals in the log overlap.
    assert_eq!(emulator.requests().max_concurrency(Some("openai")), 3);

    let log: Value = reqwest::get(format!("{}/_admin/requests", emulator.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = log["requests"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "admin calls are not logged");
    assert!(entries.iter().all(|e| e["service"] == "openai"));
    assert_eq!(log["counts"]["GET /v1/files"], 2);
}

#[tokio::test]
async fn the_admin_endpoint_sets_every_nth_faults_with_google_shaped_bodies() {
    let emulator = start(Config::new()).await;
    let http = reqwest::Client::new();
    let set = http
        .post(format!("{}/_admin/faults", emulator.url()))
        .json(&json!({"google": {
            "error": {"kind": "rate_limit", "retry_after_secs": 2},
            "every_nth": 2
        }}))
        .send()
        .await
        .unwrap();
    assert!(set.status().is_success());
    let url = format!("{}/drive/v3/files", emulator.url());
    let mut codes = Vec::new();
    let mut limited_body = Value::Null;
    for _ in 0..4 {
        let response = http.get(&url).send().await.unwrap();
        codes.push(response.status().as_u16());
        if response.status() == 429 {
            assert_eq!(response.headers()["retry-after"], "2");
            limited_body = response.json().await.unwrap();
        }
    }
    assert_eq!(codes[1], 429);
    assert_eq!(codes[3], 429);
    assert_ne!(codes[0], 429);
    assert_ne!(codes[2], 429);
    assert_eq!(limited_body["error"]["code"], 429);
    assert_eq!(limited_body["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(
        limited_body["error"]["errors"][0]["reason"],
        "rateLimitExceeded"
    );

    let cleared = http
        .post(format!("{}/_admin/faults", emulator.url()))
        .json(&json!({"google": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.json::<Value>().await.unwrap(), json!({}));
    let bad = http
        .post(format!("{}/_admin/faults", emulator.url()))
        .json(&json!({"dropbox": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn probabilistic_faults_repeat_for_the_same_seed() {
    let run = || async {
        let emulator = start(Config::new().fault(
            Service::OpenAi,
            FaultSpec::probability(0.5, 42, FaultError::Status { status: 500 }),
        ))
        .await;
        let http = reqwest::Client::new();
        let mut codes = Vec::new();
        for _ in 0..12 {
            let response = http
                .get(format!("{}/files", emulator.openai_base()))
                .bearer_auth(KEY)
                .send()
                .await
                .unwrap();
            codes.push(response.status().as_u16());
        }
        codes
    };
    let first = run().await;
    assert_eq!(first, run().await);
    assert!(first.contains(&500) && first.contains(&200), "{first:?}");
}

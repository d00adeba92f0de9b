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
    let url = format!("{}/workflows", emulator.paperspace_base());
    let error = http.get(&url).send().await.unwrap_err();
    assert!(error.status().is_none(), "no HTTP status at all: {error:?}");
    assert!(error.is_request() || error.is_connect(), "{error:?}");

    let next = http.get(&url).send().await.unwrap();
    assert_ne!(next.status().as_u16(), 0);
    let logged: Vec<Option<u16>> = emulator
        .requests()
        .entries()
        .iter()
        .map(|entry| entry.status)
        .collect();
    assert_eq!(logged[0], None, "the drop is logged without a status");
    assert!(logged[1].is_some());
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
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(150));
    assert!(
        elapsed < Duration::from_millis(400),
        "served concurrently: {elapsed:?}"
    );
    for entry in emulator.requests().entries() {
        assert!(entry.end_us - entry.start_us >= 150_000);
        assert!(entry.end_us - entry.start_us <= 400_000);
        assert_eq!(entry.fault.as_deref(), Some("latency"));
    }
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

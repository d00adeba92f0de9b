//! A property test: whatever arrives (random methods, paths, content types, headers, bodies,
//! half-valid JSON and multipart, bodies around and well over the size limit), the server
//! answers — never panics — every refusal is a JSON error with a code, and a submission over the
//! limit is always a 413.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Request};
use emulator::{Config, Emulator};
use http_body_util::BodyExt as _;
use proptest::prelude::*;
use serde_json::{Value, json};
use shared::http::HttpSettings;
use tower::ServiceExt as _;
use trigger::api::{ClientConfig, PaperspaceClient};
use webhook::limits::RateLimit;
use webhook::{ServerConfig, Services};

const API_KEY: &str = "test-webhook-api-key";
const MAX_BODY: usize = 4096;

#[derive(Debug, Clone)]
struct Case {
    method: &'static str,
    path: String,
    content_type: Option<String>,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn content_types() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("application/json".to_string())),
        Just(Some("multipart/form-data; boundary=XyZ".to_string())),
        Just(Some("multipart/form-data".to_string())),
        Just(Some("text/plain".to_string())),
        "[ -~]{0,40}".prop_map(Some),
    ]
}

fn bodies() -> impl Strategy<Value = Vec<u8>> {
    let keys = prop_oneof![
        Just("company_name".to_string()),
        Just("use_cases_count".to_string()),
        Just("readiness_score".to_string()),
        Just("google_drive_link".to_string()),
        Just("run_id".to_string()),
        "[a-z_]{1,12}",
    ];
    let values = prop_oneof![
        any::<String>().prop_map(Value::String),
        any::<i64>().prop_map(|n| json!(n)),
        Just(Value::Null),
        Just(json!([1, 2])),
        Just(json!({"nested": true})),
    ];
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        // Around the limit, and well over it.
        proptest::collection::vec(any::<u8>(), MAX_BODY - 8..MAX_BODY + 8),
        proptest::collection::vec(any::<u8>(), MAX_BODY + 1..4 * MAX_BODY),
        // A well-formed submission that is merely too big.
        (MAX_BODY - 64..2 * MAX_BODY).prop_map(|n| {
            serde_json::to_vec(&json!({ "company_name": "Acme", "company_description": "x".repeat(n) }))
                .unwrap()
        }),
        proptest::collection::btree_map(keys, values, 0..6)
            .prop_map(|map| serde_json::to_vec(&map).unwrap()),
        ("[ -~]{0,30}", any::<String>(), proptest::collection::vec(any::<u8>(), 0..64)).prop_map(
            |(name, value, file)| {
                let mut body = format!(
                    "--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n\
                     --XyZ\r\nContent-Disposition: form-data; name=\"d\"; filename=\"{name}\"\r\n\r\n"
                )
                .into_bytes();
                body.extend_from_slice(&file);
                body.extend_from_slice(b"\r\n--XyZ--\r\n");
                body
            }
        ),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(&'static str, String)>> {
    let name = prop_oneof![
        Just("x-api-key"),
        Just("authorization"),
        Just("webhook-id"),
        Just("webhook-timestamp"),
        Just("webhook-signature"),
        Just("origin"),
        Just("idempotency-key"),
        Just("content-length"),
        Just("x-forwarded-for"),
    ];
    let value = prop_oneof![
        Just(API_KEY.to_string()),
        Just("v1,AAAA".to_string()),
        Just("Bearer x".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[ -~]{0,60}",
    ];
    proptest::collection::vec((name, value), 0..5)
}

fn cases() -> impl Strategy<Value = Case> {
    let method = prop_oneof![
        Just("POST"),
        Just("POST"),
        Just("GET"),
        Just("PUT"),
        Just("OPTIONS")
    ];
    let path = prop_oneof![
        Just("/submissions".to_string()),
        Just("/health".to_string()),
        "/[a-z/%.]{0,20}",
    ];
    (method, path, content_types(), headers(), bodies()).prop_map(
        |(method, path, content_type, headers, body)| Case {
            method,
            path,
            content_type,
            headers,
            body,
        },
    )
}

/// Whether the server must answer 413: a submission over the limit that no earlier guard (the
/// origin allow-list, which no generated origin is on) refuses first.
fn must_be_too_large(case: &Case) -> bool {
    case.method == "POST"
        && case.path == "/submissions"
        && case.body.len() > MAX_BODY
        && !case
            .headers
            .iter()
            .any(|(name, value)| *name == "origin" && HeaderValue::from_str(value).is_ok())
}

fn request(case: &Case) -> Request<Body> {
    let mut builder = Request::builder().method(case.method).uri(&case.path);
    if let Some(value) = case
        .content_type
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        builder = builder.header("content-type", value);
    }
    for (name, value) in &case.headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            builder = builder.header(*name, value);
        }
    }
    builder
        .body(Body::from(case.body.clone()))
        .unwrap_or_else(|_| Request::new(Body::empty()))
}

#[test]
fn malformed_requests_never_crash_the_server() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let emulator = runtime.block_on(Emulator::start(Config::new())).unwrap();
    let paperspace = PaperspaceClient::new(
        ClientConfig {
            api_url: emulator.paperspace_base(),
            api_key: "test-paperspace-key".into(),
            workflow_id: "wf".into(),
            project_id: None,
            console_url: "https://console.paperspace.com".into(),
        },
        &HttpSettings {
            request_timeout: Duration::from_secs(5),
            ..HttpSettings::default()
        },
    )
    .unwrap();
    let app = webhook::router(
        ServerConfig {
            api_key: Some(API_KEY.into()),
            signing_secret: Some(b"test-signing-secret-32-bytes-lng".to_vec()),
            allowed_origins: vec!["https://forms.example.com".parse().unwrap()],
            max_body_bytes: MAX_BODY,
            rate_limit: RateLimit {
                per_minute: 1_000_000.try_into().unwrap(),
                burst: 1_000_000.try_into().unwrap(),
            },
            trust_forwarded_for: true,
        },
        Services {
            paperspace,
            spec: json!({ "jobs": { "setup": {} } }),
            drive: None,
        },
    );

    let too_large = AtomicUsize::new(0);
    proptest!(ProptestConfig::with_cases(300), |(case in cases())| {
        let response = runtime.block_on(app.clone().oneshot(request(&case))).unwrap();
        let status = response.status();
        let bytes = runtime.block_on(response.into_body().collect()).unwrap().to_bytes();
        prop_assert!(
            !status.is_server_error() || status.as_u16() == 502,
            "{status} for {case:?}"
        );
        if must_be_too_large(&case) {
            prop_assert_eq!(status.as_u16(), 413, "{} bytes", case.body.len());
            too_large.fetch_add(1, Ordering::Relaxed);
        }
        if status.is_client_error() {
            let body: Value = serde_json::from_slice(&bytes)
                .map_err(|e| TestCaseError::fail(format!("{status} without JSON ({e}) for {case:?}")))?;
            prop_assert!(body["error"]["code"].is_string(), "{body}");
        }
    });
    assert!(
        too_large.load(Ordering::Relaxed) > 0,
        "no generated submission went over the size limit"
    );
}

//! The webhook server in-process against the emulator's Paperspace and Drive routes: the happy
//! paths end in a run whose inputs match the submission; every refusal has its status and a
//! JSON error, and starts nothing.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use drive_client::{DriveClient, DriveScope};
use emulator::faults::{FaultError, FaultSpec, Service};
use emulator::{Config, Emulator};
use serde_json::{Value, json};
use shared::http::{HttpSettings, RetryPolicy};
use trigger::api::{ClientConfig, PaperspaceClient};
use webhook::drive::DriveTarget;
use webhook::limits::RateLimit;
use webhook::{ServerConfig, Services};

const API_KEY: &str = "test-webhook-api-key";
const SECRET: &[u8] = b"test-signing-secret-32-bytes-lng";
const ORIGIN: &str = "https://forms.example.com";
const MAX_BODY: usize = 64 * 1024;

fn fast_http() -> HttpSettings {
    HttpSettings {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        max_concurrency: 4,
        retry: RetryPolicy {
            max_retries: 1,
            min_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            max_retry_after: Duration::from_secs(1),
        },
    }
}

struct Env {
    emulator: Emulator,
    url: String,
    parent_id: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

fn config() -> ServerConfig {
    ServerConfig {
        api_key: Some(API_KEY.into()),
        signing_secret: Some(SECRET.to_vec()),
        allowed_origins: vec![ORIGIN.parse().unwrap()],
        max_body_bytes: MAX_BODY,
        rate_limit: RateLimit {
            per_minute: 600.try_into().unwrap(),
            burst: 100.try_into().unwrap(),
        },
        trust_forwarded_for: false,
    }
}

impl Env {
    async fn start(config: ServerConfig, paperspace_key: &str) -> Env {
        shared::http::install_crypto_provider();
        let emulator = Emulator::start(Config::new()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("service-account.json");
        emulator
            .google()
            .write_service_account_key(&key_path)
            .unwrap();
        let parent_id = emulator.google().create_folder("Submissions", None);
        let drive =
            DriveClient::connect_with(DriveScope::Full, &fast_http(), &key_path, &emulator.url())
                .await
                .unwrap();
        let paperspace = PaperspaceClient::new(
            ClientConfig {
                api_url: emulator.paperspace_base(),
                api_key: paperspace_key.into(),
                workflow_id: "wf-forms".into(),
                project_id: None,
                console_url: "https://console.paperspace.com".into(),
            },
            &fast_http(),
        )
        .unwrap();
        let spec = json!({ "jobs": { "setup": { "uses": "container@v1" } } });
        let app = webhook::router(
            config,
            Services {
                paperspace,
                spec,
                drive: Some(DriveTarget {
                    client: std::sync::Arc::new(drive),
                    parent_id: parent_id.clone(),
                }),
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(webhook::serve(listener, app, std::future::pending()));
        Env {
            emulator,
            url: format!("http://{address}"),
            parent_id,
            http: reqwest::Client::new(),
            _dir: dir,
        }
    }

    fn post(&self) -> reqwest::RequestBuilder {
        self.http.post(format!("{}/submissions", self.url))
    }

    fn runs(&self) -> Vec<Value> {
        self.emulator.paperspace().dump()["runs"]
            .as_array()
            .unwrap()
            .clone()
    }
}

fn input(run: &Value, key: &str) -> String {
    run["inputs"][key]["with"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.json().await.unwrap();
    (status, body)
}

/// A refusal: the status, a JSON error with `code`, and no run started.
async fn assert_refused(env: &Env, response: reqwest::Response, status: u16, code: &str) {
    let (got, body) = json_of(response).await;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(env.runs().is_empty(), "a refused submission started a run");
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn signed(
    request: reqwest::RequestBuilder,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> reqwest::RequestBuilder {
    let signature = webhook::auth::sign(SECRET, id, timestamp, body);
    request
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", format!("v1,{signature}"))
        .body(body.to_vec())
}

const BOUNDARY: &str = "form-boundary-7MA4YWxk";

fn multipart(fields: &[(&str, &str)], files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    for (name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"documents\"; filename=\"{name}\"\r\nContent-Type: text/markdown\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

#[tokio::test(flavor = "multi_thread")]
async fn a_json_submission_starts_a_run_with_its_inputs() {
    let env = Env::start(config(), "test-paperspace-key").await;
    let response = env
        .post()
        .header("x-api-key", API_KEY)
        .json(&json!({
            "company_name": "Acme Rockets",
            "readiness_score": "75%",
            "use_cases_count": 4,
            "readiness_category": "adopter",
            "google_drive_link": "https://drive.google.com/drive/folders/1AbCdEfGhIjKlMnOpQrStUvWxYz012345",
        }))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "accepted");
    let code = body["confirmation_code"].as_str().unwrap();
    assert_eq!(code.len(), 11);

    let runs = env.runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(body["run"], runs[0]["id"]);
    assert_eq!(input(&runs[0], "company_name"), "Acme Rockets");
    assert_eq!(input(&runs[0], "company_slug"), "acme_rockets");
    assert_eq!(input(&runs[0], "readiness_score"), "75");
    assert_eq!(input(&runs[0], "use_cases_count"), "4");
    assert_eq!(input(&runs[0], "readiness_category"), "Adopter");
    assert_eq!(input(&runs[0], "run_id"), body["run_id"].as_str().unwrap());
    assert!(input(&runs[0], "google_drive_link").ends_with("1AbCdEfGhIjKlMnOpQrStUvWxYz012345"));
    assert_eq!(runs[0]["meta"]["confirmationCode"], code);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_multipart_submission_stores_the_documents_and_runs_on_them() {
    let env = Env::start(config(), "test-paperspace-key").await;
    let body = multipart(
        &[
            ("company_name", "Beta GmbH"),
            ("company_description", "Makes gears."),
        ],
        &[
            ("interview.md", b"# Interview\nWe automate invoices."),
            ("notes.md", b"Notes"),
        ],
    );
    let request = env.post().header(
        "content-type",
        format!("multipart/form-data; boundary={BOUNDARY}"),
    );
    let (status, answer) = json_of(
        signed(request, "msg_multipart_1", now(), &body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["documents"], 2);

    let folder_id = answer["drive_folder_id"].as_str().unwrap();
    let name = format!("beta_gmbh {}", answer["run_id"].as_str().unwrap());
    assert_eq!(
        env.emulator
            .google()
            .find_child(&env.parent_id, &name)
            .as_deref(),
        Some(folder_id)
    );
    let file = env
        .emulator
        .google()
        .find_child(folder_id, "interview.md")
        .unwrap();
    assert_eq!(
        env.emulator.google().file_bytes(&file).unwrap(),
        b"# Interview\nWe automate invoices."
    );
    let folder = env.emulator.google().dump()["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == folder_id)
        .cloned()
        .unwrap();
    assert_eq!(
        folder["appProperties"]["confirmation_code"],
        answer["confirmation_code"]
    );

    let runs = env.runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(input(&runs[0], "company_name"), "Beta GmbH");
    assert_eq!(input(&runs[0], "company_description"), "Makes gears.");
    let link = input(&runs[0], "google_drive_link");
    assert_eq!(
        shared::drive_link::parse_drive_id("link", &link).unwrap(),
        folder_id
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn authentication_refusals() {
    let env = Env::start(config(), "test-paperspace-key").await;
    let body = br#"{"company_name":"Acme"}"#;
    let json_post = || env.post().header("content-type", "application/json");

    assert_refused(
        &env,
        json_post().body(body.to_vec()).send().await.unwrap(),
        401,
        "unauthorized",
    )
    .await;
    assert_refused(
        &env,
        json_post()
            .header("x-api-key", "wrong-key-wrong-key")
            .body(body.to_vec())
            .send()
            .await
            .unwrap(),
        401,
        "unauthorized",
    )
    .await;
    let tampered =
        signed(json_post(), "msg_1", now(), body).body(br#"{"company_name":"Evil"}"#.to_vec());
    assert_refused(&env, tampered.send().await.unwrap(), 401, "bad_signature").await;
    let stale = signed(json_post(), "msg_2", now() - 6 * 60, body);
    assert_refused(&env, stale.send().await.unwrap(), 401, "stale_timestamp").await;

    let fresh = signed(json_post(), "msg_3", now(), body);
    assert_eq!(fresh.send().await.unwrap().status(), 202);
    let replay = signed(json_post(), "msg_3", now(), body);
    let (status, answer) = json_of(replay.send().await.unwrap()).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (409, Some("replayed"))
    );
    assert_eq!(env.runs().len(), 1, "the replay started nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn size_origin_media_and_input_refusals() {
    let env = Env::start(config(), "test-paperspace-key").await;
    let authed = || env.post().header("x-api-key", API_KEY);

    let big = json!({ "company_name": "Acme", "company_description": "x".repeat(MAX_BODY) });
    assert_refused(
        &env,
        authed().json(&big).send().await.unwrap(),
        413,
        "payload_too_large",
    )
    .await;
    // Without a Content-Length (chunked), the limit applies while reading.
    let chunks =
        futures::stream::iter((0..20).map(|_| Ok::<_, std::io::Error>(vec![b' '; MAX_BODY / 10])));
    let chunked = authed()
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks));
    assert_refused(
        &env,
        chunked.send().await.unwrap(),
        413,
        "payload_too_large",
    )
    .await;

    let foreign = authed()
        .header("origin", "https://evil.example.net")
        .json(&json!({ "company_name": "Acme" }));
    assert_refused(
        &env,
        foreign.send().await.unwrap(),
        403,
        "origin_not_allowed",
    )
    .await;
    let preflight = env
        .http
        .request(reqwest::Method::OPTIONS, format!("{}/submissions", env.url))
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type,x-api-key")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"]
            .to_str()
            .unwrap(),
        ORIGIN
    );

    let form = authed()
        .header("content-type", "text/plain")
        .body("company_name=Acme");
    assert_refused(
        &env,
        form.send().await.unwrap(),
        415,
        "unsupported_media_type",
    )
    .await;
    let (status, body) = json_of(
        authed()
            .json(&json!({ "company_name": "Acme", "use_cases_count": 21 }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 422);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("use_cases_count") && message.contains("21"),
        "{message}"
    );
    assert_refused(
        &env,
        authed()
            .json(&json!({ "company": "Acme" }))
            .send()
            .await
            .unwrap(),
        422,
        "invalid_input",
    )
    .await;
    let bad_name = multipart(&[("company_name", "Acme")], &[("../../etc/passwd", b"x")]);
    let traversal = authed()
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(bad_name);
    assert_refused(&env, traversal.send().await.unwrap(), 422, "invalid_input").await;
    assert!(env.runs().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_over_its_rate_limit_gets_429_with_retry_after() {
    let mut limited = config();
    limited.rate_limit = RateLimit {
        per_minute: 2.try_into().unwrap(),
        burst: 2.try_into().unwrap(),
    };
    limited.trust_forwarded_for = true;
    let env = Env::start(limited, "test-paperspace-key").await;
    let from = |ip: &str| {
        env.post()
            .header("x-api-key", API_KEY)
            .header("x-forwarded-for", ip)
            .json(&json!({ "company_name": "Acme" }))
    };
    assert_eq!(from("203.0.113.7").send().await.unwrap().status(), 202);
    assert_eq!(from("203.0.113.7").send().await.unwrap().status(), 202);
    let refused = from("203.0.113.7").send().await.unwrap();
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    let (_, body) = json_of(refused).await;
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(
        from("198.51.100.1").send().await.unwrap().status(),
        202,
        "other clients go on"
    );
    assert_eq!(env.runs().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idempotency_key_gives_the_first_answer_and_one_run() {
    let env = Env::start(config(), "test-paperspace-key").await;
    let submit = |company: &str| {
        env.post()
            .header("x-api-key", API_KEY)
            .header("idempotency-key", "form-42")
            .json(&json!({ "company_name": company }))
    };
    let (status, first) = json_of(submit("Acme").send().await.unwrap()).await;
    assert_eq!(status, 202);
    let again = submit("Acme").send().await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let (status, second) = json_of(again).await;
    assert_eq!((status, &second), (202, &first));
    assert_eq!(env.runs().len(), 1);
    let (status, other) = json_of(submit("Other Corp").send().await.unwrap()).await;
    assert_eq!(
        (status, other["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_that_cannot_start_is_a_failure_not_an_acceptance() {
    let env = Env::start(config(), "revoked-paperspace-key").await;
    let response = env
        .post()
        .header("x-api-key", API_KEY)
        .header("idempotency-key", "form-7")
        .json(&json!({ "company_name": "Acme" }))
        .send()
        .await
        .unwrap();
    assert_refused(&env, response, 502, "trigger_failed").await;
    // The failure was not stored under the key: a retry is processed again.
    let retry = env
        .post()
        .header("x-api-key", API_KEY)
        .header("idempotency-key", "form-7")
        .json(&json!({ "company_name": "Acme" }))
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 502);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_message_whose_run_failed_to_start_is_accepted_when_retried() {
    let env = Env::start(config(), "test-paperspace-key").await;
    let body = br#"{"company_name":"Acme"}"#;
    let json_post = || env.post().header("content-type", "application/json");
    // Paperspace is down for the first attempt (and the client's own retry).
    env.emulator.faults().set(
        Service::Paperspace,
        FaultSpec::every_nth(1, FaultError::Status { status: 503 }),
    );
    let first = signed(json_post(), "msg_retry_1", now(), body);
    assert_refused(&env, first.send().await.unwrap(), 502, "trigger_failed").await;
    let attempts = env
        .emulator
        .requests()
        .entries()
        .iter()
        .filter(|e| e.service == "paperspace")
        .count();
    assert!(attempts >= 1, "the first attempt reached Paperspace");

    // The sender retries the same message id with a fresh timestamp and signature.
    env.emulator.faults().clear(Service::Paperspace);
    let retry = signed(json_post(), "msg_retry_1", now() + 1, body);
    let (status, answer) = json_of(retry.send().await.unwrap()).await;
    assert_eq!(status, 202, "{answer}");
    let runs = env.runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(answer["run"], runs[0]["id"]);

    // Once accepted, the id is spent: a replay starts nothing.
    let replay = signed(json_post(), "msg_retry_1", now() + 2, body);
    let (status, refused) = json_of(replay.send().await.unwrap()).await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("replayed")),
        "{refused}"
    );
    assert_eq!(env.runs().len(), 1, "the replay started nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn health_needs_no_credentials_and_unknown_routes_answer_json() {
    let env = Env::start(config(), "test-paperspace-key").await;
    let (status, body) = json_of(
        env.http
            .get(format!("{}/health", env.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = json_of(
        env.http
            .get(format!("{}/debug", env.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, body) = json_of(
        env.http
            .get(format!("{}/submissions", env.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
}

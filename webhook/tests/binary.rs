//! The `webhook` binary as an operator starts it: refused without authentication configured,
//! serving `/health` once configured.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};

const SPEC: &str = "jobs:\n  setup:\n    uses: container@v1\n";
/// `whsec_` + base64 of a 32-byte test secret.
const SIGNING_SECRET: &str = "whsec_dGVzdC1zaWduaW5nLXNlY3JldC0zMi1ieXRlcy1sbmc=";

fn command(dir: &std::path::Path) -> tokio::process::Command {
    let spec = dir.join("spec.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_webhook"));
    cmd.env_clear()
        .env("WEBHOOK_LISTEN", "127.0.0.1:0")
        .env("PAPERSPACE_WORKFLOW_SPEC", &spec)
        .env("PAPERSPACE_API_KEY", "test-paperspace-key")
        .env("PAPERSPACE_API_URL", "http://127.0.0.1:9/paperspace/v1")
        .env("PAPERSPACE_WORKFLOW_ID", "wf")
        .env("LOG_FORMAT", "json")
        .kill_on_drop(true);
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_to_start_without_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path()).output().await.unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("WEBHOOK_API_KEY"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_a_wildcard_origin() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path())
        .env("WEBHOOK_API_KEY", "test-webhook-api-key")
        .env("WEBHOOK_ALLOWED_ORIGINS", "*")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("WEBHOOK_ALLOWED_ORIGINS"));
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_health_and_keeps_the_secrets_out_of_its_logs() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = command(dir.path())
        .env("WEBHOOK_API_KEY", "test-webhook-api-key")
        .env("WEBHOOK_SECRET", SIGNING_SECRET)
        .env("WEBHOOK_ALLOWED_ORIGINS", "https://forms.example.com")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut log = Vec::new();
    let address = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            log.push(line.clone());
            let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
            if let Some(rest) = entry["message"]
                .as_str()
                .and_then(|m| m.strip_prefix("listening on "))
            {
                return rest.to_string();
            }
        }
        panic!("the server exited: {log:?}");
    })
    .await
    .unwrap();
    shared::http::install_crypto_provider();
    let client = reqwest::Client::new();
    let health = client
        .get(format!("http://{address}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let refused = client
        .post(format!("http://{address}/submissions"))
        .header("x-api-key", "test-webhook-api-key-but-wrong")
        .json(&serde_json::json!({ "company_name": "Acme" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let line = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let line = lines.next_line().await.unwrap().unwrap();
            if line.contains("/submissions") {
                return line;
            }
            log.push(line);
        }
    })
    .await
    .unwrap();
    let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(entry["service"], "webhook");
    assert_eq!(entry["status"], 401);
    child.kill().await.unwrap();
    log.push(line);
    while let Ok(Some(line)) = lines.next_line().await {
        log.push(line);
    }
    for secret in [
        "test-webhook-api-key",
        "test-paperspace-key",
        SIGNING_SECRET,
        "dGVzdC1zaWduaW5nLXNlY3JldC0zMi1ieXRlcy1sbmc",
    ] {
        assert!(
            log.iter().all(|line| !line.contains(secret)),
            "{secret} in the log: {log:?}"
        );
    }
}

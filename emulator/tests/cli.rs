//! The `emulator` binary: prints its address first, serves requests, honours its flags.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Kills the emulator when the test ends, even on a failed assertion.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_prints_its_address_and_folder_ids_then_serves() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("sa.json");
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_emulator"))
            .args(["--port", "0", "--final-folder", "Final reports"])
            .arg("--write-service-account-key")
            .arg(&key_path)
            .args([
                "--openai-api-key",
                "cli-test-key",
                "--file-processing-ms",
                "5",
            ])
            .args(["--fault", r#"openai={"latency_ms":1}"#])
            .args(["--failing-file", "bad.pdf=invalid_file"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut url = String::new();
    stdout.read_line(&mut url).unwrap();
    let url = url.trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let mut folder = String::new();
    stdout.read_line(&mut folder).unwrap();
    let folder_id = folder.trim().strip_prefix("final_folder_id=").unwrap();
    assert!(!folder_id.is_empty());
    assert!(
        key_path.exists(),
        "the key is written before the address is printed"
    );

    let http = reqwest::Client::new();
    let listed = http
        .get(format!("{url}/v1/files"))
        .bearer_auth("cli-test-key")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let rejected = http
        .get(format!("{url}/v1/files"))
        .bearer_auth("test-openai-key")
        .send()
        .await
        .unwrap();
    assert_eq!(rejected.status(), 401);

    let state: serde_json::Value = http
        .get(format!("{url}/_admin/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["request_counts"]["GET /v1/files"], 2);
    assert_eq!(state["openai"]["settings"]["file_processing_ms"], 5);
    assert_eq!(
        state["openai"]["settings"]["failing_files"]["bad.pdf"],
        "invalid_file"
    );
    assert!(
        state["google"].to_string().contains(folder_id),
        "the final folder exists in Drive"
    );
}

#[test]
fn a_malformed_fault_flag_is_rejected_with_a_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_emulator"))
        .args(["--fault", "openai=not json"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid fault JSON"), "{stderr}");
}

//! The Files API and Bearer auth, driven through async-openai as the jobs use it.

mod openai_common;

use async_openai::error::OpenAIError;
use async_openai::traits::RequestOptionsBuilder;
use async_openai::types::files::OpenAIFilePurpose;
use emulator::Config;
use openai_common::{KEY, client, start, upload, write};

#[tokio::test]
async fn files_are_uploaded_listed_read_and_deleted() {
    let emulator = start(Config::new()).await;
    let openai = client(&emulator, KEY);
    let dir = tempfile::tempdir().unwrap();
    let notes = write(
        dir.path(),
        "notes.md",
        b"# Notes\n\nThe plant runs two shifts.\n",
    );
    let table = write(dir.path(), "table.csv", b"a,b\n1,2\n");

    let first = upload(&openai, &notes).await;
    let second = upload(&openai, &table).await;
    assert_eq!(first.filename, "notes.md");
    assert_eq!(first.bytes, Some(36));
    assert_eq!(first.purpose, OpenAIFilePurpose::Assistants);
    assert_ne!(first.id, second.id);

    let listed = openai.files().list().await.unwrap();
    let ids: Vec<&str> = listed.data.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, [second.id.as_str(), first.id.as_str()], "newest first");

    let page = openai
        .files()
        .query(&[("limit", "1"), ("order", "asc")])
        .unwrap()
        .list()
        .await
        .unwrap();
    assert_eq!(page.data.len(), 1);
    assert_eq!(page.data[0].id, first.id);
    assert!(page.has_more);

    let retrieved = openai.files().retrieve(&first.id).await.unwrap();
    assert_eq!(retrieved, first);
    let content = openai.files().content(&first.id).await.unwrap();
    assert_eq!(&content[..], b"# Notes\n\nThe plant runs two shifts.\n");

    let deleted = openai.files().delete(&first.id).await.unwrap();
    assert!(deleted.deleted);
    match openai.files().retrieve(&first.id).await {
        Err(OpenAIError::ApiError(error)) => {
            assert_eq!(error.status_code.as_u16(), 404);
            assert!(error.api_error.message.contains(&first.id));
        }
        other => panic!("expected a 404, got {other:?}"),
    }
    assert_eq!(emulator.requests().count("POST", "/v1/files"), 2);
    assert_eq!(
        emulator.requests().count("DELETE", "/v1/files/{file_id}"),
        1
    );
}

#[tokio::test]
async fn a_purpose_outside_the_official_enum_is_rejected() {
    let emulator = start(Config::new()).await;
    let form = reqwest::multipart::Form::new()
        .text("purpose", "knowledge")
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"text".to_vec()).file_name("a.txt"),
        );
    let response = reqwest::Client::new()
        .post(format!("{}/files", emulator.openai_base()))
        .bearer_auth(KEY)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["param"], "purpose");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("knowledge")
    );
}

#[tokio::test]
async fn wrong_and_revoked_keys_get_401_invalid_api_key() {
    let emulator = start(Config::new()).await;
    let wrong = client(&emulator, "not-the-key");
    match wrong.files().list().await {
        Err(OpenAIError::ApiError(error)) => {
            assert_eq!(error.status_code.as_u16(), 401);
            assert_eq!(error.api_error.code.as_deref(), Some("invalid_api_key"));
            assert!(
                !error.api_error.message.contains("not-the-key"),
                "key is redacted"
            );
        }
        other => panic!("expected 401, got {other:?}"),
    }

    let right = client(&emulator, KEY);
    right.files().list().await.unwrap();
    let revoked = reqwest::Client::new()
        .post(format!("{}/_admin/openai/revoke_key", emulator.url()))
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success());
    match right.files().list().await {
        Err(OpenAIError::ApiError(error)) => {
            assert_eq!(error.status_code.as_u16(), 401);
            assert_eq!(error.api_error.code.as_deref(), Some("invalid_api_key"));
        }
        other => panic!("expected 401 after revocation, got {other:?}"),
    }
    emulator.openai().restore_key();
    right.files().list().await.unwrap();
}

#[tokio::test]
async fn unknown_openai_paths_get_an_openai_shaped_404() {
    let emulator = start(Config::new()).await;
    let response = reqwest::Client::new()
        .get(format!("{}/assistants", emulator.openai_base()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/v1/assistants")
    );
}

//! Vector stores, their files and file batches through async-openai: creation with policy and
//! metadata, polling from in_progress to completed, paging, failures and expiry.

mod openai_common;

use std::collections::HashMap;
use std::time::Duration;

use async_openai::error::OpenAIError;
use async_openai::traits::RequestOptionsBuilder;
use async_openai::types::vectorstores::{
    CreateVectorStoreFileBatchRequestArgs, CreateVectorStoreFileRequestArgs,
    CreateVectorStoreRequestArgs, VectorStoreExpirationAfter, VectorStoreFileErrorCode,
    VectorStoreFileStatus, VectorStoreStatus,
};
use emulator::Config;
use emulator::openai::FileErrorCode;
use openai_common::{KEY, client, docx, pdf, start, upload, wait_for_batch, write};

#[tokio::test]
async fn a_batch_moves_from_in_progress_to_completed_and_reports_failures() {
    let emulator = start(
        Config::new()
            .file_processing_delay(Duration::from_millis(200))
            .failing_file("broken.md", FileErrorCode::InvalidFile),
    )
    .await;
    let openai = client(&emulator, KEY);
    let dir = tempfile::tempdir().unwrap();
    let files = [
        write(
            dir.path(),
            "notes.md",
            b"The plant runs two shifts every weekday.",
        ),
        write(
            dir.path(),
            "broken.md",
            b"This file is configured to fail processing.",
        ),
        write(dir.path(), "table.csv", b"line,output\nA,120\n"),
        write(
            dir.path(),
            "scan.pdf",
            &pdf(&["Quality checks are recorded on paper forms."]),
        ),
        write(
            dir.path(),
            "memo.docx",
            &docx(&["Purchasing approves every order above five hundred euros."]),
        ),
    ];
    let mut ids = Vec::new();
    for path in &files {
        ids.push(upload(&openai, path).await.id);
    }

    let store = openai
        .vector_stores()
        .create(
            CreateVectorStoreRequestArgs::default()
                .name("acme_run42")
                .metadata(serde_json::json!({"run_id": "run42"}))
                .expires_after(VectorStoreExpirationAfter {
                    anchor: "last_active_at".into(),
                    days: 7,
                })
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(store.name.as_deref(), Some("acme_run42"));
    assert_eq!(store.expires_after.as_ref().map(|p| p.days), Some(7));
    assert!(store.expires_at.unwrap() > store.created_at);
    let metadata = serde_json::to_value(&store.metadata).unwrap();
    assert_eq!(metadata["run_id"], "run42");

    let batch = openai
        .vector_stores()
        .file_batches(&store.id)
        .create(
            CreateVectorStoreFileBatchRequestArgs::default()
                .file_ids(ids.clone())
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&batch.status).unwrap(),
        "in_progress",
        "nothing is processed at once"
    );
    assert_eq!(batch.file_counts.total, 5);
    assert_eq!(batch.file_counts.in_progress, 5);
    let during = openai.vector_stores().retrieve(&store.id).await.unwrap();
    assert_eq!(during.status, VectorStoreStatus::InProgress);

    let done = wait_for_batch(&openai, &store.id, &batch.id).await;
    assert_eq!(done.file_counts.completed, 3);
    assert_eq!(done.file_counts.failed, 2);
    assert!(
        emulator.requests().count(
            "GET",
            "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}"
        ) > 1,
        "the client had to poll"
    );

    let listed = openai
        .vector_stores()
        .file_batches(&store.id)
        .list_files(&batch.id)
        .await
        .unwrap();
    assert_eq!(listed.data.len(), 5);
    let by_id: HashMap<&str, _> = listed.data.iter().map(|f| (f.id.as_str(), f)).collect();
    let broken = by_id[ids[1].as_str()];
    assert_eq!(broken.status, VectorStoreFileStatus::Failed);
    assert_eq!(
        broken.last_error.as_ref().unwrap().code,
        VectorStoreFileErrorCode::InvalidFile
    );
    let csv = by_id[ids[2].as_str()];
    assert_eq!(
        csv.last_error.as_ref().unwrap().code,
        VectorStoreFileErrorCode::UnsupportedFile
    );
    for index in [0, 3, 4] {
        let file = by_id[ids[index].as_str()];
        assert_eq!(
            file.status,
            VectorStoreFileStatus::Completed,
            "{:?}",
            files[index]
        );
        assert!(file.last_error.is_none());
        assert!(file.usage_bytes > 0);
    }

    let store = openai.vector_stores().retrieve(&store.id).await.unwrap();
    assert_eq!(store.status, VectorStoreStatus::Completed);
    assert_eq!(store.file_counts.completed, 3);
    assert_eq!(store.file_counts.failed, 2);
    assert!(store.usage_bytes > 0);
}

#[tokio::test]
async fn store_files_page_and_leave_with_their_file() {
    let emulator = start(Config::new().file_processing_delay(Duration::ZERO)).await;
    let openai = client(&emulator, KEY);
    let dir = tempfile::tempdir().unwrap();
    let store = openai
        .vector_stores()
        .create(
            CreateVectorStoreRequestArgs::default()
                .name("paging")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let mut attached = Vec::new();
    for index in 0..5 {
        let path = write(
            dir.path(),
            &format!("doc{index}.txt"),
            format!("Document number {index} describes one department.").as_bytes(),
        );
        let file = upload(&openai, &path).await;
        let attached_file = openai
            .vector_stores()
            .files(&store.id)
            .create(
                CreateVectorStoreFileRequestArgs::default()
                    .file_id(&file.id)
                    .build()
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(attached_file.vector_store_id, store.id);
        attached.push(file.id);
    }

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = vec![("limit", "2".to_string()), ("order", "asc".to_string())];
        if let Some(cursor) = &after {
            query.push(("after", cursor.clone()));
        }
        let page = openai
            .vector_stores()
            .files(&store.id)
            .query(&query)
            .unwrap()
            .list()
            .await
            .unwrap();
        assert!(page.data.len() <= 2);
        seen.extend(page.data.iter().map(|f| f.id.clone()));
        if !page.has_more {
            break;
        }
        after = page.last_id.clone();
    }
    assert_eq!(seen, attached);

    let one = openai
        .vector_stores()
        .files(&store.id)
        .retrieve(&attached[2])
        .await
        .unwrap();
    assert_eq!(one.status, VectorStoreFileStatus::Completed);
    let removed = openai
        .vector_stores()
        .files(&store.id)
        .delete(&attached[2])
        .await
        .unwrap();
    assert!(removed.deleted);
    let after_delete = openai
        .vector_stores()
        .files(&store.id)
        .list()
        .await
        .unwrap();
    assert_eq!(after_delete.data.len(), 4);

    // Deleting the file itself removes it from every store, as the published API says.
    openai.files().delete(&attached[0]).await.unwrap();
    let remaining: Vec<String> = openai
        .vector_stores()
        .files(&store.id)
        .query(&[("order", "asc")])
        .unwrap()
        .list()
        .await
        .unwrap()
        .data
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(
        remaining,
        [
            attached[1].clone(),
            attached[3].clone(),
            attached[4].clone()
        ]
    );
}

#[tokio::test]
async fn stores_are_listed_expired_by_the_admin_hook_and_deleted() {
    let emulator = start(Config::new()).await;
    let openai = client(&emulator, KEY);
    let mut ids = Vec::new();
    for name in ["first", "second"] {
        let store = openai
            .vector_stores()
            .create(
                CreateVectorStoreRequestArgs::default()
                    .name(name)
                    .build()
                    .unwrap(),
            )
            .await
            .unwrap();
        ids.push(store.id);
    }
    let listed = openai.vector_stores().list().await.unwrap();
    let names: Vec<_> = listed.data.iter().filter_map(|s| s.name.clone()).collect();
    assert_eq!(names, ["second", "first"]);

    let expired = reqwest::Client::new()
        .post(format!(
            "{}/_admin/openai/vector_stores/{}/expire",
            emulator.url(),
            ids[0]
        ))
        .send()
        .await
        .unwrap();
    assert!(expired.status().is_success());
    let store = openai.vector_stores().retrieve(&ids[0]).await.unwrap();
    assert_eq!(store.status, VectorStoreStatus::Expired);

    let deleted = openai.vector_stores().delete(&ids[1]).await.unwrap();
    assert!(deleted.deleted);
    match openai.vector_stores().retrieve(&ids[1]).await {
        Err(OpenAIError::ApiError(error)) => assert_eq!(error.status_code.as_u16(), 404),
        other => panic!("expected 404, got {other:?}"),
    }
    let dump = emulator.state_dump();
    let stores = dump["openai"]["vector_stores"].as_array().unwrap();
    assert_eq!(stores.len(), 1);
    assert_eq!(stores[0]["status"], "expired");
}

#[tokio::test]
async fn attaching_an_unknown_file_is_a_404_and_changes_nothing() {
    let emulator = start(Config::new()).await;
    let openai = client(&emulator, KEY);
    let store = openai
        .vector_stores()
        .create(CreateVectorStoreRequestArgs::default().build().unwrap())
        .await
        .unwrap();
    let result = openai
        .vector_stores()
        .file_batches(&store.id)
        .create(
            CreateVectorStoreFileBatchRequestArgs::default()
                .file_ids(vec!["file-missing".to_string()])
                .build()
                .unwrap(),
        )
        .await;
    match result {
        Err(OpenAIError::ApiError(error)) => {
            assert_eq!(error.status_code.as_u16(), 404);
            assert!(error.api_error.message.contains("file-missing"));
        }
        other => panic!("expected 404, got {other:?}"),
    }
    let store = openai.vector_stores().retrieve(&store.id).await.unwrap();
    assert_eq!(store.file_counts.total, 0);
}

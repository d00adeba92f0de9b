//! Helpers shared by the OpenAI and fault tests: an async-openai client wired to an emulator,
//! polling, and generators for PDF and DOCX test documents.

#![allow(dead_code)] // each test crate uses a different subset of these helpers

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::files::{CreateFileRequestArgs, FilePurpose, OpenAIFile};
use async_openai::types::vectorstores::{
    CreateVectorStoreFileBatchRequestArgs, CreateVectorStoreRequestArgs,
    VectorStoreFileBatchObject, VectorStoreFileBatchStatus,
};
use emulator::{Config, Emulator};

pub const KEY: &str = "test-openai-key";

/// reqwest is built without a TLS provider: install ring once per test process.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub async fn start(config: Config) -> Emulator {
    install_crypto();
    Emulator::start(config).await.unwrap()
}

pub fn client(emulator: &Emulator, key: &str) -> Client<OpenAIConfig> {
    install_crypto();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    Client::build(
        http,
        OpenAIConfig::new()
            .with_api_base(emulator.openai_base())
            .with_api_key(key),
    )
}

pub async fn upload(client: &Client<OpenAIConfig>, path: &Path) -> OpenAIFile {
    let request = CreateFileRequestArgs::default()
        .file(path)
        .purpose(FilePurpose::Assistants)
        .build()
        .unwrap();
    client.files().create(request).await.unwrap()
}

pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Uploads `paths`, attaches them to a new store named `name` in one file batch and waits for
/// the batch to finish; returns the store id and the finished batch.
pub async fn store_with(
    client: &Client<OpenAIConfig>,
    name: &str,
    paths: &[PathBuf],
) -> (String, VectorStoreFileBatchObject) {
    let mut ids = Vec::new();
    for path in paths {
        ids.push(upload(client, path).await.id);
    }
    let store = client
        .vector_stores()
        .create(
            CreateVectorStoreRequestArgs::default()
                .name(name)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let batch = client
        .vector_stores()
        .file_batches(&store.id)
        .create(
            CreateVectorStoreFileBatchRequestArgs::default()
                .file_ids(ids)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let done = wait_for_batch(client, &store.id, &batch.id).await;
    (store.id, done)
}

/// Polls a file batch until it leaves `in_progress`; panics after a few seconds.
pub async fn wait_for_batch(
    client: &Client<OpenAIConfig>,
    store_id: &str,
    batch_id: &str,
) -> VectorStoreFileBatchObject {
    for _ in 0..200 {
        let batch = client
            .vector_stores()
            .file_batches(store_id)
            .retrieve(batch_id)
            .await
            .unwrap();
        if batch.status != VectorStoreFileBatchStatus::InProgress {
            return batch;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("batch {batch_id} never finished");
}

/// A one-page PDF whose text is `lines`, one per line.
pub fn pdf(lines: &[&str]) -> Vec<u8> {
    use lopdf::content::{Content, Operation};
    use lopdf::{Document, Object, Stream, dictionary};
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Courier",
    });
    let resources_id = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font_id } });
    let mut operations = vec![
        Operation::new("BT", vec![]),
        Operation::new("Tf", vec!["F1".into(), 10.into()]),
        Operation::new("TL", vec![14.into()]),
        Operation::new("Td", vec![40.into(), 800.into()]),
    ];
    for line in lines {
        operations.push(Operation::new("Tj", vec![Object::string_literal(*line)]));
        operations.push(Operation::new("T*", vec![]));
    }
    operations.push(Operation::new("ET", vec![]));
    let content = Content { operations };
    let content_id = doc.add_object(Stream::new(dictionary! {}, content.encode().unwrap()));
    let page_id = doc.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
    });
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog_id);
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).unwrap();
    bytes
}

/// A DOCX with one paragraph per entry, as Word packs it (content types, relationships).
pub fn docx(paragraphs: &[&str]) -> Vec<u8> {
    let document = paragraphs.iter().fold(docx_rs::Docx::new(), |doc, text| {
        doc.add_paragraph(docx_rs::Paragraph::new().add_run(docx_rs::Run::new().add_text(*text)))
    });
    let mut buffer = std::io::Cursor::new(Vec::new());
    document.build().pack(&mut buffer).unwrap();
    buffer.into_inner()
}

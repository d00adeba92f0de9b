//! A form submission: the §3 profile fields and, in multipart form, the documents.
//!
//! JSON bodies are an object of §3 keys; multipart bodies carry the same keys as text fields and
//! the documents as file fields (any field name). Everything is checked here, before anything is
//! stored or started, with the same validation as the jobs: unknown keys, invalid values and
//! document names the `setup` job would refuse (§8) are answered 422 naming the field.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use serde_json::Value;
use shared::inputs::{KEYS, RunInputs};

use crate::error::ApiError;

/// Documents per submission at most.
pub const MAX_DOCUMENTS: usize = 100;
const MAX_NAME_CHARS: usize = 200;

/// An uploaded document.
#[derive(Debug, Clone)]
pub struct Document {
    pub name: String,
    pub content_type: String,
    pub bytes: Bytes,
}

/// A validated submission.
#[derive(Debug, Clone)]
pub struct Submission {
    pub inputs: RunInputs,
    pub documents: Vec<Document>,
}

impl Submission {
    /// What identifies the submission for `Idempotency-Key`: its inputs and its documents'
    /// names and digests (not the multipart boundary, which changes on every retry).
    pub fn fingerprint(&self) -> String {
        let documents: Vec<(&str, String)> = self
            .documents
            .iter()
            .map(|d| (d.name.as_str(), shared::markers::sha256_hex(&d.bytes)))
            .collect();
        shared::markers::fingerprint(&serde_json::json!({
            "inputs": self.inputs,
            "documents": documents,
        }))
    }
}

/// Parses and validates a body according to its `Content-Type`.
pub async fn parse(headers: &HeaderMap, body: Bytes) -> Result<Submission, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime: mime::Mime = content_type
        .parse()
        .map_err(|_| unsupported(content_type))?;
    let (fields, documents) = match (mime.type_(), mime.subtype()) {
        (mime::APPLICATION, mime::JSON) => (json_fields(&body)?, Vec::new()),
        (mime::MULTIPART, mime::FORM_DATA) => multipart_fields(content_type, body).await?,
        _ => return Err(unsupported(content_type)),
    };
    let raw: BTreeMap<&str, &str> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let inputs =
        shared::inputs::validate(&raw).map_err(|e| ApiError::invalid_input(e.message()))?;
    if !documents.is_empty() && !inputs.google_drive_link.is_empty() {
        return Err(ApiError::invalid_input(
            "send either documents or google_drive_link, not both",
        ));
    }
    check_documents(&documents)?;
    Ok(Submission { inputs, documents })
}

fn unsupported(content_type: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        format!(
            "Content-Type {content_type:?} is not accepted: send application/json or \
             multipart/form-data"
        ),
    )
}

fn unknown_key(key: &str) -> ApiError {
    ApiError::invalid_input(format!(
        "unknown field {key:?}; known fields: {}",
        KEYS.join(", ")
    ))
}

fn json_fields(body: &[u8]) -> Result<BTreeMap<String, String>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(ApiError::bad_request(
            "the body must be a JSON object of run-input fields",
        ));
    };
    let mut fields = BTreeMap::new();
    for (key, value) in map {
        if !KEYS.contains(&key.as_str()) {
            return Err(unknown_key(&key));
        }
        let text = match value {
            Value::Null => continue,
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(ApiError::invalid_input(format!(
                    "field {key:?} must be a string or a number"
                )));
            }
        };
        fields.insert(key, text);
    }
    Ok(fields)
}

type Fields = (BTreeMap<String, String>, Vec<Document>);

async fn multipart_fields(content_type: &str, body: Bytes) -> Result<Fields, ApiError> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| ApiError::bad_request("multipart/form-data without a boundary parameter"))?;
    let stream = futures::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut fields = BTreeMap::new();
    let mut documents = Vec::new();
    let malformed =
        |e: multer::Error| ApiError::bad_request(format!("malformed multipart body: {e}"));
    while let Some(field) = multipart.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or_default().to_string();
        if let Some(file_name) = field.file_name().map(str::to_string) {
            if documents.len() >= MAX_DOCUMENTS {
                return Err(ApiError::invalid_input(format!(
                    "too many documents: at most {MAX_DOCUMENTS} per submission"
                )));
            }
            let content_type = field
                .content_type()
                .map(|m| m.essence_str().to_string())
                .unwrap_or_else(|| "application/octet-stream".to_string());
            let bytes = field.bytes().await.map_err(malformed)?;
            documents.push(Document {
                name: file_name,
                content_type,
                bytes,
            });
        } else {
            if !KEYS.contains(&name.as_str()) {
                return Err(unknown_key(&name));
            }
            let text = field.text().await.map_err(malformed)?;
            if fields.insert(name.clone(), text).is_some() {
                return Err(ApiError::invalid_input(format!(
                    "field {name:?} is given twice"
                )));
            }
        }
    }
    Ok((fields, documents))
}

/// Names and contents the `setup` job would refuse are refused here, at the door.
fn check_documents(documents: &[Document]) -> Result<(), ApiError> {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for document in documents {
        let name = document.name.as_str();
        if let Some(problem) = name_problem(name) {
            return Err(ApiError::invalid_input(format!(
                "document name {name:?} {problem}"
            )));
        }
        if document.bytes.is_empty() {
            return Err(ApiError::invalid_input(format!(
                "document {name:?} is empty"
            )));
        }
        if let Some(first) = seen.insert(name.to_lowercase(), name) {
            return Err(ApiError::invalid_input(format!(
                "two documents are named {first:?} and {name:?}; rename one"
            )));
        }
    }
    Ok(())
}

fn name_problem(name: &str) -> Option<&'static str> {
    const RESERVED: [&str; 4] = ["CON", "PRN", "AUX", "NUL"];
    let stem = name
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let numbered_device = (stem.starts_with("COM") || stem.starts_with("LPT"))
        && stem.len() == 4
        && stem.as_bytes()[3].is_ascii_digit();
    if name.trim().is_empty() {
        Some("is empty")
    } else if name.chars().count() > MAX_NAME_CHARS {
        Some("is longer than 200 characters")
    } else if name.contains(['/', '\\']) {
        Some("contains a path separator")
    } else if name.starts_with('.') {
        Some("starts with a dot")
    } else if name.chars().any(char::is_control) {
        Some("contains control characters")
    } else if name.chars().any(|c| u32::from(c) > 0xFFFF) {
        Some("contains characters outside the Basic Multilingual Plane (e.g. emoji)")
    } else if RESERVED.contains(&stem.as_str()) || numbered_device {
        Some("is a reserved device name")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_setup_would_refuse_are_refused() {
        for bad in [
            "../../etc/passwd",
            "CON",
            "con.txt",
            "a\u{1}b",
            "notes 😀.md",
            ".hidden",
            "",
            "LPT1.doc",
        ] {
            assert!(name_problem(bad).is_some(), "{bad:?}");
        }
        for good in [
            "Interview 1.docx",
            "strategy-2026.pdf",
            "Übersicht.xlsx",
            "CONTRACT.pdf",
        ] {
            assert_eq!(name_problem(good), None, "{good:?}");
        }
    }
}

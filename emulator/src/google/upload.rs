//! Drive uploads: `uploadType=media`, `multipart` (a `multipart/related` body: JSON metadata,
//! then the media) and `resumable` (a session URL in `Location`, then `PUT` chunks with
//! `Content-Range`, answered `308` with `Range` until the last byte arrives).
//!
//! Create is `POST /upload/drive/v3/files`, content update `PATCH /upload/drive/v3/files/{id}`.
//! google-drive3 starts resumable sessions under `/resumable/upload/...`, the Python client
//! under `/upload/...`; both are served.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{patch, post};

use super::error::DriveError;
use super::files::{
    FileMetadata, Params, check_parents, create_file, file_response, update_file, visible,
};
use super::oauth::{Need, authorize};
use super::{GoogleState, Inner};

/// Google wants every chunk but the last to hold at least 256 KiB.
const MIN_CHUNK_BYTES: usize = 262_144;

/// What a finished upload does.
#[derive(Debug)]
enum Target {
    Create,
    Update(String),
}

/// A resumable upload in progress.
pub(crate) struct UploadSession {
    target: Target,
    metadata: FileMetadata,
    media_type: String,
    total: Option<usize>,
    received: Vec<u8>,
    /// The parameters of the request that opened the session (`fields`, `supportsAllDrives`):
    /// they shape the final answer.
    params: Params,
}

pub(crate) fn routes() -> Router<Arc<GoogleState>> {
    let mut router = Router::new();
    for prefix in ["/upload", "/resumable/upload"] {
        router = router
            .route(
                &format!("{prefix}/drive/v3/files"),
                post(upload_create).put(resumable_put),
            )
            .route(
                &format!("{prefix}/drive/v3/files/{{id}}"),
                patch(upload_update).put(resumable_put).post(resumable_put),
            );
    }
    router
}

async fn upload_create(
    State(state): State<Arc<GoogleState>>,
    headers: HeaderMap,
    Query(params): Query<Params>,
    body: Bytes,
) -> Result<Response, DriveError> {
    // google-drive3 sends the chunks of a resumable upload with POST to the session URL.
    if params.contains_key("upload_id") {
        return upload_chunk(&state, &headers, &params, &body);
    }
    authorize(
        &state,
        &headers,
        Need::Write,
        "google.apps.drive.v3.DriveFiles.Create",
    )?;
    start_upload(&state, &headers, &params, body, Target::Create).await
}

async fn upload_update(
    State(state): State<Arc<GoogleState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Query<Params>,
    body: Bytes,
) -> Result<Response, DriveError> {
    authorize(
        &state,
        &headers,
        Need::Write,
        "google.apps.drive.v3.DriveFiles.Update",
    )?;
    start_upload(&state, &headers, &params, body, Target::Update(id)).await
}

/// Handles the first request of any upload type.
async fn start_upload(
    state: &GoogleState,
    headers: &HeaderMap,
    params: &Params,
    body: Bytes,
    target: Target,
) -> Result<Response, DriveError> {
    let content_type = header_text(headers, header::CONTENT_TYPE.as_str());
    let (metadata, media) = match params.get("uploadType").map(String::as_str) {
        Some("media") => (
            FileMetadata::default(),
            (
                content_type.unwrap_or_else(|| "application/octet-stream".into()),
                body.to_vec(),
            ),
        ),
        Some("multipart") => parse_related(content_type.as_deref(), body).await?,
        Some("resumable") => return open_session(state, headers, params, &body, target),
        _ => return Err(DriveError::invalid("uploadType", "Invalid Value")),
    };
    let mut inner = state.lock();
    let id = finish(&mut inner, &target, &metadata, (&media.0, media.1), params)?;
    Ok(file_response(&inner.files[&id], params))
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Creates or updates the file once all its bytes are there; returns its id.
fn finish(
    inner: &mut Inner,
    target: &Target,
    metadata: &FileMetadata,
    media: (&str, Vec<u8>),
    params: &Params,
) -> Result<String, DriveError> {
    match target {
        Target::Create => create_file(inner, metadata, Some(media), params),
        Target::Update(id) => {
            update_file(inner, id, metadata, Some(media), params)?;
            Ok(id.clone())
        }
    }
}

/// Splits a `multipart/related` body into its JSON metadata and its media part.
async fn parse_related(
    content_type: Option<&str>,
    body: Bytes,
) -> Result<(FileMetadata, (String, Vec<u8>)), DriveError> {
    let invalid = |why: &str| DriveError::bad_request(format!("Invalid multipart request: {why}"));
    let content_type = content_type.ok_or_else(|| invalid("no Content-Type"))?;
    let boundary = content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .next()
        .map(|b| b.trim_matches('"').to_string())
        .ok_or_else(|| invalid("no boundary"))?;
    let stream = futures::stream::once(async move { Ok::<Bytes, Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut parts = Vec::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| invalid(&e.to_string()))?
    {
        let part_type = field.content_type().map_or_else(
            || "application/octet-stream".to_string(),
            |m| m.essence_str().to_string(),
        );
        let bytes = field.bytes().await.map_err(|e| invalid(&e.to_string()))?;
        parts.push((part_type, bytes.to_vec()));
    }
    let mut parts = parts.into_iter();
    match (parts.next(), parts.next(), parts.next()) {
        (Some((_, metadata)), Some(media), None) => {
            Ok((FileMetadata::from_body(&metadata)?, media))
        }
        _ => Err(invalid("expected a metadata part and a media part")),
    }
}

/// `uploadType=resumable`, first request: checks what can be checked now and answers with the
/// session URL.
fn open_session(
    state: &GoogleState,
    headers: &HeaderMap,
    params: &Params,
    body: &[u8],
    target: Target,
) -> Result<Response, DriveError> {
    let metadata = FileMetadata::from_body(body)?;
    let media_type = header_text(headers, "x-upload-content-type")
        .or_else(|| metadata.mime_type.clone())
        .unwrap_or_else(|| "application/octet-stream".to_string());
    let total = header_text(headers, "x-upload-content-length").and_then(|t| t.parse().ok());
    let mut inner = state.lock();
    match &target {
        Target::Create => {
            check_parents(
                &inner,
                metadata.parents.as_deref().unwrap_or_default(),
                params,
            )?;
        }
        Target::Update(id) => {
            visible(&inner, id, params)?;
        }
    }
    let upload_id = format!("emulator-upload-{}", inner.next_sequence());
    let path = match &target {
        Target::Create => "/upload/drive/v3/files".to_string(),
        Target::Update(id) => format!("/upload/drive/v3/files/{id}"),
    };
    inner.uploads.insert(
        upload_id.clone(),
        UploadSession {
            target,
            metadata,
            media_type,
            total,
            received: Vec::new(),
            params: params.clone(),
        },
    );
    let host = header_text(headers, header::HOST.as_str());
    let origin = host.map_or_else(|| state.base_url.clone(), |h| format!("http://{h}"));
    let location = format!("{origin}{path}?uploadType=resumable&upload_id={upload_id}");
    let mut response = StatusCode::OK.into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if let Ok(value) = HeaderValue::from_str(&upload_id) {
        response.headers_mut().insert("x-guploader-uploadid", value);
    }
    Ok(response)
}

/// A parsed `Content-Range` of an upload chunk.
#[derive(Debug, PartialEq)]
enum ChunkRange {
    /// `bytes */total`: "how much do you have?"
    Query(Option<usize>),
    /// `bytes first-last/total` (total may be `*` while the size is unknown).
    Bytes {
        first: usize,
        last: usize,
        total: Option<usize>,
    },
}

fn parse_content_range(text: &str) -> Option<ChunkRange> {
    let spec = text.trim().strip_prefix("bytes")?.trim();
    let (range, total) = spec.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    if range.trim() == "*" {
        return Some(ChunkRange::Query(total));
    }
    let (first, last) = range.split_once('-')?;
    Some(ChunkRange::Bytes {
        first: first.trim().parse().ok()?,
        last: last.trim().parse().ok()?,
        total,
    })
}

/// `PUT` (or `POST`) on a session URL. The session id is the credential, as in Drive: chunks
/// need no Authorization header.
async fn resumable_put(
    State(state): State<Arc<GoogleState>>,
    headers: HeaderMap,
    Query(params): Query<Params>,
    body: Bytes,
) -> Result<Response, DriveError> {
    upload_chunk(&state, &headers, &params, &body)
}

/// One chunk of a resumable upload (or the whole media, or a status query).
fn upload_chunk(
    state: &GoogleState,
    headers: &HeaderMap,
    params: &Params,
    body: &[u8],
) -> Result<Response, DriveError> {
    let upload_id = params
        .get("upload_id")
        .ok_or_else(|| DriveError::required("upload_id"))?;
    let mut inner = state.lock();
    let session = inner
        .uploads
        .get_mut(upload_id)
        .ok_or_else(DriveError::upload_session_not_found)?;
    let range = match header_text(headers, header::CONTENT_RANGE.as_str()) {
        None => ChunkRange::Bytes {
            first: 0,
            last: body.len().saturating_sub(1),
            total: Some(body.len()),
        },
        Some(text) => parse_content_range(&text)
            .ok_or_else(|| DriveError::bad_request(format!("Invalid Content-Range: {text}")))?,
    };
    match range {
        ChunkRange::Query(total) => {
            if total.is_some() {
                session.total = total;
            }
        }
        ChunkRange::Bytes { first, last, total } => {
            if total.is_some() {
                session.total = total;
            }
            let expected_length = (last + 1).saturating_sub(first);
            if !body.is_empty() && body.len() != expected_length {
                return Err(DriveError::bad_request(format!(
                    "Content-Range covers {expected_length} bytes but the request carries {}.",
                    body.len()
                )));
            }
            let is_last = session.total == Some(last + 1);
            if !is_last && body.len() < MIN_CHUNK_BYTES {
                return Err(DriveError::bad_request(format!(
                    "Invalid request. The number of bytes uploaded is required to be equal or \
                     greater than {MIN_CHUNK_BYTES}, except for the final request (it's \
                     recommended to be the exact multiple of {MIN_CHUNK_BYTES}). The received \
                     request contained {} bytes, which does not meet this requirement.",
                    body.len()
                )));
            }
            // A chunk that does not continue where the session stands is ignored; the 308
            // below tells the client where to resume, as Drive does.
            if first == session.received.len() {
                session.received.extend_from_slice(body);
            }
        }
    }
    if session.total == Some(session.received.len()) {
        let Some(session) = inner.uploads.remove(upload_id) else {
            return Err(DriveError::upload_session_not_found());
        };
        let id = finish(
            &mut inner,
            &session.target,
            &session.metadata,
            (&session.media_type, session.received),
            &session.params,
        )?;
        return Ok(file_response(&inner.files[&id], &session.params));
    }
    let mut response = StatusCode::PERMANENT_REDIRECT.into_response();
    if let Some(last) = session.received.len().checked_sub(1)
        && let Ok(value) = HeaderValue::from_str(&format!("bytes=0-{last}"))
    {
        response.headers_mut().insert(header::RANGE, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 0-262143/600000"),
            Some(ChunkRange::Bytes {
                first: 0,
                last: 262_143,
                total: Some(600_000)
            })
        );
        assert_eq!(
            parse_content_range("bytes 10-19/*"),
            Some(ChunkRange::Bytes {
                first: 10,
                last: 19,
                total: None
            })
        );
        assert_eq!(
            parse_content_range("bytes */42"),
            Some(ChunkRange::Query(Some(42)))
        );
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }
}

//! Drive v3 `files` routes that carry no upload: list, get (metadata or `alt=media`), export,
//! metadata-only create (folders), metadata update and delete; plus the create/update logic
//! that the upload routes share.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::DriveError;
use super::export;
use super::fields::{DEFAULT_FILE_FIELDS, DEFAULT_LIST_FIELDS, select};
use super::oauth::{Need, authorize};
use super::query::Query as DriveQuery;
use super::tree::{self, Access, DOC_MIME, DriveFile, FOLDER_MIME, SHEET_MIME};
use super::{GoogleState, Inner};

pub(crate) type Params = HashMap<String, String>;

const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 1000;
const XLSX_MIME: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

pub(crate) fn routes() -> Router<Arc<GoogleState>> {
    Router::new()
        .route("/drive/v3/files", get(list).post(create_metadata_only))
        .route(
            "/drive/v3/files/{id}",
            get(get_file).patch(update_metadata).delete(delete_file),
        )
        .route("/drive/v3/files/{id}/export", get(export_file))
}

/// The writable part of a `File` resource in a request body.
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FileMetadata {
    pub name: Option<String>,
    pub mime_type: Option<String>,
    pub parents: Option<Vec<String>>,
    /// A `null` value deletes the property, as in Drive.
    pub app_properties: Option<BTreeMap<String, Option<String>>>,
    pub trashed: Option<bool>,
}

impl FileMetadata {
    /// Parses a JSON request body; an empty body means "no metadata".
    pub(crate) fn from_body(body: &[u8]) -> Result<FileMetadata, DriveError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(FileMetadata::default());
        }
        serde_json::from_slice(body)
            .map_err(|e| DriveError::invalid("body", format!("Invalid JSON payload received. {e}")))
    }
}

pub(crate) fn flag(params: &Params, name: &str) -> bool {
    params.get(name).is_some_and(|v| v == "true")
}

/// A file the caller may see: missing, unshared and (without `supportsAllDrives`) shared-drive
/// items all answer the same 404.
pub(crate) fn visible<'a>(
    inner: &'a Inner,
    id: &str,
    params: &Params,
) -> Result<&'a DriveFile, DriveError> {
    inner
        .files
        .get(id)
        .filter(|f| f.access != Access::Hidden)
        .filter(|f| f.drive_id.is_none() || flag(params, "supportsAllDrives"))
        .ok_or_else(|| DriveError::not_found(id))
}

fn writable<'a>(inner: &'a Inner, id: &str, params: &Params) -> Result<&'a DriveFile, DriveError> {
    let file = visible(inner, id, params)?;
    if file.access == Access::Writable {
        Ok(file)
    } else {
        Err(DriveError::insufficient_file_permissions(id))
    }
}

/// The JSON answer for one file, cut down to the request's `fields`.
pub(crate) fn file_response(file: &DriveFile, params: &Params) -> Response {
    let mask = params
        .get("fields")
        .map_or(DEFAULT_FILE_FIELDS, String::as_str);
    Json(select(&file.resource(), mask)).into_response()
}

async fn list(
    State(state): State<Arc<GoogleState>>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Result<Response, DriveError> {
    authorize(
        &state,
        &headers,
        Need::Read,
        "google.apps.drive.v3.DriveFiles.List",
    )?;
    let page_size = match params.get("pageSize") {
        None => DEFAULT_PAGE_SIZE,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| {
                DriveError::invalid(
                    "pageSize",
                    format!("Invalid value '{text}'. Values must be within the range: [1, 1000]"),
                )
            })?,
    };
    let query = match params.get("q").map(|q| q.trim()).filter(|q| !q.is_empty()) {
        Some(q) => {
            Some(DriveQuery::parse(q).map_err(|_| DriveError::invalid("q", "Invalid Value"))?)
        }
        None => None,
    };
    let offset = match params.get("pageToken").filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => token
            .strip_prefix("page-")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| DriveError::invalid("pageToken", "Invalid Value"))?,
    };
    let all_drives = flag(&params, "includeItemsFromAllDrives");
    let only_drive = match params.get("corpora").map(String::as_str) {
        Some("drive") => params.get("driveId").cloned(),
        _ => None,
    };

    let inner = state.lock();
    let mut matching: Vec<&DriveFile> = inner
        .files
        .values()
        .filter(|f| f.access != Access::Hidden)
        .filter(|f| f.drive_id.is_none() || all_drives)
        .filter(|f| only_drive.is_none() || f.drive_id == only_drive)
        .filter(|f| query.as_ref().is_none_or(|q| q.matches(f)))
        .collect();
    let order_by = params.get("orderBy").map_or("name", String::as_str);
    matching.sort_by(|a, b| compare(a, b, order_by));

    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(page_size)
        .map(|f| f.resource())
        .collect();
    let mut body = json!({
        "kind": "drive#fileList",
        "incompleteSearch": false,
        "files": page,
    });
    if offset + page_size < matching.len() {
        body["nextPageToken"] = json!(format!("page-{}", offset + page_size));
    }
    let mask = params
        .get("fields")
        .map_or(DEFAULT_LIST_FIELDS, String::as_str);
    Ok(Json(select(&body, mask)).into_response())
}

/// Drive's `orderBy`: comma-separated keys, each optionally followed by `desc`.
fn compare(a: &DriveFile, b: &DriveFile, order_by: &str) -> Ordering {
    for key in order_by.split(',') {
        let mut words = key.split_whitespace();
        let field = words.next().unwrap_or_default();
        let descending = words.next().is_some_and(|w| w.eq_ignore_ascii_case("desc"));
        let ordering = match field {
            "folder" => b.is_folder().cmp(&a.is_folder()),
            "name" | "name_natural" => a.name.cmp(&b.name),
            "modifiedTime" | "modifiedByMeTime" => a.modified_time.cmp(&b.modified_time),
            "createdTime" => a.created_time.cmp(&b.created_time),
            _ => Ordering::Equal,
        };
        let ordering = if descending {
            ordering.reverse()
        } else {
            ordering
        };
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    a.id.cmp(&b.id)
}

async fn get_file(
    State(state): State<Arc<GoogleState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Result<Response, DriveError> {
    authorize(
        &state,
        &headers,
        Need::Read,
        "google.apps.drive.v3.DriveFiles.Get",
    )?;
    let inner = state.lock();
    let file = visible(&inner, &id, &params)?;
    if params.get("alt").map(String::as_str) == Some("media") {
        if file.is_native() {
            return Err(DriveError::not_downloadable());
        }
        return Ok(bytes_response(&file.mime_type, file.content.clone()));
    }
    Ok(file_response(file, &params))
}

fn bytes_response(content_type: &str, bytes: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type.to_string())],
        Bytes::from(bytes),
    )
        .into_response()
}

async fn export_file(
    State(state): State<Arc<GoogleState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Result<Response, DriveError> {
    authorize(
        &state,
        &headers,
        Need::Read,
        "google.apps.drive.v3.DriveFiles.Export",
    )?;
    let target = params
        .get("mimeType")
        .cloned()
        .ok_or_else(|| DriveError::required("mimeType"))?;
    // files.export has no supportsAllDrives parameter: shared-drive files export without it.
    let file = {
        let inner = state.lock();
        inner
            .files
            .get(&id)
            .filter(|f| f.access != Access::Hidden)
            .cloned()
            .ok_or_else(|| DriveError::not_found(&id))?
    };
    if !file.is_native() || file.is_folder() {
        return Err(DriveError::not_exportable());
    }
    let bytes = export::export(&file, &target)?;
    Ok(bytes_response(&target, bytes))
}

async fn create_metadata_only(
    State(state): State<Arc<GoogleState>>,
    headers: HeaderMap,
    Query(params): Query<Params>,
    body: Bytes,
) -> Result<Response, DriveError> {
    authorize(
        &state,
        &headers,
        Need::Write,
        "google.apps.drive.v3.DriveFiles.Create",
    )?;
    let metadata = FileMetadata::from_body(&body)?;
    let mut inner = state.lock();
    let id = create_file(&mut inner, &metadata, None, &params)?;
    Ok(file_response(&inner.files[&id], &params))
}

/// Checks that new children may go into `parents`; returns the shared drive they belong to.
pub(crate) fn check_parents(
    inner: &Inner,
    parents: &[String],
    params: &Params,
) -> Result<Option<String>, DriveError> {
    let mut drive_id = None;
    for parent in parents {
        let folder = writable(inner, parent, params)?;
        if !folder.is_folder() {
            return Err(DriveError::invalid(
                "parents",
                format!("The parent {parent} is not a folder."),
            ));
        }
        drive_id = folder.drive_id.clone();
    }
    Ok(drive_id)
}

/// What is stored for `media` uploaded into a file of type `target_mime`: Docs are converted
/// from text, Sheets keep their XLSX, other Google types take no content.
fn stored_content(
    target_mime: &str,
    media: Option<(&str, Vec<u8>)>,
) -> Result<Vec<u8>, DriveError> {
    match (target_mime, media) {
        (_, None) => Ok(Vec::new()),
        (DOC_MIME, Some((media_type, bytes))) => export::import_as_doc(media_type, &bytes),
        (SHEET_MIME, Some((XLSX_MIME, bytes))) => Ok(bytes),
        (native, Some(_)) if native.starts_with("application/vnd.google-apps.") => Err(
            DriveError::bad_request(format!("Uploaded content cannot be converted to {native}.")),
        ),
        (_, Some((_, bytes))) => Ok(bytes),
    }
}

fn apply_app_properties(file: &mut DriveFile, properties: &BTreeMap<String, Option<String>>) {
    for (key, value) in properties {
        match value {
            Some(value) => {
                file.app_properties.insert(key.clone(), value.clone());
            }
            None => {
                file.app_properties.remove(key);
            }
        }
    }
}

/// Creates a file (or folder) from request metadata and optional media `(type, bytes)`;
/// returns its id.
pub(crate) fn create_file(
    inner: &mut Inner,
    metadata: &FileMetadata,
    media: Option<(&str, Vec<u8>)>,
    params: &Params,
) -> Result<String, DriveError> {
    let parents = metadata.parents.clone().unwrap_or_default();
    let drive_id = check_parents(inner, &parents, params)?;
    let media_type = media.as_ref().map(|(t, _)| t.to_string());
    let mime = metadata
        .mime_type
        .clone()
        .or(media_type)
        .unwrap_or_else(|| "application/octet-stream".to_string());
    // google-drive3 has no metadata-only create: it makes folders by uploading an empty body.
    let content = if mime == FOLDER_MIME {
        if media.as_ref().is_some_and(|(_, bytes)| !bytes.is_empty()) {
            return Err(DriveError::bad_request("A folder cannot have content."));
        }
        Vec::new()
    } else {
        stored_content(&mime, media)?
    };
    let id = tree::created_id(inner.next_sequence());
    let name = metadata
        .name
        .clone()
        .unwrap_or_else(|| "Untitled".to_string());
    let mut file = DriveFile::new(&id, &name, &mime, content);
    file.parents = parents;
    file.drive_id = drive_id;
    file.trashed = metadata.trashed.unwrap_or(false);
    if let Some(properties) = &metadata.app_properties {
        apply_app_properties(&mut file, properties);
    }
    inner.files.insert(id.clone(), file);
    Ok(id)
}

/// Applies metadata changes and optional new content to file `id`.
pub(crate) fn update_file(
    inner: &mut Inner,
    id: &str,
    metadata: &FileMetadata,
    media: Option<(&str, Vec<u8>)>,
    params: &Params,
) -> Result<(), DriveError> {
    let current = writable(inner, id, params)?;
    let mime = current.mime_type.clone();
    let add_parents: Vec<String> = params
        .get("addParents")
        .map(|p| p.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    check_parents(inner, &add_parents, params)?;
    let new_content = match media {
        Some(media) => Some(stored_content(&mime, Some(media))?),
        None => None,
    };
    let Some(file) = inner.files.get_mut(id) else {
        return Err(DriveError::not_found(id));
    };
    if let Some(name) = &metadata.name {
        file.name = name.clone();
    }
    if let Some(trashed) = metadata.trashed {
        file.trashed = trashed;
    }
    if let Some(properties) = &metadata.app_properties {
        apply_app_properties(file, properties);
    }
    if let Some(remove) = params.get("removeParents") {
        let removed: Vec<&str> = remove.split(',').collect();
        file.parents.retain(|p| !removed.contains(&p.as_str()));
    }
    file.parents.extend(add_parents);
    match new_content {
        Some(content) => file.set_content(content),
        None => file.touch(),
    }
    Ok(())
}

async fn update_metadata(
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
    let metadata = FileMetadata::from_body(&body)?;
    let mut inner = state.lock();
    update_file(&mut inner, &id, &metadata, None, &params)?;
    Ok(file_response(&inner.files[&id], &params))
}

async fn delete_file(
    State(state): State<Arc<GoogleState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Result<Response, DriveError> {
    authorize(
        &state,
        &headers,
        Need::Write,
        "google.apps.drive.v3.DriveFiles.Delete",
    )?;
    let mut inner = state.lock();
    writable(&inner, &id, &params)?;
    // Deleting a folder deletes everything below it.
    let mut doomed = vec![id];
    while let Some(next) = doomed.pop() {
        inner.files.remove(&next);
        doomed.extend(
            inner
                .files
                .values()
                .filter(|f| f.parents.contains(&next))
                .map(|f| f.id.clone()),
        );
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

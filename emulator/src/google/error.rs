//! Google's error bodies, shaped as the real services send them: Drive's
//! `{"error":{"code","message","errors":[{domain,reason,message,...}],"status"}}` and the OAuth
//! endpoint's `{"error","error_description"}`. Clients branch on `reason`, so it must match.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// A Drive API error, rendered as Google's JSON error body.
#[derive(Debug)]
pub(crate) struct DriveError {
    status: StatusCode,
    reason: &'static str,
    message: String,
    location: Option<(&'static str, &'static str)>,
    details: Option<Value>,
}

impl DriveError {
    fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        DriveError {
            status,
            reason,
            message: message.into(),
            location: None,
            details: None,
        }
    }

    fn at(mut self, location_type: &'static str, location: &'static str) -> Self {
        self.location = Some((location_type, location));
        self
    }

    /// No `Authorization: Bearer` header at all.
    pub(crate) fn login_required() -> Self {
        DriveError::new(
            StatusCode::UNAUTHORIZED,
            "required",
            "Request is missing required authentication credential. Expected OAuth 2 access \
             token, login cookie or other valid authentication credential.",
        )
        .at("header", "Authorization")
    }

    /// A bearer token that was never issued, has expired or belongs to a revoked account.
    pub(crate) fn invalid_credentials() -> Self {
        DriveError::new(
            StatusCode::UNAUTHORIZED,
            "authError",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, \
             login cookie or other valid authentication credential.",
        )
        .at("header", "Authorization")
    }

    /// The token's scopes do not allow the call (e.g. a write with drive.readonly).
    pub(crate) fn insufficient_scopes(method: &str) -> Self {
        let mut error = DriveError::new(
            StatusCode::FORBIDDEN,
            "insufficientScopes",
            "Request had insufficient authentication scopes.",
        );
        error.details = Some(json!([{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
            "domain": "googleapis.com",
            "metadata": { "service": "drive.googleapis.com", "method": method },
        }]));
        error
    }

    /// A missing file, or one the caller may not see: Drive does not tell them apart.
    pub(crate) fn not_found(id: &str) -> Self {
        DriveError::new(
            StatusCode::NOT_FOUND,
            "notFound",
            format!("File not found: {id}."),
        )
        .at("parameter", "fileId")
    }

    /// A write to a file or folder the caller may only read.
    pub(crate) fn insufficient_file_permissions(id: &str) -> Self {
        DriveError::new(
            StatusCode::FORBIDDEN,
            "insufficientFilePermissions",
            format!("The user does not have sufficient permissions for file {id}."),
        )
    }

    /// `alt=media` on a Google-native file or a folder.
    pub(crate) fn not_downloadable() -> Self {
        DriveError::new(
            StatusCode::FORBIDDEN,
            "fileNotDownloadable",
            "Only files with binary content can be downloaded. Use Export with Docs Editors files.",
        )
        .at("parameter", "alt")
    }

    /// Export of a file that is not a Docs Editors file.
    pub(crate) fn not_exportable() -> Self {
        DriveError::new(
            StatusCode::FORBIDDEN,
            "fileNotExportable",
            "Export only supports Docs Editors files.",
        )
    }

    /// Drive refuses exports bigger than 10 MB.
    pub(crate) fn export_too_large() -> Self {
        DriveError::new(
            StatusCode::FORBIDDEN,
            "exportSizeLimitExceeded",
            "This file is too large to be exported.",
        )
    }

    /// A parameter or body value Drive rejects.
    pub(crate) fn invalid(location: &'static str, message: impl Into<String>) -> Self {
        DriveError::new(StatusCode::BAD_REQUEST, "invalid", message).at("parameter", location)
    }

    /// A required parameter is missing.
    pub(crate) fn required(location: &'static str) -> Self {
        DriveError::new(
            StatusCode::BAD_REQUEST,
            "required",
            "Required parameter: ".to_string() + location,
        )
        .at("parameter", location)
    }

    /// A conversion (export target or upload conversion) Drive does not offer.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        DriveError::new(StatusCode::BAD_REQUEST, "badRequest", message)
    }

    /// A resumable upload session id that does not exist (never created, or already finished).
    pub(crate) fn upload_session_not_found() -> Self {
        DriveError::new(
            StatusCode::NOT_FOUND,
            "notFound",
            "The upload session does not exist or has already completed.",
        )
    }
}

fn status_name(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "INVALID_ARGUMENT",
        StatusCode::UNAUTHORIZED => "UNAUTHENTICATED",
        StatusCode::FORBIDDEN => "PERMISSION_DENIED",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        _ => "UNKNOWN",
    }
}

impl IntoResponse for DriveError {
    fn into_response(self) -> Response {
        let mut item = json!({
            "domain": "global",
            "reason": self.reason,
            "message": self.message,
        });
        if let Some((location_type, location)) = self.location {
            item["locationType"] = json!(location_type);
            item["location"] = json!(location);
        }
        let mut body = json!({
            "code": self.status.as_u16(),
            "message": self.message,
            "errors": [item],
            "status": status_name(self.status),
        });
        if let Some(details) = self.details {
            body["details"] = details;
        }
        let mut response = (self.status, Json(json!({ "error": body }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static(
                    "Bearer realm=\"https://accounts.google.com/\"",
                ),
            );
        }
        response
    }
}

/// An OAuth2 token endpoint error: `{"error": code, "error_description": text}`.
pub(crate) fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": code, "error_description": description })),
    )
        .into_response()
}

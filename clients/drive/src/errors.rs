//! google-drive3 errors turned into the product's one-line errors with exit codes (SPEC §8).
//!
//! The crate reports every non-2xx reply as `BadRequest(json)` or `Failure(response)`; what a user
//! needs instead is "this id is not shared with <service account>: share it with that address",
//! "the key was revoked" or "Drive is unavailable, try again later" (exit 4, worth a retry by the
//! scheduler).

use google_drive3::Error as DriveError;
use shared::Error;

use crate::retry::describe;

/// The facts of a failed Drive call that decide how it is reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveFailure {
    /// The HTTP status, when the server answered.
    pub status: Option<u16>,
    /// Drive's `error.errors[0].reason` (e.g. `notFound`, `exportSizeLimitExceeded`).
    pub reason: Option<String>,
    /// Drive's `error.message`, or the transport error.
    pub message: String,
}

impl DriveFailure {
    pub fn of(err: &DriveError) -> DriveFailure {
        match err {
            DriveError::BadRequest(body) => {
                let status = body
                    .pointer("/error/code")
                    .and_then(|c| c.as_u64())
                    .and_then(|c| u16::try_from(c).ok());
                let message = body
                    .pointer("/error/message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
                    .unwrap_or_else(|| body.to_string());
                DriveFailure {
                    status,
                    reason: crate::retry::error_reason(body).map(str::to_string),
                    message,
                }
            }
            DriveError::Failure(response) => DriveFailure {
                status: Some(response.status().as_u16()),
                reason: None,
                message: response
                    .status()
                    .canonical_reason()
                    .unwrap_or("error")
                    .to_string(),
            },
            other => DriveFailure {
                status: None,
                reason: None,
                message: one_line(&describe(other)),
            },
        }
    }

    /// Drive refused an export because the result exceeds its 10 MB cap.
    pub fn is_export_too_large(&self) -> bool {
        self.reason.as_deref() == Some("exportSizeLimitExceeded")
    }

    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }
}

/// Maps a failed call. `what` describes the call ("list Drive folder"), `target` is the id the
/// call was about, `retries` how many transient failures were retried before giving up.
pub(crate) fn map_error(
    client_email: &str,
    what: &str,
    target: Option<&str>,
    err: &DriveError,
    retries: usize,
) -> Error {
    let failure = DriveFailure::of(err);
    let subject = target.map(|id| format!(" {id}")).unwrap_or_default();
    let detail = match (&failure.status, &failure.reason) {
        (Some(status), Some(reason)) => format!("HTTP {status} {reason}: {}", failure.message),
        (Some(status), None) => format!("HTTP {status}: {}", failure.message),
        _ => failure.message.clone(),
    };
    match failure.status {
        Some(404) => Error::bad_input(format!(
            "{what}: Drive file or folder{subject} not found or not shared with the service account \
             {client_email}: check the id and share it with that address"
        )),
        Some(401) => Error::external(format!(
            "{what}: Google refused the service account {client_email} ({detail}); the key is \
             revoked, deleted or wrong: create a new key and point GDRIVE_CREDENTIALS_PATH at it"
        )),
        Some(403) => Error::external(format!(
            "{what}{subject}: the service account {client_email} lacks permission ({detail}); \
             share the file or folder with that address (Editor for writes) or check the scope"
        )),
        Some(status) if status == 429 || status == 408 || status >= 500 => {
            Error::external(format!(
                "{what}{subject} failed after {retries} retries ({detail}); Google Drive is unavailable, \
             try again later"
            ))
        }
        Some(_) => Error::external(format!(
            "{what}{subject} was refused by Google Drive ({detail})"
        )),
        None => match err {
            DriveError::HttpError(_) | DriveError::Io(_) => Error::external(format!(
                "{what}{subject} failed after {retries} retries ({detail}); Google Drive is \
                 unreachable, check GOOGLE_API_BASE_URL and the network, then try again"
            )),
            DriveError::MissingToken(_) => Error::external(format!(
                "{what}: no access token for the service account {client_email} ({detail}); the \
                 key is revoked or the token endpoint is unreachable: check the key's token_uri \
                 or create a new key"
            )),
            DriveError::JsonDecodeError(..) => Error::external(format!(
                "{what}{subject}: Google Drive sent a reply that cannot be read ({detail}); try again later"
            )),
            _ => Error::internal(format!("{what}{subject}: {detail}")),
        },
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

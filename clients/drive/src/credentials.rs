//! The service account key, checked before it is used: the JSON itself in
//! `GDRIVE_CREDENTIALS_JSON` (platforms such as Paperspace inject secrets as environment
//! variables, and a scratch container cannot turn one into a file), else the file at
//! `GDRIVE_CREDENTIALS_PATH`.
//!
//! yup-oauth2 would accept a half-broken key and fail later with a vague error at the first API
//! call; here each way a key file can be wrong (variable unset, file unreadable, not JSON, not a
//! service account key, private key not PEM) gets its own one-line bad-input error naming the
//! path and what to do.

use std::path::{Path, PathBuf};

use shared::{Error, Result};
use yup_oauth2::ServiceAccountKey;

/// The environment variable naming the key file (SPEC §7.1).
pub const CREDENTIALS_ENV: &str = "GDRIVE_CREDENTIALS_PATH";
/// The environment variable holding the key's JSON itself; wins over [`CREDENTIALS_ENV`].
pub const CREDENTIALS_JSON_ENV: &str = "GDRIVE_CREDENTIALS_JSON";

/// Reads and checks the key from the environment. Returns where it came from (a path, or the
/// variable's name), for messages, and the key.
pub fn load_from_env() -> Result<(String, ServiceAccountKey)> {
    if let Some(json) = std::env::var(CREDENTIALS_JSON_ENV)
        .ok()
        .filter(|value| !value.trim().is_empty())
    {
        let shown = format!("in {CREDENTIALS_JSON_ENV}");
        let key = parse(json.as_bytes(), &shown)?;
        return Ok((shown, key));
    }
    let path = std::env::var_os(CREDENTIALS_ENV)
        .filter(|value| !value.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| {
            Error::bad_input(format!(
                "{CREDENTIALS_ENV} is not set: point it at the service account key JSON file \
                 (Google Cloud console → IAM → Service accounts → Keys → Add key → JSON), or put \
                 the JSON itself in {CREDENTIALS_JSON_ENV}"
            ))
        })?;
    let key = load(&path)?;
    Ok((path.display().to_string(), key))
}

/// Reads and checks a service account key file.
pub fn load(path: &Path) -> Result<ServiceAccountKey> {
    let shown = path.display();
    let text = std::fs::read(path).map_err(|e| {
        Error::bad_input(format!(
            "cannot read the service account key {shown} ({e}); check {CREDENTIALS_ENV} and the \
             file's permissions"
        ))
    })?;
    parse(&text, &shown.to_string())
}

/// Checks a key's JSON; `shown` names where it came from in messages.
fn parse(text: &[u8], shown: &str) -> Result<ServiceAccountKey> {
    let value: serde_json::Value = serde_json::from_slice(text).map_err(|e| {
        Error::bad_input(format!(
            "the service account key {shown} is not valid JSON (line {}, column {}); download \
             the key again as JSON",
            e.line(),
            e.column()
        ))
    })?;
    let kind = value.get("type").and_then(|t| t.as_str()).unwrap_or("");
    if kind != "service_account" {
        return Err(Error::bad_input(format!(
            "{shown} is not a service account key (its \"type\" is {kind:?}, expected \
             \"service_account\"); create a JSON key for a service account and point \
             {CREDENTIALS_ENV} at it"
        )));
    }
    let missing: Vec<&str> = ["client_email", "private_key", "token_uri"]
        .into_iter()
        .filter(|field| {
            value
                .get(*field)
                .and_then(|v| v.as_str())
                .is_none_or(str::is_empty)
        })
        .collect();
    if !missing.is_empty() {
        return Err(Error::bad_input(format!(
            "the service account key {shown} lacks {}; download a complete JSON key again",
            missing.join(", ")
        )));
    }
    let key: ServiceAccountKey = serde_json::from_value(value).map_err(|e| {
        Error::bad_input(format!(
            "the service account key {shown} has an unexpected shape ({e}); download the key again as JSON"
        ))
    })?;
    if !(key.private_key.contains("-----BEGIN") && key.private_key.contains("PRIVATE KEY-----")) {
        return Err(malformed_private_key(shown));
    }
    Ok(key)
}

/// The error for a private key that is not a usable PEM RSA key.
pub fn malformed_private_key(shown: &str) -> Error {
    Error::bad_input(format!(
        "the private_key in the service account key {shown} is not a PEM RSA private key; \
         download a new JSON key for the service account"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn every_broken_key_is_a_one_line_bad_input_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (dir.path().join("absent.json"), "cannot read"),
            (
                write(dir.path(), "broken.json", "{ \"type\": "),
                "not valid JSON",
            ),
            (
                write(dir.path(), "user.json", r#"{"type":"authorized_user"}"#),
                "not a service account key",
            ),
            (
                write(
                    dir.path(),
                    "partial.json",
                    r#"{"type":"service_account","client_email":"a@b"}"#,
                ),
                "lacks private_key, token_uri",
            ),
            (
                write(
                    dir.path(),
                    "notpem.json",
                    r#"{"type":"service_account","client_email":"a@b","private_key":"abc","token_uri":"http://x/token"}"#,
                ),
                "not a PEM RSA private key",
            ),
        ];
        for (path, expected) in cases {
            let err = load(&path).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{err}");
            let msg = err.to_string();
            assert!(
                msg.contains(expected) && msg.contains(&path.display().to_string()),
                "{msg}"
            );
            assert!(!msg.contains('\n'));
        }
    }
}

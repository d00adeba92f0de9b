//! Service accounts and Google's OAuth2 token endpoint (`POST /token`, JWT bearer grant).
//!
//! A service account is an RSA key pair: the emulator keeps the public half and writes the
//! private half into a key file shaped like the ones the Cloud console hands out. The token
//! endpoint accepts a JWT only if its RS256 signature verifies against the registered key, its
//! audience is this token endpoint and its iat/exp describe a short-lived token, as Google does.
//! Issued access tokens remember their scopes, which the Drive routes check.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use base64::Engine as _;
use chrono::Utc;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::sha2::Sha256;
use rsa::signature::Verifier;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Digest as _;

use super::GoogleState;
use super::error::{DriveError, oauth_error};

const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const SCOPE_DRIVE: &str = "https://www.googleapis.com/auth/drive";
const SCOPE_DRIVE_FILE: &str = "https://www.googleapis.com/auth/drive.file";
const READ_SCOPES: [&str; 5] = [
    SCOPE_DRIVE,
    SCOPE_DRIVE_FILE,
    "https://www.googleapis.com/auth/drive.readonly",
    "https://www.googleapis.com/auth/drive.metadata",
    "https://www.googleapis.com/auth/drive.metadata.readonly",
];
/// Lifetime of an access token, as Google reports it.
const TOKEN_LIFETIME_SECONDS: i64 = 3599;
/// Longest JWT lifetime Google accepts, and the clock skew it tolerates on `iat`.
const MAX_ASSERTION_SECONDS: i64 = 3600;
const CLOCK_SKEW_SECONDS: i64 = 60;
const GOOGLE_TOKEN_ENDPOINTS: [&str; 2] = [
    "https://oauth2.googleapis.com/token",
    "https://accounts.google.com/o/oauth2/token",
];
const BAD_TIMEFRAME: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a \
     reasonable timeframe. Check your iat and exp values in the JWT claim.";

/// A registered service account: the public key its JWTs must verify against.
pub(crate) struct ServiceAccount {
    pub email: String,
    pub public_key: RsaPublicKey,
    pub revoked: bool,
}

/// An access token handed out by `/token`.
pub(crate) struct IssuedToken {
    pub email: String,
    pub scopes: Vec<String>,
    pub expires_at: chrono::DateTime<Utc>,
}

/// What a Drive call needs from its bearer token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    Read,
    Write,
}

/// Makes service account number `number`: its registration and its key file's JSON.
pub(crate) fn new_service_account(
    number: u64,
    token_uri: &str,
) -> std::io::Result<(ServiceAccount, Value)> {
    // Each account has its own key pair, so a JWT signed with another account's key fails the
    // signature check, as at Google. (Dependencies are optimised in dev builds, which keeps
    // 2048-bit generation quick in tests.)
    let private_key =
        RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).map_err(std::io::Error::other)?;
    let pem = private_key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(std::io::Error::other)?;
    let email = format!("report-pipeline-{number}@emulator-project.iam.gserviceaccount.com");
    let key_id = hex::encode(&sha2::Sha256::digest(email.as_bytes())[..20]);
    let client_id = format!("1{:020}", number);
    let key_json = json!({
        "type": "service_account",
        "project_id": "emulator-project",
        "private_key_id": key_id,
        "private_key": pem.as_str(),
        "client_email": email,
        "client_id": client_id,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": format!(
            "https://www.googleapis.com/robot/v1/metadata/x509/{}",
            email.replace('@', "%40")
        ),
        "universe_domain": "googleapis.com",
    });
    let account = ServiceAccount {
        email,
        public_key: private_key.to_public_key(),
        revoked: false,
    };
    Ok((account, key_json))
}

/// Writes a secret file readable by its owner only.
pub(crate) fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

pub(crate) fn routes() -> Router<Arc<GoogleState>> {
    Router::new().route("/token", post(token))
}

#[derive(Deserialize)]
struct TokenRequest {
    grant_type: Option<String>,
    assertion: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    exp: i64,
    iat: i64,
    scope: Option<String>,
    sub: Option<String>,
}

async fn token(
    State(state): State<Arc<GoogleState>>,
    headers: HeaderMap,
    Form(request): Form<TokenRequest>,
) -> Response {
    let audiences = accepted_audiences(&state, &headers);
    let outcome = match (request.grant_type.as_deref(), request.assertion.as_deref()) {
        (Some(JWT_BEARER_GRANT), Some(assertion)) => {
            verify_assertion(&state, assertion, &audiences)
        }
        (Some(JWT_BEARER_GRANT), None) => Err((
            "invalid_request",
            "Missing required parameter: assertion".to_string(),
        )),
        (Some(other), _) => Err((
            "unsupported_grant_type",
            format!("Invalid grant_type: {other}"),
        )),
        (None, _) => Err(("unsupported_grant_type", "Invalid grant_type: ".to_string())),
    };
    let mut inner = state.lock();
    match outcome {
        Ok((email, scopes)) => {
            let sequence = inner.next_sequence();
            let token = format!(
                "ya29.emulator-{}",
                hex::encode(sha2::Sha256::digest(format!(
                    "{email}:{sequence}:{}:{}",
                    Utc::now().timestamp_nanos_opt().unwrap_or_default(),
                    fastrand::u64(..)
                )))
            );
            inner.tokens.insert(
                token.clone(),
                IssuedToken {
                    email,
                    scopes,
                    expires_at: Utc::now() + chrono::Duration::seconds(TOKEN_LIFETIME_SECONDS),
                },
            );
            inner.tokens_issued += 1;
            Json(json!({
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_SECONDS,
            }))
            .into_response()
        }
        Err((code, description)) => {
            inner.token_requests_rejected += 1;
            oauth_error(StatusCode::BAD_REQUEST, code, &description)
        }
    }
}

/// The audiences a JWT may name: the token_uri written into key files, the same path on the
/// host the client actually reached (the emulator may be known by several names), and Google's
/// own token endpoints, which Google accepts whatever the key file says (google-auth always
/// names `https://oauth2.googleapis.com/token`).
fn accepted_audiences(state: &GoogleState, headers: &HeaderMap) -> Vec<String> {
    let mut audiences = vec![state.token_uri()];
    audiences.extend(GOOGLE_TOKEN_ENDPOINTS.map(str::to_string));
    if let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        audiences.push(format!("http://{host}/token"));
    }
    audiences
}

type GrantError = (&'static str, String);

fn decode_segment(segment: &str) -> Result<Vec<u8>, GrantError> {
    // Some clients pad base64url (yup-oauth2), others do not (google-auth): accept both.
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment.trim_end_matches('='))
        .map_err(|_| {
            (
                "invalid_grant",
                "Invalid JWT: malformed base64.".to_string(),
            )
        })
}

fn verify_assertion(
    state: &GoogleState,
    assertion: &str,
    audiences: &[String],
) -> Result<(String, Vec<String>), GrantError> {
    let malformed = || ("invalid_grant", "Invalid JWT: malformed token.".to_string());
    let mut parts = assertion.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let jwt_header: Value =
        serde_json::from_slice(&decode_segment(header_b64)?).map_err(|_| malformed())?;
    if jwt_header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(("invalid_grant", "Invalid JWT Signature.".to_string()));
    }
    let claims: Claims =
        serde_json::from_slice(&decode_segment(claims_b64)?).map_err(|_| malformed())?;
    let signature = decode_segment(signature_b64)?;

    let public_key = {
        let inner = state.lock();
        match inner.accounts.get(&claims.iss) {
            Some(account) if !account.revoked => account.public_key.clone(),
            _ => {
                return Err((
                    "invalid_grant",
                    "Invalid grant: account not found".to_string(),
                ));
            }
        }
    };
    let signed_part = &assertion[..header_b64.len() + 1 + claims_b64.len()];
    let signature_ok = Signature::try_from(signature.as_slice())
        .map(|signature| {
            VerifyingKey::<Sha256>::new(public_key)
                .verify(signed_part.as_bytes(), &signature)
                .is_ok()
        })
        .unwrap_or(false);
    if !signature_ok {
        return Err(("invalid_grant", "Invalid JWT Signature.".to_string()));
    }
    if !audiences.contains(&claims.aud) {
        return Err((
            "invalid_grant",
            "Invalid JWT: Failed audience check. The audience must be the token endpoint."
                .to_string(),
        ));
    }
    let now = Utc::now().timestamp();
    if claims.exp <= now
        || claims.iat > now + CLOCK_SKEW_SECONDS
        || claims.exp <= claims.iat
        || claims.exp - claims.iat > MAX_ASSERTION_SECONDS
    {
        return Err(("invalid_grant", BAD_TIMEFRAME.to_string()));
    }
    if claims.sub.is_some() {
        return Err((
            "unauthorized_client",
            "Client is unauthorized to retrieve access tokens using this method, or client not \
             authorized for any of the scopes requested."
                .to_string(),
        ));
    }
    let scopes: Vec<String> = claims
        .scope
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if scopes.is_empty() {
        return Err((
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.".to_string(),
        ));
    }
    Ok((claims.iss, scopes))
}

/// Checks the request's bearer token for a Drive call that needs `need`; `method` names the
/// call in the insufficient-scope error, as Google does.
pub(crate) fn authorize(
    state: &GoogleState,
    headers: &HeaderMap,
    need: Need,
    method: &str,
) -> Result<(), DriveError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(DriveError::login_required());
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(DriveError::invalid_credentials)?;
    let inner = state.lock();
    let issued = inner
        .tokens
        .get(token.trim())
        .filter(|t| t.expires_at > Utc::now())
        .ok_or_else(DriveError::invalid_credentials)?;
    let allowed = match need {
        Need::Read => issued
            .scopes
            .iter()
            .any(|s| READ_SCOPES.contains(&s.as_str())),
        Need::Write => issued
            .scopes
            .iter()
            .any(|s| s == SCOPE_DRIVE || s == SCOPE_DRIVE_FILE),
    };
    if allowed {
        Ok(())
    } else {
        Err(DriveError::insufficient_scopes(method))
    }
}

/// The scopes of every live token, by account: what the dump shows.
pub(crate) fn token_scopes(tokens: &HashMap<String, IssuedToken>) -> Vec<Value> {
    let mut scopes: Vec<Value> = tokens
        .values()
        .map(|t| json!({ "client_email": t.email, "scopes": t.scopes }))
        .collect();
    scopes.sort_by_key(|v| v.to_string());
    scopes
}

//! Google Drive access shared by `setup` (reads the client's documents) and `upload` (writes the
//! final report).
//!
//! google-drive3 generates correct requests but leaves everything around them to the caller: it
//! has no retries, no timeouts, odd default scopes, TLS roots read from the system (absent in a
//! `FROM scratch` image) and errors that say "BadRequest({json})". [`DriveClient`] adds all of it
//! once, so both jobs behave the same:
//! - the service account key at `GDRIVE_CREDENTIALS_PATH` is checked up front, its private key
//!   registered for log redaction, and a first token fetched so a revoked key fails at once;
//! - `GOOGLE_API_BASE_URL` redirects every call (the emulator), the key's `token_uri` is honoured;
//! - every call runs with one scope, a timeout, and retries of transient failures through the
//!   crate's [`Delegate`](google_drive3::common::Delegate) hook ([`RetryDelegate`]);
//! - failures become one-line [`shared::Error`]s naming the id and the service account's address.
//!
//! Helpers cover what the jobs need: list a folder with paging ([`DriveClient::list_children`]),
//! metadata ([`DriveClient::get_metadata`]), streaming downloads and exports straight to disk
//! ([`DriveClient::download_to_file`], [`DriveClient::export_to_file`]). Anything else (creating
//! and updating files) goes through [`DriveClient::hub`] inside [`DriveClient::call`].

mod credentials;
mod errors;
mod files;
mod retry;
mod transport;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use google_drive3::DriveHub;
use google_drive3::api::Scope;
use shared::http::HttpSettings;
use shared::{Error, Result};
use tokio::sync::Semaphore;
use yup_oauth2::authenticator::Authenticator;

pub use credentials::{CREDENTIALS_ENV, CREDENTIALS_JSON_ENV};
pub use errors::DriveFailure;
pub use files::{
    Downloaded, DriveItem, ExportOutcome, FOLDER_MIME, ITEM_FIELDS, LIST_FIELDS, MAX_PAGE_SIZE,
};
pub use retry::RetryDelegate;
pub use transport::Connector;

/// The Drive hub type every caller gets from [`DriveClient::hub`].
pub type Hub = DriveHub<Connector>;

/// The environment variable overriding Google's API root (SPEC §7.1).
pub const BASE_URL_ENV: &str = "GOOGLE_API_BASE_URL";
/// Google's API root.
pub const DEFAULT_BASE_URL: &str = "https://www.googleapis.com";

/// The one OAuth scope a client uses for every call (one scope, one token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriveScope {
    /// `drive.readonly`: `setup` only reads.
    ReadOnly,
    /// `drive`: `upload` creates and updates files.
    Full,
}

impl DriveScope {
    /// The google-drive3 scope to pass to `.add_scope(..)` on calls made through [`DriveClient::hub`].
    pub fn scope(self) -> Scope {
        match self {
            DriveScope::ReadOnly => Scope::Readonly,
            DriveScope::Full => Scope::Full,
        }
    }
}

/// A connected Drive client: hub, credentials, scope and the HTTP settings its calls obey.
pub struct DriveClient {
    hub: Hub,
    client_email: String,
    scope: DriveScope,
    settings: HttpSettings,
    limit: Arc<Semaphore>,
    page_size: u32,
}

impl DriveClient {
    /// Reads the key at `GDRIVE_CREDENTIALS_PATH` and the base URL from `GOOGLE_API_BASE_URL`,
    /// builds the hub, and fetches a first access token (so a revoked key or an unreachable token
    /// endpoint fails here, with a clear message, before any other work).
    pub async fn connect(scope: DriveScope, settings: &HttpSettings) -> Result<DriveClient> {
        let (shown, key) = credentials::load_from_env()?;
        let base_url = base_url_from_env()?;
        DriveClient::connect_with_key(scope, settings, key, &shown, &base_url).await
    }

    /// [`DriveClient::connect`] with the key file and API root given explicitly (`base_url`
    /// without the trailing slash, e.g. `http://127.0.0.1:PORT`).
    pub async fn connect_with(
        scope: DriveScope,
        settings: &HttpSettings,
        key_path: &Path,
        base_url: &str,
    ) -> Result<DriveClient> {
        let key = credentials::load(key_path)?;
        let shown = key_path.display().to_string();
        DriveClient::connect_with_key(scope, settings, key, &shown, base_url).await
    }

    /// Connects with an already checked key; `shown` says where it came from, for messages.
    async fn connect_with_key(
        scope: DriveScope,
        settings: &HttpSettings,
        key: yup_oauth2::ServiceAccountKey,
        shown: &str,
        base_url: &str,
    ) -> Result<DriveClient> {
        shared::logging::context().add_secret(&key.private_key);
        let base_url = base_url.trim_end_matches('/');
        shared::http::install_crypto_provider();
        let connector = transport::connector(settings)?;
        let client_email = key.client_email.clone();
        let token_uri = key.token_uri.clone();
        let auth = yup_oauth2::ServiceAccountAuthenticator::with_client(
            key,
            yup_oauth2::CustomHyperClientBuilder::from(transport::auth_client(connector.clone())),
        )
        .build()
        .await
        .map_err(|_| credentials::malformed_private_key(shown))?;
        let mut hub = DriveHub::new(transport::hub_client(connector), auth.clone());
        hub.base_url(format!("{base_url}/drive/v3/"));
        hub.root_url(format!("{base_url}/"));
        let client = DriveClient {
            hub,
            client_email,
            scope,
            settings: settings.clone(),
            limit: Arc::new(Semaphore::new(settings.max_concurrency.max(1))),
            page_size: MAX_PAGE_SIZE,
        };
        client.first_token(&auth, &token_uri).await?;
        Ok(client)
    }

    /// Lists folders in pages of `page_size` items (1..=1000; default 1000, Drive's maximum).
    pub fn with_page_size(mut self, page_size: u32) -> DriveClient {
        self.page_size = page_size.clamp(1, MAX_PAGE_SIZE);
        self
    }

    /// The generated hub, for calls the helpers do not cover. Run them through [`DriveClient::call`]
    /// and give each `.add_scope(client.scope().scope())`.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The service account's address: what a folder must be shared with.
    pub fn client_email(&self) -> &str {
        &self.client_email
    }

    pub fn scope(&self) -> DriveScope {
        self.scope
    }

    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    /// Runs one Drive call with bounded concurrency, a timeout per attempt, and retries of
    /// transient failures: `op` gets a [`RetryDelegate`] to pass to the call builder's
    /// `.delegate(..)` (which retries HTTP-level failures inside google-drive3); attempts that
    /// time out are retried here with the same backoff. `what` and `target` (the id concerned)
    /// name the call in errors.
    ///
    /// ```ignore
    /// let list = client.call("list Drive folder", Some(&id), async |dlg| {
    ///     client.hub().files().list().q(&q).add_scope(client.scope().scope()).delegate(dlg).doit().await
    /// }).await?;
    /// ```
    pub async fn call<T>(
        &self,
        what: &str,
        target: Option<&str>,
        op: impl AsyncFnMut(&mut RetryDelegate) -> google_drive3::Result<T>,
    ) -> Result<T> {
        let _permit = self.permit().await?;
        let mut delegate = RetryDelegate::new(what, &self.settings.retry);
        self.attempts(&mut delegate, op)
            .await
            .map_err(|failed| self.failed(what, target, failed, delegate.retries()))
    }

    /// Maps a google-drive3 error to the product's one-line error (404 names the service
    /// account to share with; 401/403 say what to fix; exhausted transient failures are
    /// External, exit 4).
    pub fn error(
        &self,
        what: &str,
        target: Option<&str>,
        err: google_drive3::Error,
        retries: usize,
    ) -> Error {
        errors::map_error(&self.client_email, what, target, &err, retries).with_source(err)
    }

    /// A slot among the `max_concurrency` calls allowed in flight.
    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>> {
        self.limit
            .acquire()
            .await
            .map_err(|_| Error::internal("Drive limiter closed"))
    }

    /// Runs `op` until it succeeds, fails for good, or its attempts time out too often.
    async fn attempts<T>(
        &self,
        delegate: &mut RetryDelegate,
        mut op: impl AsyncFnMut(&mut RetryDelegate) -> google_drive3::Result<T>,
    ) -> std::result::Result<T, files::Failed> {
        loop {
            match tokio::time::timeout(self.settings.request_timeout, op(delegate)).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(err)) => return Err(files::Failed::Drive(err)),
                Err(_) => {
                    let detail = format!("no reply within {:?}", self.settings.request_timeout);
                    match delegate.next_wait(detail.clone(), None) {
                        Some(wait) => tokio::time::sleep(wait).await,
                        None => return Err(files::Failed::Transient(detail)),
                    }
                }
            }
        }
    }

    fn failed(
        &self,
        what: &str,
        target: Option<&str>,
        failed: files::Failed,
        retries: usize,
    ) -> Error {
        match failed {
            files::Failed::Drive(err) => self.error(what, target, err, retries),
            files::Failed::Transient(detail) => {
                let subject = target.map(|id| format!(" {id}")).unwrap_or_default();
                Error::external(format!(
                    "{what}{subject} failed after {retries} retries ({detail}); Google Drive is \
                     unavailable, try again later"
                ))
            }
        }
    }

    async fn first_token(&self, auth: &Authenticator<Connector>, token_uri: &str) -> Result<()> {
        let scopes = [self.scope.scope()];
        let mut delegate = RetryDelegate::new("get an access token", &self.settings.retry);
        loop {
            let attempt =
                tokio::time::timeout(self.settings.request_timeout, auth.token(&scopes)).await;
            let detail = match attempt {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(yup_oauth2::Error::AuthError(refusal))) => {
                    return Err(Error::external(format!(
                        "the token endpoint {token_uri} refused the service account {} ({refusal}); \
                         the key is revoked, deleted or wrong: create a new key and point \
                         GDRIVE_CREDENTIALS_PATH at it",
                        self.client_email
                    )));
                }
                Ok(Err(err)) => retry::describe(&err),
                Err(_) => format!("no reply within {:?}", self.settings.request_timeout),
            };
            match delegate.next_wait(detail.clone(), None) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => {
                    return Err(Error::external(format!(
                        "cannot get an access token from {token_uri} after {} retries ({detail}); \
                         check the network and the key's token_uri, then try again",
                        delegate.retries()
                    )));
                }
            }
        }
    }
}

/// `GOOGLE_API_BASE_URL` without a trailing slash, or Google's.
fn base_url_from_env() -> Result<String> {
    let value = std::env::var(BASE_URL_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty());
    let Some(value) = value else {
        return Ok(DEFAULT_BASE_URL.to_string());
    };
    let trimmed = value.trim().trim_end_matches('/').to_string();
    match url_scheme(&trimmed) {
        Some("http" | "https") => Ok(trimmed),
        _ => Err(Error::bad_input(format!(
            "invalid {BASE_URL_ENV} {value:?}: expected an http(s) URL such as {DEFAULT_BASE_URL}; \
             unset it to use Google's"
        ))),
    }
}

fn url_scheme(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    (!rest.is_empty()).then_some(scheme)
}

/// Checks the Drive configuration without touching the network (for `--dry-run`): the key (in
/// `GDRIVE_CREDENTIALS_JSON` or at `GDRIVE_CREDENTIALS_PATH`) and `GOOGLE_API_BASE_URL`. Returns
/// where the key came from, the service account's address and the API root.
pub fn check_configuration() -> Result<(String, String, String)> {
    let (shown, key) = credentials::load_from_env()?;
    Ok((shown, key.client_email, base_url_from_env()?))
}

/// The per-chunk idle timeout of streaming downloads: a stalled body fails instead of hanging.
fn idle_timeout(settings: &HttpSettings) -> Duration {
    settings.request_timeout
}

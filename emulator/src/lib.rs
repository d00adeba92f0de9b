//! An offline emulator of the OpenAI, Google (OAuth2 + Drive v3) and Paperspace HTTP APIs.
//!
//! Tests, the demo and the compose replay point the real client crates at it (only base URLs
//! differ). [`Emulator::start`] runs it in-process; the `emulator` binary runs the same server
//! as a standalone process. State lives in memory; faults can be injected per service.

pub mod admin;
pub mod extract;
pub mod faults;
pub mod generate;
pub mod google;
pub mod openai;
pub mod paperspace;
pub mod requests;
pub mod server;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use faults::{FaultSpec, Faults, Service};
use openai::{FileErrorCode, OpenAiState};
use requests::RequestLog;

/// How to start an emulator. Builder-style; the defaults suit tests.
#[derive(Clone, Debug)]
pub struct Config {
    host: IpAddr,
    port: u16,
    public_url: Option<String>,
    openai_api_key: String,
    paperspace_api_key: String,
    file_processing_delay: Duration,
    phase_delay: Duration,
    faults: BTreeMap<Service, FaultSpec>,
    failing_files: BTreeMap<String, FileErrorCode>,
    fabricate_citations: bool,
    seed_drive: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            public_url: None,
            openai_api_key: "test-openai-key".to_string(),
            paperspace_api_key: "test-paperspace-key".to_string(),
            file_processing_delay: Duration::from_millis(50),
            phase_delay: Duration::from_millis(50),
            faults: BTreeMap::new(),
            failing_files: BTreeMap::new(),
            fabricate_citations: false,
            seed_drive: None,
        }
    }
}

impl Config {
    /// The defaults: 127.0.0.1, a free port, test keys, 50 ms delays, no faults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Interface to bind (default 127.0.0.1; 0.0.0.0 inside a container).
    pub fn host(mut self, host: IpAddr) -> Self {
        self.host = host;
        self
    }
    /// Port to bind; 0 picks a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }
    /// The URL other processes use to reach the emulator (e.g. `http://emulator:8080` in
    /// compose); it ends up in service account keys as `token_uri`. Default: the bound address.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into().trim_end_matches('/').to_string());
        self
    }
    /// The only OpenAI API key accepted.
    pub fn openai_api_key(mut self, key: impl Into<String>) -> Self {
        self.openai_api_key = key.into();
        self
    }
    /// The only Paperspace API key accepted.
    pub fn paperspace_api_key(mut self, key: impl Into<String>) -> Self {
        self.paperspace_api_key = key.into();
        self
    }
    /// How long a vector-store file stays `in_progress` before it completes or fails.
    pub fn file_processing_delay(mut self, delay: Duration) -> Self {
        self.file_processing_delay = delay;
        self
    }
    /// How long a Paperspace workflow run stays in each phase.
    pub fn phase_delay(mut self, delay: Duration) -> Self {
        self.phase_delay = delay;
        self
    }
    /// Injects faults into one service from the start.
    pub fn fault(mut self, service: Service, spec: FaultSpec) -> Self {
        self.faults.insert(service, spec);
        self
    }
    /// Makes vector-store files with this filename fail processing with `code`.
    pub fn failing_file(mut self, filename: impl Into<String>, code: FileErrorCode) -> Self {
        self.failing_files.insert(filename.into(), code);
        self
    }
    /// Makes model outputs cite a filename that exists in no vector store.
    pub fn fabricate_citations(mut self, on: bool) -> Self {
        self.fabricate_citations = on;
        self
    }
    /// Seeds the Drive emulation from a local directory (see SEEDING.md).
    pub fn seed_drive(mut self, dir: impl Into<PathBuf>) -> Self {
        self.seed_drive = Some(dir.into());
        self
    }
}

/// A running emulator. Dropping it stops the server.
pub struct Emulator {
    url: String,
    openai_base: String,
    paperspace_base: String,
    seeded_folder_id: Option<String>,
    google: Arc<google::GoogleState>,
    paperspace: Arc<paperspace::PaperspaceState>,
    openai: Arc<OpenAiState>,
    requests: Arc<RequestLog>,
    faults: Arc<Faults>,
    server: tokio::task::JoinHandle<()>,
}

impl Emulator {
    /// Binds the port, builds the state and serves in the background on the current runtime.
    pub async fn start(config: Config) -> std::io::Result<Emulator> {
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::new(config.host, config.port)).await?;
        let bound = listener.local_addr()?;
        // A wildcard bind is reachable on loopback; a client cannot connect to 0.0.0.0 itself.
        let reachable_ip = if bound.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            bound.ip()
        };
        let url = format!("http://{}", SocketAddr::new(reachable_ip, bound.port()));
        let public_url = config.public_url.clone().unwrap_or_else(|| url.clone());

        let google = google::GoogleState::new(&public_url);
        let seeded_folder_id = match &config.seed_drive {
            Some(dir) => Some(google.seed_from_dir(dir)?),
            None => None,
        };
        let paperspace =
            paperspace::PaperspaceState::new(&config.paperspace_api_key, config.phase_delay);
        let openai = OpenAiState::new(openai::Settings {
            api_key: config.openai_api_key.clone(),
            file_processing_delay: config.file_processing_delay,
            failing_files: config.failing_files.clone(),
            fabricate_citations: config.fabricate_citations,
        });
        let requests = Arc::new(RequestLog::new());
        let faults = Arc::new(Faults::new());
        for (service, spec) in &config.faults {
            faults.set(*service, spec.clone());
        }

        let shared = server::Shared {
            google: google.clone(),
            paperspace: paperspace.clone(),
            openai: openai.clone(),
            requests: requests.clone(),
            faults: faults.clone(),
        };
        let server = tokio::spawn(server::serve(listener, server::app(shared)));
        Ok(Emulator {
            openai_base: format!("{url}/v1"),
            paperspace_base: format!("{url}/paperspace/v1"),
            url,
            seeded_folder_id,
            google,
            paperspace,
            openai,
            requests,
            faults,
            server,
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        self.url.clone()
    }
    /// The OpenAI client base URL (`url` + `/v1`).
    pub fn openai_base(&self) -> String {
        self.openai_base.clone()
    }
    /// The Paperspace client base URL (`url` + `/paperspace/v1`).
    pub fn paperspace_base(&self) -> String {
        self.paperspace_base.clone()
    }
    /// The Drive id of the folder seeded with [`Config::seed_drive`], if any.
    pub fn seeded_folder_id(&self) -> Option<String> {
        self.seeded_folder_id.clone()
    }
    pub fn google(&self) -> &Arc<google::GoogleState> {
        &self.google
    }
    pub fn paperspace(&self) -> &Arc<paperspace::PaperspaceState> {
        &self.paperspace
    }
    pub fn openai(&self) -> &Arc<OpenAiState> {
        &self.openai
    }
    pub fn requests(&self) -> &RequestLog {
        &self.requests
    }
    pub fn faults(&self) -> &Faults {
        &self.faults
    }
    /// What `GET /_admin/state` returns.
    pub fn state_dump(&self) -> serde_json::Value {
        admin::state_dump(&self.openai, &self.google, &self.paperspace, &self.requests)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // Aborting the accept loop also aborts every connection task it owns.
        self.server.abort();
    }
}

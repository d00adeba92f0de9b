//! The contract the four jobs share.
//!
//! `setup` → `vectorize` → `pipeline` → `upload` run as separate containers that never talk to
//! each other: they agree only on what this crate defines. Change it with care; every job, the
//! trigger and the webhook depend on it, and directories written by older versions must still be
//! read.
//!
//! # Map
//! - [`inputs`]: the run inputs of SPEC §3 — one typed struct from flags/env ([`inputs::InputArgs`]),
//!   an inputs file (YAML or JSON) and the legacy `--company-info` text, validated before any
//!   network call with errors that name the key, the value and the rule.
//! - [`slug`]: the ONE slug function; it names directories, so it never changes.
//! - [`drive_link`]: Drive folder/file links of every form, reduced to an id.
//! - [`layout`]: where every artifact lives in the `/outputs` tree ([`layout::CompanyDir`]), and the
//!   stages with the job that produces each.
//! - [`roots`]: the writable outputs root and the read-only input roots searched for upstream
//!   stages (one shared tree locally; one volume per job on Paperspace).
//! - [`atomic`]: crash-safe writes (temp file in the same directory, fsync, rename, fsync dir).
//! - [`markers`]: `.ready` markers — written last, listing every file with size and SHA-256, the
//!   fingerprint of the stage's inputs; read-and-verify for consumers, "already done" for producers.
//! - [`records`]: the typed details each stage hands the next (vector store ids, origins, receipts).
//! - [`lock`]: one writer per company and stage on a shared tree.
//! - [`logging`]: the JSON-lines log schema of SPEC §6, pretty mode, secret redaction.
//! - [`error`]: the one error type and its exit codes (SPEC §8).
//! - [`http`]: the HTTP client every job uses — compiled-in TLS roots, timeouts, bounded
//!   concurrency, retries that honour `Retry-After` and fail fast on permanent errors.
//! - [`job`]: the frame around a job's `main`.
//!
//! # Invariants
//! - A consumer reads only files listed by a verified marker; a marker is present only when every
//!   file it lists is complete (the kill test in `tests/kill.rs` hammers this).
//! - A job writes only below its outputs root, never into an input root.
//! - Every failure is one line with a documented exit code; no log line carries a secret.

pub mod atomic;
pub mod drive_link;
pub mod error;
pub mod http;
pub mod inputs;
pub mod job;
pub mod layout;
pub mod lock;
pub mod logging;
pub mod markers;
pub mod records;
pub mod roots;
pub mod slug;

pub use error::{Error, ErrorKind, Result};

//! The `setup` job: a run's inputs and documents, made ready for indexing (SPEC §5.1).
//!
//! It resolves and validates the run inputs (before any network call), writes
//! `debug/submission_<ts>_<run_id>.json`, gets the documents from a Google Drive folder or file,
//! a local directory (`--source-dir`) or nothing (a profile-only run), preprocesses them for
//! OpenAI file_search (tables to Markdown, Google-native files exported, unsupported types
//! skipped and listed), and writes them under `data/` with the marker `data/.ready`.
//!
//! Invariants:
//! - `data/.ready` is withdrawn before anything in `data/` changes and written last, listing
//!   every document (with its origin) and the submission file; every file reaches its name
//!   complete (temp file, rename), so a reader never sees a half-written data set, whenever the
//!   job is killed.
//! - Names in `data/` are safe, unique and stable ([`names`]); the original names are kept in
//!   the marker.
//! - A re-run with unchanged inputs and Drive content (ids, modifiedTime, md5Checksum) only lists
//!   the folder and exits 0; a changed file is fetched again, unchanged ones are reused.

pub mod fetch;
pub mod names;
pub mod plan;
pub mod preprocess;
pub mod source;
pub mod submission;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use clap::Parser;
use drive_client::{DriveClient, DriveScope};
use futures::StreamExt;
use serde_json::json;
use shared::inputs::{InputArgs, RunInputs, generate_run_id};
use shared::layout::{CompanyDir, Stage, timestamp};
use shared::logging::{metric, step, success};
use shared::markers::{FileRecord, Marker, already_done, fingerprint, read_marker};
use shared::records::{DataDetails, SkippedDocument};
use shared::roots::{RootArgs, Roots};
use shared::{Error, Result};

use crate::fetch::{Context, Outcome};
use crate::source::Listing;
use crate::submission::{SourceInfo, Submission};

/// Key of the marker's `details` (beside the fields of [`DataDetails`]) recording Drive documents
/// skipped after fetching, with their modifiedTime: Drive id → time.
const FETCH_SKIPS: &str = "fetch_skips";

/// Where a run that is interrupted keeps the previous marker's records, so the next run can
/// still reuse the files they vouch for (checked by SHA-256 before reuse). Never listed.
const PREVIOUS_RECORDS: &str = "data/.previous.ready";

const STEPS: u32 = 4;

/// Command line of `setup`.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "setup",
    version,
    about = "Resolve a run's inputs and make its documents ready for indexing"
)]
pub struct Cli {
    #[command(flatten)]
    pub inputs: InputArgs,
    #[command(flatten)]
    pub roots: RootArgs,
    /// Take the documents from this local directory instead of Google Drive.
    #[arg(long, env = "SOURCE_DIR", value_name = "DIR")]
    pub source_dir: Option<PathBuf>,
    /// Fetch and preprocess everything again, even when nothing changed.
    #[arg(long)]
    pub force: bool,
    /// Validate inputs, roots and configuration, print the plan, fetch and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Downloads in flight at once.
    #[arg(long, env = "MAX_CONCURRENT_DOWNLOADS", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub max_concurrent_downloads: u16,
    /// Items per Drive listing page (Drive allows 1 to 1000).
    #[arg(long, env = "DRIVE_PAGE_SIZE", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub drive_page_size: u32,
}

/// The document source chosen from the inputs.
enum SourceSpec {
    Drive { id: String, link: String },
    Local(PathBuf),
    None,
}

impl SourceSpec {
    fn choose(inputs: &RunInputs, source_dir: Option<&Path>) -> Result<SourceSpec> {
        if let Some(id) = &inputs.google_drive_id {
            if source_dir.is_some() {
                tracing::warn!(
                    "both google_drive_link and --source-dir are set: using Google Drive"
                );
            }
            return Ok(SourceSpec::Drive {
                id: id.clone(),
                link: inputs.google_drive_link.clone(),
            });
        }
        match source_dir {
            Some(dir) => std::path::absolute(dir)
                .map(SourceSpec::Local)
                .map_err(|e| {
                    Error::bad_input(format!("invalid --source-dir {}: {e}", dir.display()))
                }),
            None => Ok(SourceSpec::None),
        }
    }
}

/// Runs the job.
pub async fn run(cli: Cli) -> Result<()> {
    let started = chrono::Utc::now();
    let resolution = cli.inputs.resolve()?;
    let inputs = &resolution.resolved;
    let log = shared::logging::context();
    log.set_company(&inputs.company_name);
    let run_id = inputs.run_id.clone().unwrap_or_else(generate_run_id);
    log.set_run_id(&run_id);
    let spec = SourceSpec::choose(inputs, cli.source_dir.as_deref())?;
    if cli.dry_run {
        return dry_run(&cli, inputs, &run_id, &spec);
    }

    let roots = Roots::open(&cli.roots)?;
    let dir = roots.output_dir(&inputs.company_slug);
    let _lock = shared::lock::StageLock::acquire(&dir, Stage::Data, &run_id)?;

    step(1, STEPS, "listing the documents");
    let (client, listing, source) = list_source(&cli, &spec).await?;
    let plan = plan::plan(&listing, source.kind());
    let fingerprint = fingerprint(&json!({
        "job_version": env!("CARGO_PKG_VERSION"),
        "inputs": RunInputs { run_id: None, ..inputs.clone() },
        "source": source,
        "documents": match source {
            SourceInfo::Drive { .. } => source::drive::fingerprint_entries(&listing),
            _ => source::local::fingerprint_entries(&listing),
        },
    }));
    let marker_path = dir.marker(Stage::Data, "");
    if !cli.force
        && let Some(marker) = already_done(&dir, Stage::Data, &marker_path, &fingerprint)
        && inputs.run_id.as_ref().is_none_or(|id| *id == marker.run_id)
    {
        log.set_run_id(&marker.run_id);
        tracing::info!(
            "already done: {} lists the same inputs and documents ({} files); nothing fetched (use --force to redo)",
            marker_path.display(),
            marker.files.len()
        );
        success("documents already ready");
        return Ok(());
    }

    let (previous, previous_skips) = if cli.force {
        Default::default()
    } else {
        previous_records(&dir, &marker_path)
    };
    withdraw_marker(&dir, &marker_path)?;
    sweep_temp_files(&dir.data_dir())?;

    step(
        2,
        STEPS,
        &format!("fetching {} documents", plan.documents.len()),
    );
    for (original, safe) in &plan.renamed {
        tracing::warn!("renamed {original:?} -> {safe:?}");
    }
    for skip in &plan.skipped {
        tracing::warn!("skipped {}: {}", skip.original_path, skip.reason);
    }
    let ctx = Context {
        dir: &dir,
        client: client.as_ref(),
        previous: &previous,
        previous_skips: &previous_skips,
    };
    let fetched = fetch_all(&ctx, &plan, usize::from(cli.max_concurrent_downloads)).await?;
    if fetched.files.is_empty() {
        tracing::warn!(
            "no documents to index: the report will be written from the company profile alone"
        );
    }

    step(3, STEPS, "writing the submission file");
    let submission = Submission {
        run_id: &run_id,
        created_at: started,
        job: "setup",
        job_version: env!("CARGO_PKG_VERSION"),
        resolution: &resolution,
        source: &source,
    };
    let submission_relative = write_submission(&dir, &submission)?;
    remove_stale_files(&dir, &fetched.files)?;

    step(4, STEPS, "writing data/.ready");
    let marker = data_marker(
        &dir,
        fetched,
        DataMarkerFacts {
            run_id: &run_id,
            started,
            fingerprint,
            submission: submission_relative,
            source: source.kind(),
        },
    )?;
    let documents = marker.files.len() - 1;
    marker.write(&marker_path)?;
    shared::atomic::remove_durably(&dir.join(PREVIOUS_RECORDS))?;
    success(&format!(
        "{documents} documents ready in {}",
        dir.data_dir().display()
    ));
    Ok(())
}

/// Writes `debug/submission_<ts>_<run_id>.json`; returns its company-relative path.
fn write_submission(dir: &CompanyDir, submission: &Submission<'_>) -> Result<String> {
    let path = dir.submission(&timestamp(submission.created_at), submission.run_id);
    let mut text = serde_json::to_vec_pretty(submission)
        .map_err(|e| Error::internal(format!("cannot encode the submission: {e}")))?;
    text.push(b'\n');
    shared::atomic::write_atomic(&path, &text)?;
    dir.relative(&path)
        .ok_or_else(|| Error::internal("the submission file lies outside the company directory"))
}

/// What the fetches produced, and the counts for the metrics.
struct Fetched {
    files: Vec<FileRecord>,
    skipped: Vec<SkippedDocument>,
    /// Drive id → modifiedTime of documents skipped after fetching (see [`FETCH_SKIPS`]).
    fetch_skips: serde_json::Map<String, serde_json::Value>,
    downloaded_files: u64,
    downloaded_bytes: u64,
    reused: u64,
}

/// Fetches every planned document, `concurrency` at a time; the first failure stops the run
/// (documents in flight are abandoned; their temp files are removed).
async fn fetch_all(ctx: &Context<'_>, plan: &plan::Plan, concurrency: usize) -> Result<Fetched> {
    let mut outcomes = futures::stream::iter(plan.documents.iter().map(|p| fetch::fetch(ctx, p)))
        .buffer_unordered(concurrency);
    let mut fetched = Fetched {
        files: Vec::new(),
        skipped: plan.skipped.clone(),
        fetch_skips: serde_json::Map::new(),
        downloaded_files: 0,
        downloaded_bytes: 0,
        reused: 0,
    };
    while let Some(outcome) = outcomes.next().await {
        match outcome? {
            Outcome::Written {
                record,
                downloaded,
                reused,
            } => {
                if reused {
                    fetched.reused += 1;
                } else if ctx.client.is_some() {
                    fetched.downloaded_files += 1;
                    fetched.downloaded_bytes += downloaded;
                }
                fetched.files.push(record);
            }
            Outcome::Skipped {
                skip,
                modified_time,
            } => {
                tracing::warn!("skipped {}: {}", skip.original_path, skip.reason);
                if let (Some(id), Some(time)) = (&skip.drive_id, modified_time) {
                    fetched.fetch_skips.insert(id.clone(), json!(time));
                }
                fetched.skipped.push(skip);
            }
        }
    }
    fetched.files.sort_by(|a, b| a.path.cmp(&b.path));
    fetched
        .skipped
        .sort_by(|a, b| a.original_path.cmp(&b.original_path));
    Ok(fetched)
}

/// The run facts a data marker records besides the fetched documents.
struct DataMarkerFacts<'a> {
    run_id: &'a str,
    started: chrono::DateTime<chrono::Utc>,
    fingerprint: String,
    submission: String,
    source: &'a str,
}

/// The marker listing every document and the submission file, with the metrics (also logged).
fn data_marker(dir: &CompanyDir, fetched: Fetched, facts: DataMarkerFacts<'_>) -> Result<Marker> {
    let mut files = fetched.files;
    let documents = files.len();
    files.push(FileRecord::of(dir, &facts.submission)?);
    let mut metrics = serde_json::Map::new();
    for (name, value, unit) in [
        ("documents", documents as f64, "files"),
        ("files_downloaded", fetched.downloaded_files as f64, "files"),
        ("bytes_downloaded", fetched.downloaded_bytes as f64, "bytes"),
        ("files_reused", fetched.reused as f64, "files"),
        ("files_skipped", fetched.skipped.len() as f64, "files"),
    ] {
        metric(name, value, unit);
        metrics.insert(name.to_string(), json!(value));
    }
    let details = DataDetails {
        submission: facts.submission,
        source: facts.source.to_string(),
        skipped: fetched.skipped,
    };
    let mut details = serde_json::to_value(&details)
        .map_err(|e| Error::internal(format!("cannot encode details: {e}")))?;
    details[FETCH_SKIPS] = serde_json::Value::Object(fetched.fetch_skips);
    Ok(Marker {
        stage: Stage::Data.as_str().to_string(),
        run_id: facts.run_id.to_string(),
        slug: dir.slug().to_string(),
        job: "setup".to_string(),
        job_version: env!("CARGO_PKG_VERSION").to_string(),
        started: facts.started,
        finished: chrono::Utc::now(),
        fingerprint: facts.fingerprint,
        files,
        metrics,
        details,
    })
}

/// Connects to the source and lists it.
async fn list_source(
    cli: &Cli,
    spec: &SourceSpec,
) -> Result<(Option<DriveClient>, Listing, SourceInfo)> {
    match spec {
        SourceSpec::Drive { id, link } => {
            let settings = shared::http::HttpSettings {
                max_concurrency: usize::from(cli.max_concurrent_downloads),
                ..Default::default()
            };
            let client = DriveClient::connect(DriveScope::ReadOnly, &settings)
                .await?
                .with_page_size(cli.drive_page_size);
            let found = source::drive::list(&client, id).await?;
            if found.root.is_folder() && found.listing.documents.is_empty() {
                return Err(Error::bad_input(format!(
                    "the Drive folder {id} ({:?}) contains no files the service account {} can see: add \
                     the documents (or share them with that address), or leave google_drive_link empty \
                     for a report from the profile alone",
                    found.root.name,
                    client.client_email()
                )));
            }
            let info = SourceInfo::Drive {
                link: link.clone(),
                id: id.clone(),
                name: Some(found.root.name.clone()),
                mime_type: Some(found.root.mime_type.clone()),
            };
            Ok((Some(client), found.listing, info))
        }
        SourceSpec::Local(dir) => {
            let listing = source::local::list(dir)?;
            Ok((None, listing, SourceInfo::Local { dir: dir.clone() }))
        }
        SourceSpec::None => {
            tracing::warn!(
                "no document source (google_drive_link is empty and no --source-dir): the report will be \
                 written from the company profile alone"
            );
            Ok((None, Listing::default(), SourceInfo::None))
        }
    }
}

/// Prints what a real run would do; touches no network and writes nothing.
fn dry_run(cli: &Cli, inputs: &RunInputs, run_id: &str, spec: &SourceSpec) -> Result<()> {
    let roots = Roots::plan(&cli.roots)?;
    let dir = roots.output_dir(&inputs.company_slug);
    let source = match spec {
        SourceSpec::Drive { id, .. } => {
            let (key, email, api) = drive_client::check_configuration()?;
            format!("Google Drive item {id} (service account {email}, key {key}, API {api})")
        }
        SourceSpec::Local(path) => {
            let listing = source::local::list(path)?;
            format!(
                "local directory {} ({} files)",
                path.display(),
                listing.documents.len()
            )
        }
        SourceSpec::None => {
            "none: the report will be written from the company profile alone".to_string()
        }
    };
    println!("setup --dry-run: nothing is fetched or written");
    println!(
        "company:     {} (slug {})",
        inputs.company_name, inputs.company_slug
    );
    println!(
        "run_id:      {run_id}{}",
        if inputs.run_id.is_none() {
            " (generated)"
        } else {
            ""
        }
    );
    println!(
        "use cases:   {}; model set {}",
        inputs.use_cases_count,
        inputs.model_set.as_str()
    );
    println!("source:      {source}");
    println!(
        "writes:      {} and {}",
        dir.data_dir().display(),
        dir.submission("<ts>", run_id).display()
    );
    println!(
        "downloads:   up to {} at once; {}",
        cli.max_concurrent_downloads,
        if cli.force {
            "everything fetched again (--force)"
        } else {
            "unchanged files reused"
        }
    );
    Ok(())
}

/// The file records and fetch-time skips of the previous data set: from its marker, or from
/// the copy kept by a run that was interrupted.
fn previous_records(
    dir: &CompanyDir,
    marker_path: &Path,
) -> (
    HashMap<String, FileRecord>,
    HashMap<String, (String, String)>,
) {
    let Some(marker) = [marker_path.to_path_buf(), dir.join(PREVIOUS_RECORDS)]
        .iter()
        .filter(|path| path.exists())
        .find_map(|path| read_marker(path).ok().filter(|m| m.slug == dir.slug()))
    else {
        return Default::default();
    };
    // Joined with the skipped list for the reason, which the next run repeats.
    let reasons: HashMap<&str, &str> = marker.details["skipped"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s["drive_id"].as_str()?, s["reason"].as_str()?)))
        .collect();
    let skips = marker.details[FETCH_SKIPS]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(id, time)| {
            let reason = reasons.get(id.as_str())?;
            Some((id.clone(), (time.as_str()?.to_string(), reason.to_string())))
        })
        .collect();
    let files = marker
        .files
        .into_iter()
        .map(|f| (f.path.clone(), f))
        .collect();
    (files, skips)
}

/// Withdraws `data/.ready` before `data/` changes, keeping its records for reuse: one rename.
fn withdraw_marker(dir: &CompanyDir, marker_path: &Path) -> Result<()> {
    if !marker_path.exists() {
        return Ok(());
    }
    let keep = dir.join(PREVIOUS_RECORDS);
    std::fs::rename(marker_path, &keep)
        .map_err(|e| Error::io("withdraw the marker", marker_path, e))?;
    shared::atomic::sync_dir(&dir.data_dir())
}

/// Removes temp files a killed run left anywhere under `data/`.
fn sweep_temp_files(data: &Path) -> Result<()> {
    shared::atomic::sweep_temp_files(data)?;
    let Ok(entries) = std::fs::read_dir(data) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            sweep_temp_files(&entry.path())?;
        }
    }
    Ok(())
}

/// Deletes files under `data/` that this data set does not list (documents removed from the
/// source, or renamed), and directories left empty.
fn remove_stale_files(dir: &CompanyDir, keep: &[FileRecord]) -> Result<()> {
    let keep: HashSet<&str> = keep.iter().map(|f| f.path.as_str()).collect();
    let protected = [PREVIOUS_RECORDS, "data/.ready"];
    fn walk(
        dir: &CompanyDir,
        path: &Path,
        keep: &HashSet<&str>,
        protected: &[&str],
    ) -> Result<bool> {
        let entries = std::fs::read_dir(path).map_err(|e| Error::io("list", path, e))?;
        let mut empty = true;
        for entry in entries.flatten() {
            let child = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                if walk(dir, &child, keep, protected)? {
                    std::fs::remove_dir(&child).map_err(|e| Error::io("remove", &child, e))?;
                } else {
                    empty = false;
                }
                continue;
            }
            let relative = dir.relative(&child).unwrap_or_default();
            if keep.contains(relative.as_str()) || protected.contains(&relative.as_str()) {
                empty = false;
            } else {
                tracing::info!("removing {relative}: no longer part of the documents");
                std::fs::remove_file(&child).map_err(|e| Error::io("remove", &child, e))?;
            }
        }
        Ok(empty)
    }
    let data = dir.data_dir();
    if data.exists() {
        walk(dir, &data, &keep, &protected)?;
    }
    Ok(())
}

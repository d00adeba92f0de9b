//! The `vectorize` job: index one run's documents in one OpenAI vector store, exactly once
//! (SPEC §5.2).
//!
//! It reads and verifies `data/.ready`, uploads exactly the documents under `data/` it lists
//! (purpose `assistants`, streamed from disk, a bounded number at once), creates the run's
//! vector store (`<slug>-<run_id>`, tagged, expiring after `--expires-after-days` of disuse),
//! attaches the files in batches of at most 2,000, polls until every file is `completed`,
//! `failed` or `cancelled`, and writes `vector_ids/vector_<ts>.json` and `vector_ids/.ready`.
//!
//! Invariants:
//! - Nothing is paid for twice. Every upload and the store id are recorded in
//!   `vector_ids/progress_<run_id>.json` as they happen, so a killed run resumes where it
//!   stopped; a re-run over the same documents whose store still exists exits at once; a store
//!   that expired or was deleted is rebuilt from the files already uploaded.
//! - Documents OpenAI cannot take (over 512 MB, types file_search cannot index) are refused
//!   before the first upload.
//! - What a kill leaves unrecorded is still found: the run's store by its metadata (slug and
//!   run id), its files by upload name and size. A resumed run adopts them instead of creating
//!   or uploading them again.
//! - `--cleanup` deletes everything a run created at OpenAI, found from its marker, progress
//!   file, store metadata and upload names, and withdraws the marker.

mod openai;
mod plan;
mod progress;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::Utc;
use openai_client::OpenAi;
use shared::http::{HttpSettings, RetryPolicy};
use shared::inputs::{InputArgs, RunInputs};
use shared::layout::{CompanyDir, Stage};
use shared::lock::StageLock;
use shared::logging::{metric, step, success};
use shared::markers::{FileRecord, Marker, already_done, fingerprint, read_marker};
use shared::records::{IndexedFile, VectorRecord};
use shared::roots::{RootArgs, Roots};
use shared::{Error, Result};
use tokio::sync::Mutex;

use crate::openai::Sent;
use crate::plan::{Document, Plan};
use crate::progress::Progress;

const TOTAL_STEPS: u32 = 4;

/// Index a run's documents in an OpenAI vector store.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "vectorize",
    version,
    about = "Upload the documents of data/.ready to OpenAI and index them in one vector store per run"
)]
pub struct Cli {
    #[command(flatten)]
    pub inputs: InputArgs,
    #[command(flatten)]
    pub roots: RootArgs,
    /// Index again from scratch: delete this run's store and uploaded files, then upload anew.
    #[arg(long)]
    pub force: bool,
    /// Check inputs, the data stage and the configuration, print the plan; no network, no writes.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete the run's vector store and uploaded files, and withdraw its marker.
    #[arg(long, conflicts_with_all = ["dry_run", "force"])]
    pub cleanup: bool,
    /// Days of disuse after which OpenAI deletes the vector store (1 to 365).
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u16).range(1..=365))]
    pub expires_after_days: u16,
    /// How many files may fail processing before the job fails.
    #[arg(long, default_value_t = 0)]
    pub max_failed_files: u64,
    /// Requests in flight at once toward OpenAI (uploads, deletions).
    #[arg(long, env = "OPENAI_CONCURRENCY", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub concurrency: u32,
    /// File ids per file batch (OpenAI accepts at most 2,000).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=2000))]
    pub max_batch_files: u32,
    /// First wait between polls of the store; it grows by half each poll up to 10 s.
    #[arg(long, default_value_t = 1000)]
    pub poll_interval_ms: u64,
    /// Give up when files are still processing after this long (a re-run resumes).
    #[arg(long, default_value_t = 3600)]
    pub poll_timeout_secs: u64,
    /// Retries of a failed request (429, 5xx, connection errors, timeouts).
    #[arg(long, env = "OPENAI_MAX_RETRIES", default_value_t = 6)]
    pub max_retries: usize,
    /// First backoff delay between retries; it doubles up to 30 s (or what Retry-After asks).
    #[arg(long, default_value_t = 500)]
    pub retry_min_delay_ms: u64,
    /// Whole-request timeout; uploads of large files need minutes.
    #[arg(long, default_value_t = 600)]
    pub request_timeout_secs: u64,
}

impl Cli {
    fn http_settings(&self) -> HttpSettings {
        let defaults = HttpSettings::default();
        HttpSettings {
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            max_concurrency: self.concurrency as usize,
            retry: RetryPolicy {
                max_retries: self.max_retries,
                min_delay: Duration::from_millis(self.retry_min_delay_ms),
                ..defaults.retry.clone()
            },
            ..defaults
        }
    }

    fn polling(&self) -> openai::Polling {
        let first = Duration::from_millis(self.poll_interval_ms.max(1));
        openai::Polling {
            first,
            max: first.max(Duration::from_secs(10)),
            timeout: Duration::from_secs(self.poll_timeout_secs),
        }
    }
}

pub async fn run(cli: Cli) -> Result<()> {
    let inputs = cli.inputs.resolve()?.resolved;
    shared::logging::context().set_company(&inputs.company_name);
    if cli.dry_run {
        return dry_run(&cli, &inputs);
    }
    let roots = Roots::open(&cli.roots)?;
    let out = roots.output_dir(&inputs.company_slug);
    if cli.cleanup {
        return cleanup(&cli, &roots, &out, inputs.run_id.as_deref()).await;
    }
    index(&cli, &inputs, &roots, &out).await
}

/// The run id: the one given, or the data stage's; they must agree.
fn adopt_run_id(given: Option<&str>, data_dir: &CompanyDir, data: &Marker) -> Result<String> {
    match given {
        Some(id) if id != data.run_id => Err(Error::upstream(format!(
            "run_id {id} was given but {} belongs to run {}: pass --run-id {} or re-run setup with run_id {id}",
            data_dir.marker(Stage::Data, "").display(),
            data.run_id,
            data.run_id
        ))),
        Some(id) => Ok(id.to_string()),
        None => Ok(data.run_id.clone()),
    }
}

fn dry_run(cli: &Cli, inputs: &RunInputs) -> Result<()> {
    let roots = Roots::plan(&cli.roots)?;
    let (data_dir, data) = roots.upstream(&inputs.company_slug, Stage::Data)?;
    let run_id = adopt_run_id(inputs.run_id.as_deref(), &data_dir, &data)?;
    let plan = Plan::from_marker(&data_dir, &data)?;
    if !plan.documents.is_empty() {
        openai_client::connect(&cli.http_settings())?;
    }
    let out = roots.output_dir(&inputs.company_slug);
    println!("vectorize plan for {} (run {run_id})", inputs.company_slug);
    println!(
        "  data stage: {}",
        data_dir.marker(Stage::Data, "").display()
    );
    println!(
        "  documents: {} ({} bytes)",
        plan.documents.len(),
        plan.total_bytes()
    );
    for document in &plan.documents {
        println!(
            "    {} -> {} ({} bytes)",
            document.path, document.filename, document.bytes
        );
    }
    if plan.documents.is_empty() {
        println!("  no vector store: the data set is empty");
    } else {
        let batches = plan.documents.len().div_ceil(cli.max_batch_files as usize);
        println!(
            "  vector store: {}-{run_id}, expires {} days after last use, {batches} file batch(es)",
            inputs.company_slug, cli.expires_after_days
        );
    }
    println!("  writes: {}", out.vector_ids_dir().display());
    Ok(())
}

async fn index(cli: &Cli, inputs: &RunInputs, roots: &Roots, out: &CompanyDir) -> Result<()> {
    let started = Instant::now();
    let started_at = Utc::now();
    let slug = inputs.company_slug.as_str();
    step(1, TOTAL_STEPS, "Reading the data stage");
    let (data_dir, data) = roots.upstream(slug, Stage::Data)?;
    let run_id = adopt_run_id(inputs.run_id.as_deref(), &data_dir, &data)?;
    shared::logging::context().set_run_id(&run_id);
    let plan = Plan::from_marker(&data_dir, &data)?;
    tracing::info!(
        "{} documents to index ({} bytes)",
        plan.documents.len(),
        plan.total_bytes()
    );
    let client = if plan.documents.is_empty() {
        None
    } else {
        Some(openai_client::connect(&cli.http_settings())?)
    };
    let _lock = StageLock::acquire(out, Stage::Vectors, &run_id)?;
    let marker_path = out.marker(Stage::Vectors, "");
    let data_fingerprint = plan.data_fingerprint();
    let stage_fingerprint = fingerprint(&serde_json::json!({ "documents": data_fingerprint }));

    if !cli.force
        && let Some(previous) = already_done(out, Stage::Vectors, &marker_path, &stage_fingerprint)
        && let Ok(record) = serde_json::from_value::<VectorRecord>(previous.details.clone())
    {
        let serves = match (&record.vector_store_id, &client) {
            (None, _) => true,
            (Some(id), Some(client)) => openai::live_store(client, id).await?.is_some(),
            (Some(_), None) => false,
        };
        if serves && previous.run_id == run_id {
            tracing::info!(
                vector_store_id = record.vector_store_id.as_deref().unwrap_or(""),
                "already done"
            );
            success("vector store already built for these documents; nothing uploaded");
            return Ok(());
        }
        if serves {
            // Same documents, new run: the store serves it as it is; only the record changes.
            let record = VectorRecord {
                run_id: run_id.clone(),
                ..record
            };
            write_outputs(
                out,
                &record,
                &run_id,
                &stage_fingerprint,
                started_at,
                Sent::default(),
                started,
            )?;
            success(
                "reused the vector store of the previous run for these documents; nothing uploaded",
            );
            return Ok(());
        }
        tracing::warn!(
            "the vector store of {} is gone: rebuilding it",
            marker_path.display()
        );
    }
    if marker_path.exists() {
        shared::atomic::remove_durably(&marker_path)?;
    }

    let Some(client) = client else {
        let record = VectorRecord {
            run_id: run_id.clone(),
            counts: counts(&[]),
            ..VectorRecord::default()
        };
        write_outputs(
            out,
            &record,
            &run_id,
            &stage_fingerprint,
            started_at,
            Sent::default(),
            started,
        )?;
        success("no documents: recorded \"no vector store\"");
        return Ok(());
    };
    let progress_path = progress::path(out, &run_id);
    let resuming = progress_path.exists();
    let mut progress = Progress::load(&progress_path, &run_id)?;
    if cli.force {
        discard(&client, slug, &mut progress, cli.concurrency as usize).await?;
        progress.save(&progress_path)?;
    }
    drop_stale_uploads(&client, &plan, &mut progress, cli.concurrency as usize).await?;
    forget_vanished_uploads(&client, &mut progress).await?;
    progress.save(&progress_path)?;

    step(2, TOTAL_STEPS, "Uploading documents");
    let unrecorded = |progress: &Progress| -> Vec<Document> {
        plan.documents
            .iter()
            .filter(|d| !progress.files.contains_key(&d.path))
            .cloned()
            .collect()
    };
    if resuming && !cli.force && !unrecorded(&progress).is_empty() {
        let adopted =
            openai::find_unrecorded_uploads(&client, &unrecorded(&progress), progress.started_at)
                .await?;
        if !adopted.is_empty() {
            tracing::info!(
                "{} files reached OpenAI before the previous attempt stopped: adopting them",
                adopted.len()
            );
            progress.files.extend(adopted);
            progress.save(&progress_path)?;
        }
    }
    let missing = unrecorded(&progress);
    tracing::info!(
        "{} already uploaded, {} to upload",
        plan.documents.len() - missing.len(),
        missing.len()
    );
    let staging = Staging::prepare(out, &data_dir, &missing)?;
    let progress = Mutex::new(progress);
    let sent = openai::upload_all(
        &client,
        &missing,
        |d| staging.source(d),
        &progress,
        &progress_path,
        cli.concurrency as usize,
    )
    .await?;
    staging.remove()?;
    let mut progress = progress.into_inner();

    step(3, TOTAL_STEPS, "Attaching files to the vector store");
    let live = match &progress.vector_store_id {
        Some(id) => openai::live_store(&client, id).await?,
        None => None,
    };
    let adopted = match live {
        Some(_) => None,
        // A run killed between creating its store and recording it left the store tagged.
        None => openai::find_run_stores(&client, slug, &run_id)
            .await?
            .into_iter()
            .find(|store| !store.expired),
    };
    let store_id = match (live, adopted) {
        (Some(id), _) => id,
        (None, Some(found)) => {
            tracing::info!(
                vector_store_id = %found.id,
                "vector store {} was created for this run before it stopped: adopting it",
                found.id
            );
            progress.vector_store_id = Some(found.id.clone());
            progress.save(&progress_path)?;
            found.id
        }
        (None, None) => {
            let id = openai::create_store(
                &client,
                slug,
                &run_id,
                &data_fingerprint,
                cli.expires_after_days,
            )
            .await?;
            progress.vector_store_id = Some(id.clone());
            progress.save(&progress_path)?;
            id
        }
    };
    tracing::info!(vector_store_id = %store_id, "vector store {store_id}");
    let attached: BTreeSet<String> = openai::list_store_files(&client, &store_id)
        .await?
        .into_iter()
        .map(|f| f.id)
        .collect();
    let to_attach: Vec<String> = plan
        .documents
        .iter()
        .filter_map(|d| progress.files.get(&d.path))
        .map(|u| u.file_id.clone())
        .filter(|id| !attached.contains(id))
        .collect();
    openai::attach(&client, &store_id, &to_attach, cli.max_batch_files as usize).await?;

    step(4, TOTAL_STEPS, "Waiting for OpenAI to process the files");
    let states = openai::wait_until_processed(&client, &store_id, cli.polling()).await?;
    let files = indexed_files(&plan, &progress, &states);
    let record = VectorRecord {
        run_id: run_id.clone(),
        vector_store_id: Some(store_id.clone()),
        counts: counts(&files),
        files,
    };
    let failed: Vec<&IndexedFile> = record
        .files
        .iter()
        .filter(|f| f.status != "completed")
        .collect();
    if failed.len() as u64 > cli.max_failed_files {
        let record_path = write_record(out, &record)?;
        let list: Vec<String> = failed
            .iter()
            .map(|f| {
                format!(
                    "{} ({}: {})",
                    f.path,
                    f.status,
                    f.last_error.as_deref().unwrap_or("no error given")
                )
            })
            .collect();
        log_metrics(
            sent,
            failed.len() as u64,
            started.elapsed(),
            record.vector_store_id.as_deref(),
        );
        return Err(Error::external(format!(
            "{} file(s) failed indexing, more than --max-failed-files {}: {}; details in {}; fix or remove them \
             and re-run setup, or raise --max-failed-files",
            failed.len(),
            cli.max_failed_files,
            list.join("; "),
            record_path.display()
        )));
    }
    write_outputs(
        out,
        &record,
        &run_id,
        &stage_fingerprint,
        started_at,
        sent,
        started,
    )?;
    success(&format!(
        "indexed {} documents in vector store {store_id}",
        record.files.len()
    ));
    Ok(())
}

/// Documents whose upload no longer matches (changed content or name, or gone from the data
/// set) are forgotten and their files deleted, so they are uploaded afresh and leave no orphan.
async fn drop_stale_uploads(
    client: &OpenAi,
    plan: &Plan,
    progress: &mut Progress,
    concurrency: usize,
) -> Result<()> {
    let wanted: BTreeMap<&str, &Document> = plan
        .documents
        .iter()
        .map(|d| (d.path.as_str(), d))
        .collect();
    let stale: Vec<String> = progress
        .files
        .iter()
        .filter(|(path, up)| {
            wanted
                .get(path.as_str())
                .is_none_or(|d| d.sha256 != up.sha256 || d.filename != up.filename)
        })
        .map(|(path, _)| path.clone())
        .collect();
    let ids: Vec<String> = stale
        .iter()
        .filter_map(|p| progress.files.remove(p))
        .map(|u| u.file_id)
        .collect();
    if !ids.is_empty() {
        tracing::info!(
            "{} uploads no longer match the documents: deleting them",
            ids.len()
        );
        openai::delete_files(client, &ids, concurrency).await?;
    }
    Ok(())
}

/// When the store is gone, the files recorded for it may be gone too (deleted, expired, or a
/// different account or endpoint): only files OpenAI still holds are reused.
async fn forget_vanished_uploads(client: &OpenAi, progress: &mut Progress) -> Result<()> {
    if progress.files.is_empty() {
        return Ok(());
    }
    if let Some(id) = &progress.vector_store_id
        && openai::live_store(client, id).await?.is_some()
    {
        return Ok(());
    }
    let existing = openai::existing_file_ids(client).await?;
    let before = progress.files.len();
    progress
        .files
        .retain(|_, up| existing.contains(&up.file_id));
    if progress.files.len() < before {
        tracing::warn!(
            "{} recorded uploads no longer exist at OpenAI: uploading them again",
            before - progress.files.len()
        );
    }
    Ok(())
}

/// `--force`: deletes the run's stores (recorded or tagged) and files so that everything is
/// uploaded anew.
async fn discard(
    client: &OpenAi,
    slug: &str,
    progress: &mut Progress,
    concurrency: usize,
) -> Result<()> {
    let tagged = openai::find_run_stores(client, slug, &progress.run_id).await?;
    let stores: BTreeSet<String> = progress
        .vector_store_id
        .take()
        .into_iter()
        .chain(tagged.into_iter().map(|store| store.id))
        .collect();
    for id in &stores {
        openai::delete_store(client, id).await?;
    }
    let ids: Vec<String> = std::mem::take(&mut progress.files)
        .into_values()
        .map(|u| u.file_id)
        .collect();
    openai::delete_files(client, &ids, concurrency).await?;
    Ok(())
}

fn indexed_files(
    plan: &Plan,
    progress: &Progress,
    states: &BTreeMap<
        String,
        openai_client::async_openai::types::vectorstores::VectorStoreFileObject,
    >,
) -> Vec<IndexedFile> {
    plan.documents
        .iter()
        .filter_map(|document| {
            let uploaded = progress.files.get(&document.path)?;
            let state = states.get(&uploaded.file_id);
            let status = state.map_or("failed".to_string(), |s| wire_name(&s.status));
            let last_error = match state {
                Some(s) => s
                    .last_error
                    .as_ref()
                    .map(|e| format!("{}: {}", wire_name(&e.code), e.message)),
                None => Some("the file is not in the vector store".to_string()),
            };
            Some(IndexedFile {
                path: document.path.clone(),
                file_id: uploaded.file_id.clone(),
                filename: uploaded.filename.clone(),
                status,
                last_error,
            })
        })
        .collect()
}

/// The name OpenAI uses on the wire for an enum value (`completed`, `invalid_file`).
fn wire_name(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => "unknown".to_string(),
    }
}

fn counts(files: &[IndexedFile]) -> BTreeMap<String, u64> {
    let mut counts: BTreeMap<String, u64> = ["completed", "failed", "cancelled"]
        .iter()
        .map(|s| (s.to_string(), 0))
        .collect();
    for file in files {
        *counts.entry(file.status.clone()).or_insert(0) += 1;
    }
    counts.insert("total".to_string(), files.len() as u64);
    counts
}

fn write_record(out: &CompanyDir, record: &VectorRecord) -> Result<PathBuf> {
    let path = out.vector_record(&shared::layout::timestamp(Utc::now()));
    let mut json = serde_json::to_vec_pretty(record)
        .map_err(|e| Error::internal(format!("cannot encode the record: {e}")))?;
    json.push(b'\n');
    shared::atomic::write_atomic(&path, &json)?;
    Ok(path)
}

/// Writes the record, then the marker that vouches for it (last), and logs the metrics.
fn write_outputs(
    out: &CompanyDir,
    record: &VectorRecord,
    run_id: &str,
    stage_fingerprint: &str,
    started_at: chrono::DateTime<Utc>,
    sent: Sent,
    started: Instant,
) -> Result<()> {
    let record_path = write_record(out, record)?;
    let relative = out.relative(&record_path).ok_or_else(|| {
        Error::internal(format!(
            "{} is outside {}",
            record_path.display(),
            out.path().display()
        ))
    })?;
    let failed = record.counts.get("failed").copied().unwrap_or(0)
        + record.counts.get("cancelled").copied().unwrap_or(0);
    let elapsed = started.elapsed();
    let metrics: serde_json::Map<String, serde_json::Value> = [
        ("files_uploaded", serde_json::json!(sent.files)),
        ("bytes_uploaded", serde_json::json!(sent.bytes)),
        ("files_failed", serde_json::json!(failed)),
        ("elapsed", serde_json::json!(elapsed.as_secs_f64())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let marker = Marker {
        stage: Stage::Vectors.as_str().to_string(),
        run_id: run_id.to_string(),
        slug: out.slug().to_string(),
        job: "vectorize".to_string(),
        job_version: env!("CARGO_PKG_VERSION").to_string(),
        started: started_at,
        finished: Utc::now(),
        fingerprint: stage_fingerprint.to_string(),
        files: vec![FileRecord::of(out, &relative)?],
        metrics,
        details: serde_json::to_value(record)
            .map_err(|e| Error::internal(format!("cannot encode the record: {e}")))?,
    };
    marker.write(&out.marker(Stage::Vectors, ""))?;
    tracing::info!(
        "wrote {relative} and {}",
        out.marker(Stage::Vectors, "").display()
    );
    log_metrics(sent, failed, elapsed, record.vector_store_id.as_deref());
    Ok(())
}

/// The run's metrics, logged whether it succeeded or failed (SPEC §6).
fn log_metrics(sent: Sent, failed: u64, elapsed: Duration, vector_store_id: Option<&str>) {
    metric("files_uploaded", sent.files as f64, "files");
    metric("bytes_uploaded", sent.bytes as f64, "bytes");
    metric("files_failed", failed as f64, "files");
    metric("vectorize_elapsed", elapsed.as_secs_f64(), "seconds");
    let id = vector_store_id.unwrap_or("");
    tracing::info!(
        vector_store_id = id,
        "vector store: {}",
        vector_store_id.unwrap_or("none")
    );
}

/// Where uploads stream from. async-openai names an upload after the file it reads, so a
/// document whose upload name differs from its base name is read through a symlink of that name
/// in `vector_ids/.staging/` (in the outputs root: inputs may be read-only).
struct Staging {
    dir: PathBuf,
    data_dir: CompanyDir,
}

impl Staging {
    fn prepare(out: &CompanyDir, data_dir: &CompanyDir, documents: &[Document]) -> Result<Staging> {
        let staging = Staging {
            dir: out.vector_ids_dir().join(".staging"),
            data_dir: data_dir.clone(),
        };
        staging.remove()?;
        for document in documents
            .iter()
            .filter(|d| !d.path.ends_with(&format!("/{}", d.filename)))
        {
            std::fs::create_dir_all(&staging.dir)
                .map_err(|e| Error::io("create", &staging.dir, e))?;
            let link = staging.dir.join(&document.filename);
            std::os::unix::fs::symlink(data_dir.join(&document.path), &link)
                .map_err(|e| Error::io("create symlink", &link, e))?;
        }
        Ok(staging)
    }

    fn source(&self, document: &Document) -> PathBuf {
        if document.path.ends_with(&format!("/{}", document.filename)) {
            self.data_dir.join(&document.path)
        } else {
            self.dir.join(&document.filename)
        }
    }

    fn remove(&self) -> Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io("remove", &self.dir, e))
            }
            _ => Ok(()),
        }
    }
}

/// `--cleanup`: deletes the run's store and files at OpenAI and its local traces. Besides what
/// the run recorded, it deletes what a kill or a retried upload left unrecorded: stores tagged
/// with the run, and files uploaded since the run started under one of its upload names with
/// that document's size (unless another run of the company recorded them).
async fn cleanup(
    cli: &Cli,
    roots: &Roots,
    out: &CompanyDir,
    given_run_id: Option<&str>,
) -> Result<()> {
    let marker_path = out.marker(Stage::Vectors, "");
    let marker = read_marker(&marker_path).ok();
    let run_id = match (given_run_id, &marker) {
        (Some(id), _) => id.to_string(),
        (None, Some(marker)) => marker.run_id.clone(),
        (None, None) => {
            return Err(Error::bad_input(format!(
                "nothing to clean up: no {} and no --run-id; pass --run-id of the run to clean up",
                marker_path.display()
            )));
        }
    };
    shared::logging::context().set_run_id(&run_id);
    let client = openai_client::connect(&cli.http_settings())?;
    let _lock = StageLock::acquire(out, Stage::Vectors, &run_id)?;
    let progress_path = progress::path(out, &run_id);
    let progress = progress_path
        .exists()
        .then(|| Progress::load(&progress_path, &run_id))
        .transpose()?;
    let other_runs = recorded_by_other_runs(out, &run_id, marker.as_ref());
    let marker = marker.filter(|m| m.run_id == run_id);
    let record = marker
        .as_ref()
        .and_then(|m| serde_json::from_value::<VectorRecord>(m.details.clone()).ok());

    let tagged = openai::find_run_stores(&client, out.slug(), &run_id).await?;
    let stores: BTreeSet<String> = progress
        .iter()
        .filter_map(|p| p.vector_store_id.clone())
        .chain(record.iter().filter_map(|r| r.vector_store_id.clone()))
        .chain(tagged.into_iter().map(|store| store.id))
        .collect();
    let mut file_ids: BTreeSet<String> = progress
        .iter()
        .flat_map(|p| p.files.values().map(|u| u.file_id.clone()))
        .chain(
            record
                .iter()
                .flat_map(|r| r.files.iter().map(|f| f.file_id.clone())),
        )
        .collect();
    let since = progress
        .as_ref()
        .map(|p| p.started_at)
        .or_else(|| marker.as_ref().map(|m| m.started.timestamp().max(0) as u64));
    if let Some(since) = since {
        let names = upload_names(roots, out.slug(), progress.as_ref());
        let unrecorded: Vec<String> = openai::find_run_uploads(&client, &names, since)
            .await?
            .into_iter()
            .filter(|id| !file_ids.contains(id) && !other_runs.contains(id))
            .collect();
        if !unrecorded.is_empty() {
            tracing::info!(
                "{} files of this run were never recorded (a kill or a retried upload): deleting them too",
                unrecorded.len()
            );
        }
        file_ids.extend(unrecorded);
    }
    if marker.is_some() {
        shared::atomic::remove_durably(&marker_path)?;
    }
    for id in &stores {
        if openai::delete_store(&client, id).await? {
            tracing::info!(vector_store_id = %id, "deleted vector store {id}");
        }
    }
    let file_ids: Vec<String> = file_ids.into_iter().collect();
    let deleted = openai::delete_files(&client, &file_ids, cli.concurrency as usize).await?;
    for path in run_records(out, &run_id) {
        shared::atomic::remove_durably(&path)?;
    }
    if progress.is_some() {
        shared::atomic::remove_durably(&progress_path)?;
    }
    success(&format!(
        "cleaned up run {run_id}: {} vector store(s) and {deleted} file(s) deleted",
        stores.len()
    ));
    Ok(())
}

/// Upload name → size of the run's documents: those it recorded, and those the data stage lists
/// if it can still be read (a document whose upload was in flight at a kill is not recorded).
fn upload_names(roots: &Roots, slug: &str, progress: Option<&Progress>) -> BTreeMap<String, u64> {
    let mut names: BTreeMap<String, u64> = progress
        .iter()
        .flat_map(|p| p.files.values())
        .map(|u| (u.filename.clone(), u.bytes))
        .collect();
    let plan = roots
        .upstream(slug, Stage::Data)
        .and_then(|(data_dir, data)| Plan::from_marker(&data_dir, &data));
    match plan {
        Ok(plan) => names.extend(plan.documents.into_iter().map(|d| (d.filename, d.bytes))),
        Err(e) => tracing::info!(
            "the data stage cannot be read ({e}): looking for unrecorded files of recorded documents only"
        ),
    }
    names
}

/// File ids that other runs of the company recorded (their progress files, and the marker if it
/// is another run's): never deleted when cleaning up this run, even if the name and size match.
fn recorded_by_other_runs(
    out: &CompanyDir,
    run_id: &str,
    marker: Option<&Marker>,
) -> BTreeSet<String> {
    let own = progress::path(out, run_id);
    let mut ids: BTreeSet<String> = std::fs::read_dir(out.vector_ids_dir())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            *p != own
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("progress_") && n.ends_with(".json"))
        })
        .filter_map(|p| std::fs::read(&p).ok())
        .filter_map(|bytes| serde_json::from_slice::<Progress>(&bytes).ok())
        .flat_map(|p| p.files.into_values().map(|u| u.file_id))
        .collect();
    if let Some(marker) = marker.filter(|m| m.run_id != run_id)
        && let Ok(record) = serde_json::from_value::<VectorRecord>(marker.details.clone())
    {
        ids.extend(record.files.into_iter().map(|f| f.file_id));
    }
    ids
}

/// The `vector_<ts>.json` records of `run_id`.
fn run_records(out: &CompanyDir, run_id: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(out.vector_ids_dir()) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vector_") && n.ends_with(".json"))
        })
        .filter(|p| {
            std::fs::read(p)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<VectorRecord>(&bytes).ok())
                .is_some_and(|r| r.run_id == run_id)
        })
        .collect()
}

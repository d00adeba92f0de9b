//! The `upload` job (SPEC §5.4): puts a run's final report into the Drive folder named by
//! `GDRIVE_FINAL_REPORT_FOLDER` and writes `final/upload_receipt_<run_id>.json`.
//!
//! Invariants:
//! - Every input is checked before the first network call: run inputs, the folder link, the
//!   service-account key, and the pipeline's final marker with the report's SHA-256 (a missing
//!   marker or a changed report is an upstream error, exit 3). The bytes uploaded are the bytes
//!   that were hashed.
//! - One Drive file per run and folder: the file carries `run_id`, `sha256` and `slug` in its
//!   appProperties; a re-run finds it by `run_id` and reuses it (same checksum: no upload at all)
//!   or updates its content (changed report), never creating a duplicate.
//! - The receipt is written last and atomically, and withdrawn before the Drive file it names is
//!   changed. A receipt for the same checksum whose Drive file still exists means "already done":
//!   one metadata request, then exit 0.
//! - Uploads are resumable, with `supportsAllDrives`, through the shared Drive client (its
//!   retries, timeouts and error messages).

mod drive;
mod receipt;
mod render;
mod report;

use std::path::Path;

use clap::Parser;
use shared::inputs::InputArgs;
use shared::layout::Stage;
use shared::lock::StageLock;
use shared::logging;
use shared::records::UploadReceipt;
use shared::roots::{RootArgs, Roots};
use shared::{Error, Result};

use crate::drive::{Upload, UploadTarget};
use crate::report::FinalReport;

/// Upload a run's final report to Google Drive.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "upload",
    version,
    about = "Upload a run's final report to a Google Drive folder (resumable, idempotent) and write \
             final/upload_receipt_<run_id>.json"
)]
pub struct Cli {
    #[command(flatten)]
    pub inputs: InputArgs,
    #[command(flatten)]
    pub roots: RootArgs,
    /// Drive folder that receives the report: folder URL or bare id. The service account needs
    /// Editor access to it.
    #[arg(long, env = "GDRIVE_FINAL_REPORT_FOLDER", value_name = "URL|ID")]
    pub final_report_folder: Option<String>,
    /// Upload the report as a Google Doc (rendered to HTML, converted by Drive) instead of a
    /// Markdown file.
    #[arg(long)]
    pub as_google_doc: bool,
    /// Upload again even if the receipt and the Drive file say it is done (the Drive file of this
    /// run is updated, not duplicated).
    #[arg(long)]
    pub force: bool,
    /// Check inputs, the final marker and the configuration, print the plan; no network, no writes.
    #[arg(long)]
    pub dry_run: bool,
}

/// Runs the job (see the crate documentation for what it guarantees).
pub async fn run(cli: Cli) -> Result<()> {
    let inputs = cli.inputs.resolve()?.resolved;
    logging::context().set_company(&inputs.company_name);
    let folder_id = final_folder_id(cli.final_report_folder.as_deref())?;
    let (key_path, client_email, _) = drive_client::check_configuration()?;
    let roots = if cli.dry_run {
        Roots::plan(&cli.roots)?
    } else {
        Roots::open(&cli.roots)?
    };
    let slug = inputs.company_slug.as_str();

    logging::step(1, 3, "verify the final report");
    let report = FinalReport::load(&roots, slug, inputs.run_id.as_deref())?;
    logging::context().set_run_id(&report.run_id);
    let upload = Upload::of(&report, cli.as_google_doc);
    let out_dir = roots.output_dir(slug);
    let receipt_path = out_dir.upload_receipt(&report.run_id);

    if cli.dry_run {
        let credentials = format!("{key_path} (service account {client_email})");
        print_plan(
            &report,
            &upload,
            &folder_id,
            &receipt_path,
            &credentials,
            cli.force,
        );
        return Ok(());
    }
    let drive = drive::Drive::connect().await?;

    let _lock = StageLock::acquire(&out_dir, Stage::Upload, &report.run_id)?;
    logging::step(2, 3, "upload the report to Drive");
    if !cli.force
        && let Some(previous) = receipt::read(&receipt_path)
        && previous.sha256 == report.sha256
        && previous.folder_id == folder_id
        && drive.is_current(&previous.file_id, &upload).await?
    {
        logging::metric("files_uploaded", 0.0, "files");
        logging::success(&format!(
            "already done: {} is in Drive as {} ({}); pass --force to upload again",
            report.relative, previous.file_id, previous.web_view_link
        ));
        return Ok(());
    }

    drive.check_folder(&folder_id).await?;
    let existing = drive
        .find_run_file(&folder_id, &report.run_id, &upload)
        .await?;
    // The receipt vouches for a Drive file; withdraw it before that file may change.
    shared::atomic::remove_durably(&receipt_path)?;
    let (file, uploaded) = match existing {
        Some(file) if file.sha256.as_deref() == Some(report.sha256.as_str()) && !cli.force => {
            tracing::info!(file_id = %file.id, "the report is already in Drive with the same checksum: not uploading it again");
            (file, false)
        }
        Some(file) => {
            tracing::info!(file_id = %file.id, "updating the Drive file of this run with the new report");
            (
                drive
                    .upload(UploadTarget::Update(&file.id), &folder_id, &upload)
                    .await?,
                true,
            )
        }
        None => (
            drive
                .upload(UploadTarget::Create, &folder_id, &upload)
                .await?,
            true,
        ),
    };

    logging::step(3, 3, "write the upload receipt");
    let receipt = UploadReceipt {
        run_id: report.run_id.clone(),
        slug: slug.to_string(),
        report: report.relative.clone(),
        folder_id,
        file_id: file.id,
        name: file.name,
        web_view_link: file.web_view_link,
        bytes: report.content.len() as u64,
        sha256: report.sha256.clone(),
        uploaded_at: chrono::Utc::now(),
    };
    receipt::write(&receipt_path, &receipt)?;
    logging::metric("files_uploaded", if uploaded { 1.0 } else { 0.0 }, "files");
    logging::metric("final_report_size", report.content.len() as f64, "bytes");
    logging::success(&format!(
        "{} is in Drive as {} ({}); receipt {}",
        report.relative,
        receipt.file_id,
        receipt.web_view_link,
        receipt_path.display()
    ));
    Ok(())
}

/// `GDRIVE_FINAL_REPORT_FOLDER` reduced to a folder id.
fn final_folder_id(link: Option<&str>) -> Result<String> {
    match link.map(str::trim).filter(|l| !l.is_empty()) {
        Some(link) => shared::drive_link::parse_drive_id("GDRIVE_FINAL_REPORT_FOLDER", link),
        None => Err(Error::bad_input(
            "missing GDRIVE_FINAL_REPORT_FOLDER: set it (or pass --final-report-folder) to the URL \
             or id of the Drive folder that receives the final report",
        )),
    }
}

fn print_plan(
    report: &FinalReport,
    upload: &Upload,
    folder_id: &str,
    receipt_path: &Path,
    credentials: &str,
    force: bool,
) {
    println!("upload plan (dry run: nothing is sent or written)");
    println!("  run_id:        {}", report.run_id);
    println!(
        "  final marker:  {} (verified)",
        report.marker_path.display()
    );
    println!(
        "  report:        {} ({} bytes, sha256 {})",
        report.path.display(),
        report.content.len(),
        report.sha256
    );
    println!(
        "  written by:    pipeline, model set {}, {} use cases, {} input / {} output tokens, ${:.4}",
        report.details.model_set,
        report.details.use_cases_count,
        report.details.input_tokens,
        report.details.output_tokens,
        report.details.cost_usd
    );
    println!("  drive folder:  {folder_id}");
    println!(
        "  drive file:    {} ({}, resumable upload)",
        upload.name,
        upload.kind()
    );
    println!(
        "  existing file: reused if a file in the folder has appProperties run_id={}",
        report.run_id
    );
    println!("  receipt:       {}", receipt_path.display());
    println!("  credentials:   {credentials}");
    if force {
        println!("  --force:       upload even if the receipt says it is done");
    }
}

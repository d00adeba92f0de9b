//! The final report upload hands to Drive: found through the pipeline's verified marker, read
//! once into memory and checked against the checksum the marker records, so the bytes uploaded
//! are exactly the bytes the pipeline vouched for (a report edited after the marker was written
//! is refused, not uploaded).

use std::path::PathBuf;

use shared::markers::sha256_hex;
use shared::records::FinalDetails;
use shared::roots::Roots;
use shared::{Error, Result};

/// A verified final report and what the pipeline recorded about it.
#[derive(Debug, Clone)]
pub struct FinalReport {
    pub run_id: String,
    pub slug: String,
    /// Path relative to the company directory, as the marker lists it.
    pub relative: String,
    pub path: PathBuf,
    pub marker_path: PathBuf,
    /// The report's file name (`FINAL_REPORT_<slug>_<ts>.md`).
    pub file_name: String,
    pub content: Vec<u8>,
    pub sha256: String,
    pub details: FinalDetails,
}

impl FinalReport {
    /// Finds the final marker of `run_id` (or of the latest run), verifies it and reads the report
    /// it lists. Every failure is an upstream error (exit 3) that says which job to re-run.
    pub fn load(roots: &Roots, slug: &str, run_id: Option<&str>) -> Result<FinalReport> {
        let (dir, marker, marker_path) = match roots.upstream_final(slug, run_id) {
            Ok(found) => found,
            Err(err) => return Err(explain_other_run(roots, slug, run_id, err)),
        };
        let details: FinalDetails = serde_json::from_value(marker.details.clone()).map_err(|e| {
            Error::upstream(format!(
                "final marker {} carries no valid report details ({e}); re-run `pipeline` with --force",
                marker_path.display()
            ))
        })?;
        let Some(record) = marker.file(&details.report) else {
            return Err(Error::upstream(format!(
                "final marker {} names the report {} but does not list it with a checksum; re-run \
                 `pipeline` with --force",
                marker_path.display(),
                details.report
            )));
        };
        let path = dir.join(&record.path);
        let content = std::fs::read(&path).map_err(|e| {
            Error::upstream(format!(
                "cannot read the final report {} ({e}); re-run `pipeline` with --force",
                path.display()
            ))
        })?;
        // Hash the very bytes that will be uploaded: the marker was verified a moment ago, but
        // the file could have changed since.
        let sha256 = sha256_hex(&content);
        if sha256 != record.sha256 || content.len() as u64 != record.bytes {
            return Err(checksum_mismatch(
                &marker_path,
                &path,
                record.bytes,
                &record.sha256,
                &content,
                &sha256,
            ));
        }
        if content.is_empty() {
            return Err(Error::upstream(format!(
                "the final report {} is empty; re-run `pipeline` with --force",
                path.display()
            )));
        }
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| details.report.clone());
        Ok(FinalReport {
            run_id: marker.run_id.clone(),
            slug: marker.slug.clone(),
            relative: record.path.clone(),
            path,
            marker_path,
            file_name,
            content,
            sha256,
            details,
        })
    }

    /// The report's name without its `.md` extension (the title a Google Doc gets).
    pub fn title(&self) -> &str {
        self.file_name
            .strip_suffix(".md")
            .unwrap_or(&self.file_name)
    }
}

fn checksum_mismatch(
    marker_path: &std::path::Path,
    path: &std::path::Path,
    expected_bytes: u64,
    expected_sha256: &str,
    content: &[u8],
    sha256: &str,
) -> Error {
    Error::upstream(format!(
        "checksum mismatch: final marker {} lists {} with {expected_bytes} bytes sha256 \
         {expected_sha256}, but the file has {} bytes sha256 {sha256}; re-run `pipeline` with --force",
        marker_path.display(),
        path.display(),
        content.len()
    ))
}

/// A run id was given but only another run's report exists: name both, so the user sees whether
/// they mistyped the run id or forgot to run the pipeline for it.
fn explain_other_run(roots: &Roots, slug: &str, run_id: Option<&str>, err: Error) -> Error {
    let Some(wanted) = run_id else { return err };
    match roots.upstream_final(slug, None) {
        Ok((_, latest, path)) if latest.run_id != wanted => Error::upstream(format!(
            "no final report for run {wanted}: the final marker {} is for run {}; pass \
             --run-id {} or run `pipeline` for run {wanted} first",
            path.display(),
            latest.run_id,
            latest.run_id
        )),
        _ => err,
    }
}

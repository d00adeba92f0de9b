//! Bringing each planned document into `data/`: reuse, download, export, copy, convert.
//!
//! Every file reaches its final name complete or not at all (temp file in the same directory,
//! renamed into place). A Drive document whose id, modifiedTime and md5Checksum match what the
//! previous run recorded for the same path, and whose bytes there still match the recorded
//! SHA-256, is reused without any request: that is what makes a re-run cheap.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use drive_client::{DriveClient, ExportOutcome};
use shared::layout::CompanyDir;
use shared::markers::{FileRecord, hash_file};
use shared::records::{DocumentOrigin, SkippedDocument};
use shared::{Error, Result};

use crate::plan::{Fetch, Planned};
use crate::preprocess::{self, Treatment};
use crate::source::Content;

/// What happened to one planned document.
pub enum Outcome {
    Written {
        record: FileRecord,
        /// Bytes fetched from Drive (0 when reused or copied from a local folder).
        downloaded: u64,
        reused: bool,
    },
    /// Not made ready. `modified_time` is set for a Drive document skipped only after fetching
    /// it (an empty export, or every format over the export cap): the next run skips it again
    /// without a request while its modifiedTime is unchanged.
    Skipped {
        skip: SkippedDocument,
        modified_time: Option<String>,
    },
}

/// What the fetches share.
pub struct Context<'a> {
    pub dir: &'a CompanyDir,
    pub client: Option<&'a DriveClient>,
    /// The previous run's records of `data/` files, by path.
    pub previous: &'a HashMap<String, FileRecord>,
    /// The previous run's fetch-time skips: Drive id → (the modifiedTime it was skipped at, why).
    pub previous_skips: &'a HashMap<String, (String, String)>,
}

/// Brings one document into `data/`.
pub async fn fetch(ctx: &Context<'_>, planned: &Planned) -> Result<Outcome> {
    if let Some(record) = reusable(ctx, planned).await {
        return Ok(Outcome::Written {
            record,
            downloaded: 0,
            reused: true,
        });
    }
    if let Content::Drive(item) = &planned.document.content
        && let Some((at, reason)) = ctx.previous_skips.get(&item.id)
        && item.modified_time.as_ref() == Some(at)
    {
        return Ok(skipped(planned, reason));
    }
    match (&planned.document.content, &planned.fetch) {
        (Content::Local(path), Fetch::AsIs) => {
            let target = ctx.dir.join(&planned.targets[0]);
            let (source, dest) = (path.clone(), target.clone());
            blocking(move || copy_file(&source, &dest)).await?;
            written(ctx, &planned.targets[0], origin_json(&planned.origin)?, 0)
        }
        (Content::Local(path), Fetch::Table(how)) => {
            convert(
                ctx,
                planned,
                *how,
                path.clone(),
                &planned.targets[0],
                planned.origin.clone(),
                0,
            )
            .await
        }
        (Content::Drive(item), Fetch::AsIs) => {
            let client = drive(ctx)?;
            let target = ctx.dir.join(&planned.targets[0]);
            let done = client
                .download_to_file(&item.id, item.md5_checksum.as_deref(), &target)
                .await?;
            written(
                ctx,
                &planned.targets[0],
                origin_json(&planned.origin)?,
                done.bytes,
            )
        }
        (Content::Drive(item), Fetch::Table(how)) => {
            let client = drive(ctx)?;
            let staging = Staging::new(&ctx.dir.join(&planned.targets[0]))?;
            let done = client
                .download_to_file(&item.id, item.md5_checksum.as_deref(), staging.path())
                .await?;
            convert(
                ctx,
                planned,
                *how,
                staging.path().to_path_buf(),
                &planned.targets[0],
                planned.origin.clone(),
                done.bytes,
            )
            .await
        }
        (Content::Drive(item), Fetch::Export(formats)) => {
            let client = drive(ctx)?;
            for (format, relative) in formats.iter().zip(&planned.targets) {
                let target = ctx.dir.join(relative);
                let mut origin = planned.origin.clone();
                origin.export_format = Some(format.mime.to_string());
                let outcome = match format.convert {
                    Some(how) => {
                        let staging = Staging::new(&target)?;
                        match client
                            .export_to_file(&item.id, format.mime, staging.path())
                            .await?
                        {
                            ExportOutcome::Exported(done) => {
                                if format.mime == "text/csv" {
                                    tracing::warn!(
                                        "{}: only the first sheet could be exported (as CSV)",
                                        planned.document.original_path
                                    );
                                }
                                Some(
                                    convert(
                                        ctx,
                                        planned,
                                        how,
                                        staging.path().to_path_buf(),
                                        relative,
                                        origin,
                                        done.bytes,
                                    )
                                    .await?,
                                )
                            }
                            ExportOutcome::TooLarge => None,
                        }
                    }
                    None => match client
                        .export_to_file(&item.id, format.mime, &target)
                        .await?
                    {
                        ExportOutcome::Exported(done) if done.bytes == 0 => {
                            shared::atomic::remove_durably(&target)?;
                            Some(skipped(planned, "the exported document is empty"))
                        }
                        ExportOutcome::Exported(done) => {
                            Some(written(ctx, relative, origin_json(&origin)?, done.bytes)?)
                        }
                        ExportOutcome::TooLarge => None,
                    },
                };
                match outcome {
                    Some(outcome) => return Ok(outcome),
                    None => tracing::warn!(
                        "{}: exporting as {} exceeds Drive's 10 MB export cap; trying the next format",
                        planned.document.original_path,
                        format.mime
                    ),
                }
            }
            Ok(skipped(
                planned,
                "every export format exceeds Drive's 10 MB export cap; split the document",
            ))
        }
        (Content::Local(_), Fetch::Export(_)) => {
            Err(Error::internal("a local file cannot be exported"))
        }
    }
}

/// The previous record for this document, if its content is unchanged and still on disk.
async fn reusable(ctx: &Context<'_>, planned: &Planned) -> Option<FileRecord> {
    let Content::Drive(item) = &planned.document.content else {
        return None;
    };
    for target in &planned.targets {
        let Some(record) = ctx.previous.get(target) else {
            continue;
        };
        let Ok(origin) = serde_json::from_value::<DocumentOrigin>(record.origin.clone()) else {
            continue;
        };
        let same = origin.drive_id.as_deref() == Some(item.id.as_str())
            && origin.modified_time == item.modified_time
            && origin.md5_checksum == item.md5_checksum
            && origin.original_path == planned.origin.original_path;
        if !same {
            continue;
        }
        let path = ctx.dir.join(target);
        let (bytes, sha) = blocking(move || hash_file(&path)).await.ok()?;
        if bytes == record.bytes && sha == record.sha256 {
            return Some(record.clone());
        }
    }
    None
}

async fn convert(
    ctx: &Context<'_>,
    planned: &Planned,
    how: Treatment,
    source: PathBuf,
    relative: &str,
    origin: DocumentOrigin,
    downloaded: u64,
) -> Result<Outcome> {
    let target = ctx.dir.join(relative);
    let title = planned.document.name.clone();
    let converted =
        blocking(move || preprocess::convert_table(how, &source, &title, &target)).await?;
    if !converted {
        return Ok(skipped(planned, "the table has no cells"));
    }
    written(ctx, relative, origin_json(&origin)?, downloaded)
}

fn written(
    ctx: &Context<'_>,
    relative: &str,
    origin: serde_json::Value,
    downloaded: u64,
) -> Result<Outcome> {
    let record = FileRecord::of(ctx.dir, relative)?.with_origin(origin);
    Ok(Outcome::Written {
        record,
        downloaded,
        reused: false,
    })
}

fn skipped(planned: &Planned, reason: &str) -> Outcome {
    Outcome::Skipped {
        skip: SkippedDocument {
            original_path: planned.document.original_path.clone(),
            drive_id: planned.origin.drive_id.clone(),
            reason: reason.to_string(),
        },
        modified_time: planned.origin.modified_time.clone(),
    }
}

fn origin_json(origin: &DocumentOrigin) -> Result<serde_json::Value> {
    serde_json::to_value(origin)
        .map_err(|e| Error::internal(format!("cannot encode a document origin: {e}")))
}

fn drive<'a>(ctx: &Context<'a>) -> Result<&'a DriveClient> {
    ctx.client
        .ok_or_else(|| Error::internal("a Drive document without a Drive client"))
}

/// Streams a local file into place.
fn copy_file(source: &Path, target: &Path) -> Result<()> {
    let mut input = std::fs::File::open(source).map_err(|e| {
        Error::bad_input(format!(
            "cannot read {} ({e}); check the --source-dir permissions",
            source.display()
        ))
    })?;
    let mut output = shared::atomic::AtomicFile::create(target)?;
    std::io::copy(&mut input, &mut output).map_err(|e| Error::io("write", target, e))?;
    output.commit()
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::internal(format!("a file task failed: {e}")))?
}

/// A temp file beside a target, for a download that is converted before it lands; removed on
/// drop (and swept by the next run if the process is killed).
struct Staging {
    path: PathBuf,
}

impl Staging {
    fn new(target: &Path) -> Result<Staging> {
        let dir = target
            .parent()
            .ok_or_else(|| Error::internal("a target without a directory"))?;
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        let name = format!(
            "{}staging-{:016x}",
            shared::atomic::TEMP_PREFIX,
            fastrand::u64(..)
        );
        Ok(Staging {
            path: dir.join(name),
        })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

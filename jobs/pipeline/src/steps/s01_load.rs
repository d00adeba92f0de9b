//! Step 1: load and verify what the earlier jobs handed over.
//!
//! `data/.ready` (setup) and `vector_ids/.ready` (vectorize) are read and every file they list
//! is verified (size and SHA-256) before anything else happens; the vector record is read only
//! because the vector marker lists it. The result is the run's documents: each indexed file
//! with its path under `data/`, the filename the model cites it by, and its Drive id.

use serde::Serialize;
use shared::inputs::RunInputs;
use shared::layout::Stage;
use shared::markers::Marker;
use shared::records::{DocumentOrigin, VectorRecord};
use shared::roots::Roots;
use shared::{Error, Result};

/// A document the model can search and cite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Document {
    /// The filename file_search reports, hence the one citations name.
    pub filename: String,
    /// Its path relative to the company directory (`data/...`).
    pub path: String,
    /// The Drive id it was downloaded from, if it came from Drive.
    pub drive_id: Option<String>,
    pub sha256: String,
}

/// What step 1 found.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The run id of the upstream markers (or the given one, which must equal it).
    pub run_id: String,
    /// `None` when the data set was empty: the report is written from the profile alone.
    pub vector_store_id: Option<String>,
    /// Indexed documents, in the vector record's order.
    pub documents: Vec<Document>,
    /// Documents setup listed but vectorize could not index.
    pub not_indexed: Vec<String>,
}

pub fn load(roots: &Roots, inputs: &RunInputs) -> Result<Loaded> {
    let slug = inputs.company_slug.as_str();
    let (_, data) = roots.upstream(slug, Stage::Data)?;
    let (vector_dir, vectors) = roots.upstream(slug, Stage::Vectors)?;
    if vectors.run_id != data.run_id {
        return Err(Error::upstream(format!(
            "vector_ids/.ready belongs to run {} but data/.ready to run {}: re-run `vectorize` for this run",
            vectors.run_id, data.run_id
        )));
    }
    if let Some(given) = &inputs.run_id
        && given != &data.run_id
    {
        return Err(Error::upstream(format!(
            "run_id {given} was given but the upstream markers belong to run {}: pass that run_id or none",
            data.run_id
        )));
    }

    let record_path = vector_record_path(&vectors)?;
    let bytes = std::fs::read(vector_dir.join(&record_path))
        .map_err(|e| Error::io("read the vector record", &vector_dir.join(&record_path), e))?;
    let record: VectorRecord = serde_json::from_slice(&bytes).map_err(|e| {
        Error::upstream(format!(
            "{record_path} is not a valid vector record ({e}): re-run `vectorize` with --force"
        ))
    })?;

    let mut documents = Vec::new();
    let mut not_indexed = Vec::new();
    if record.vector_store_id.is_some() {
        for file in &record.files {
            let Some(listed) = data.file(&file.path) else {
                return Err(Error::upstream(format!(
                    "{record_path} lists {} which data/.ready does not list: re-run `vectorize` with --force",
                    file.path
                )));
            };
            if file.status != "completed" {
                not_indexed.push(file.path.clone());
                continue;
            }
            let origin: Option<DocumentOrigin> = serde_json::from_value(listed.origin.clone()).ok();
            documents.push(Document {
                filename: file.filename.clone(),
                path: file.path.clone(),
                drive_id: origin.and_then(|o| o.drive_id),
                sha256: listed.sha256.clone(),
            });
        }
    }
    Ok(Loaded {
        run_id: data.run_id,
        vector_store_id: record.vector_store_id,
        documents,
        not_indexed,
    })
}

/// The vector record the marker vouches for: `vector_ids/vector_<ts>.json`.
fn vector_record_path(marker: &Marker) -> Result<String> {
    let mut records = marker
        .files
        .iter()
        .map(|f| f.path.as_str())
        .filter(|p| p.starts_with("vector_ids/vector_") && p.ends_with(".json"));
    match (records.next(), records.next()) {
        (Some(path), None) => Ok(path.to_string()),
        _ => Err(Error::upstream(
            "vector_ids/.ready must list exactly one vector_ids/vector_<ts>.json: re-run `vectorize` with --force",
        )),
    }
}

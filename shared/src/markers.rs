//! `.ready` markers: how a stage says "done, and here is exactly what I vouch for" (SPEC §4.3).
//!
//! A marker is written LAST and atomically, after every file it lists is in place. A consumer
//! reads only the files a marker lists and verifies each one's size and SHA-256, so it can never
//! act on a half-written or tampered artifact. A marker's `fingerprint` digests the inputs the
//! stage consumed; a producer whose planned fingerprint equals the existing marker's knows the
//! work is already done and skips it (unless `--force`).

use std::io::Read;
use std::path::{Component, Path};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::atomic::write_atomic;
use crate::error::{Error, Result};
use crate::layout::{CompanyDir, Stage};

/// A file a marker vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// `/`-separated, relative to the company directory (e.g. `data/interviews/cto.md`).
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
    /// Where the file came from (Drive id, original name, export format, …), stage-specific.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub origin: Value,
}

impl FileRecord {
    /// Hashes the file at `relative` under `dir`.
    pub fn of(dir: &CompanyDir, relative: &str) -> Result<FileRecord> {
        let (bytes, sha256) = hash_file(&dir.join(relative))?;
        Ok(FileRecord {
            path: relative.to_string(),
            bytes,
            sha256,
            origin: Value::Null,
        })
    }

    pub fn with_origin(mut self, origin: Value) -> FileRecord {
        self.origin = origin;
        self
    }
}

/// What a stage wrote, for whom, and from what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    pub stage: String,
    pub run_id: String,
    pub slug: String,
    pub job: String,
    pub job_version: String,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    /// Digest of the stage's inputs ([`fingerprint`]).
    pub fingerprint: String,
    pub files: Vec<FileRecord>,
    #[serde(default)]
    pub metrics: Map<String, Value>,
    /// Stage-specific facts (e.g. the vector store id, skipped documents).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

impl Marker {
    /// Writes the marker atomically. Call only after every listed file is durably in place.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::internal(format!("cannot encode marker: {e}")))?;
        json.push(b'\n');
        write_atomic(path, &json)
    }

    /// The file record for `path`, if the marker lists it.
    pub fn file(&self, path: &str) -> Option<&FileRecord> {
        self.files.iter().find(|f| f.path == path)
    }

    /// Checks that every listed file exists under `dir` with the recorded size and SHA-256.
    pub fn verify(&self, dir: &CompanyDir, marker_path: &Path) -> Result<()> {
        for record in &self.files {
            if !is_safe_relative(&record.path) {
                return Err(tampered(
                    marker_path,
                    &format!("lists an unsafe path {:?}", record.path),
                ));
            }
            let path = dir.join(&record.path);
            let (bytes, sha256) = hash_file(&path).map_err(|_| {
                tampered(
                    marker_path,
                    &format!("lists {} but it cannot be read", path.display()),
                )
            })?;
            if bytes != record.bytes || sha256 != record.sha256 {
                return Err(tampered(
                    marker_path,
                    &format!(
                        "lists {} with {} bytes sha256 {}, but the file has {bytes} bytes sha256 {sha256}",
                        record.path, record.bytes, record.sha256
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn tampered(marker_path: &Path, what: &str) -> Error {
    Error::upstream(format!(
        "marker {} {what}; the stage's output was changed or is incomplete: re-run the job that \
         wrote it (with --force)",
        marker_path.display()
    ))
}

/// Reads a marker without verifying its files.
pub fn read_marker(path: &Path) -> Result<Marker> {
    let text = std::fs::read(path).map_err(|e| {
        Error::upstream(format!("cannot read marker {}: {e}", path.display())).with_source(e)
    })?;
    serde_json::from_slice(&text).map_err(|e| {
        Error::upstream(format!(
            "marker {} is not a valid marker ({e}); re-run the job that wrote it",
            path.display()
        ))
    })
}

/// Reads a stage's marker from `dir`, checks that it is that stage's, and verifies every file.
/// A missing marker names the path and the job that should have written it.
pub fn read_verified(dir: &CompanyDir, stage: Stage, marker_path: &Path) -> Result<Marker> {
    if !marker_path.exists() {
        return Err(Error::upstream(format!(
            "missing {} marker {}: run the `{}` job first",
            stage.as_str(),
            marker_path.display(),
            stage.job()
        )));
    }
    let marker = read_marker(marker_path)?;
    if marker.stage != stage.as_str() || marker.slug != dir.slug() {
        return Err(tampered(
            marker_path,
            &format!("is for stage {:?} of {:?}", marker.stage, marker.slug),
        ));
    }
    marker.verify(dir, marker_path)?;
    Ok(marker)
}

/// The existing marker at `marker_path` if it records `fingerprint` and its files still verify:
/// the stage is already done and need not be repeated.
pub fn already_done(
    dir: &CompanyDir,
    stage: Stage,
    marker_path: &Path,
    fingerprint: &str,
) -> Option<Marker> {
    read_verified(dir, stage, marker_path)
        .ok()
        .filter(|m| m.fingerprint == fingerprint)
}

/// Streams a file through SHA-256: (size in bytes, lowercase hex digest).
pub fn hash_file(path: &Path) -> Result<(u64, String)> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io("read", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, hex::encode(hasher.finalize())))
}

/// SHA-256 of bytes, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Digest of any serialisable value, independent of map key order: the same inputs always give
/// the same fingerprint.
pub fn fingerprint(value: &impl Serialize) -> String {
    let value = serde_json::to_value(value).unwrap_or(Value::Null);
    let mut canonical = String::new();
    write_canonical(&value, &mut canonical);
    sha256_hex(canonical.as_bytes())
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// A marker path must stay inside the company directory.
fn is_safe_relative(path: &str) -> bool {
    !path.is_empty()
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(dir: &CompanyDir) -> Marker {
        std::fs::create_dir_all(dir.data_dir()).unwrap();
        std::fs::write(dir.join("data/a.md"), "alpha").unwrap();
        Marker {
            stage: "data".into(),
            run_id: "r1".into(),
            slug: dir.slug().into(),
            job: "setup".into(),
            job_version: "0.1.0".into(),
            started: Utc::now(),
            finished: Utc::now(),
            fingerprint: fingerprint(&json!({"a": 1})),
            files: vec![FileRecord::of(dir, "data/a.md").unwrap()],
            metrics: Map::new(),
            details: Value::Null,
        }
    }

    #[test]
    fn round_trip_verify_and_tamper() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CompanyDir::new(tmp.path(), "acme");
        let marker = sample(&dir);
        let path = dir.marker(Stage::Data, "");
        marker.write(&path).unwrap();
        assert_eq!(read_verified(&dir, Stage::Data, &path).unwrap(), marker);
        assert!(already_done(&dir, Stage::Data, &path, &marker.fingerprint).is_some());
        assert!(already_done(&dir, Stage::Data, &path, "other").is_none());

        std::fs::write(dir.join("data/a.md"), "alphA").unwrap();
        let err = read_verified(&dir, Stage::Data, &path).unwrap_err();
        assert_eq!(err.exit_code(), 3);
        assert!(err.to_string().contains("data/a.md"), "{err}");
        assert!(already_done(&dir, Stage::Data, &path, &marker.fingerprint).is_none());
    }

    #[test]
    fn missing_marker_names_path_and_job() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CompanyDir::new(tmp.path(), "acme");
        let path = dir.marker(Stage::Vectors, "");
        let err = read_verified(&dir, Stage::Vectors, &path).unwrap_err();
        assert_eq!(err.exit_code(), 3);
        let msg = err.to_string();
        assert!(
            msg.contains("vector_ids/.ready") && msg.contains("`vectorize`"),
            "{msg}"
        );
    }

    #[test]
    fn unsafe_paths_and_wrong_stage_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CompanyDir::new(tmp.path(), "acme");
        let path = dir.marker(Stage::Data, "");
        let mut marker = sample(&dir);
        marker.files[0].path = "../acme/data/a.md".into();
        marker.write(&path).unwrap();
        assert!(
            read_verified(&dir, Stage::Data, &path)
                .unwrap_err()
                .to_string()
                .contains("unsafe")
        );
        let mut marker = sample(&dir);
        marker.stage = "final".into();
        marker.write(&path).unwrap();
        assert!(read_verified(&dir, Stage::Data, &path).is_err());
        std::fs::write(&path, "{ not json").unwrap();
        assert_eq!(
            read_verified(&dir, Stage::Data, &path)
                .unwrap_err()
                .exit_code(),
            3
        );
    }

    #[test]
    fn fingerprint_ignores_key_order_but_not_values() {
        let a = fingerprint(&json!({"x": 1, "y": {"b": 2, "a": [1, 2]}}));
        let b = fingerprint(&json!({"y": {"a": [1, 2], "b": 2}, "x": 1}));
        let c = fingerprint(&json!({"y": {"a": [2, 1], "b": 2}, "x": 1}));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}

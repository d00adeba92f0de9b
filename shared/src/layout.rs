//! Where every artifact of a run lives in the `/outputs` tree (SPEC §4.2). These names are the
//! user's contract: other tools read them, so they only change with a migration.
//!
//! ```text
//! <root>/<slug>/
//!   debug/submission_<ts>_<run_id>.json
//!   data/<documents…>            data/.ready
//!   vector_ids/vector_<ts>.json  vector_ids/.ready
//!   part_a/report_draft_<slug>_<ts>.md
//!   part_b/report_enhanced_<slug>_<ts>.md
//!   checkpoints/…
//!   final/FINAL_REPORT_<slug>_<ts>.md  final/FINAL_REPORT_<slug>_<ts>.ready
//!   final/upload_receipt_<run_id>.json
//!   .locks/<stage>.lock          (one writer per company and stage)
//! ```

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

/// `<ts>` of the layout: UTC `YYYYmmdd_HHMMSS`.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%d_%H%M%S").to_string()
}

/// The stages that hand work over, each with the job that produces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `data/.ready`, written by `setup`.
    Data,
    /// `vector_ids/.ready`, written by `vectorize`.
    Vectors,
    /// `final/FINAL_REPORT_<slug>_<ts>.ready`, written by `pipeline`.
    Final,
    /// `final/upload_receipt_<run_id>.json`, written by `upload`.
    Upload,
}

impl Stage {
    /// The stage's name as written in its marker.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Data => "data",
            Stage::Vectors => "vector_ids",
            Stage::Final => "final",
            Stage::Upload => "upload",
        }
    }

    /// The job that produces this stage (named in "missing upstream" errors).
    pub fn job(self) -> &'static str {
        match self {
            Stage::Data => "setup",
            Stage::Vectors => "vectorize",
            Stage::Final => "pipeline",
            Stage::Upload => "upload",
        }
    }
}

/// One company's directory under one root. Paths are built here and nowhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyDir {
    root: PathBuf,
    slug: String,
}

impl CompanyDir {
    pub fn new(root: impl Into<PathBuf>, slug: &str) -> Self {
        CompanyDir {
            root: root.into(),
            slug: slug.to_string(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn slug(&self) -> &str {
        &self.slug
    }
    /// `<root>/<slug>`: the base that marker file paths are relative to.
    pub fn path(&self) -> PathBuf {
        self.root.join(&self.slug)
    }
    /// Joins a `/`-separated path relative to the company directory.
    pub fn join(&self, relative: &str) -> PathBuf {
        self.path().join(relative)
    }
    /// The `/`-separated path of `path` relative to the company directory, if it is inside it.
    pub fn relative(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(self.path()).ok()?;
        let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
        parts.map(|p| p.join("/"))
    }

    pub fn debug_dir(&self) -> PathBuf {
        self.join("debug")
    }
    pub fn submission(&self, ts: &str, run_id: &str) -> PathBuf {
        self.debug_dir()
            .join(format!("submission_{ts}_{run_id}.json"))
    }
    pub fn data_dir(&self) -> PathBuf {
        self.join("data")
    }
    pub fn vector_ids_dir(&self) -> PathBuf {
        self.join("vector_ids")
    }
    pub fn vector_record(&self, ts: &str) -> PathBuf {
        self.vector_ids_dir().join(format!("vector_{ts}.json"))
    }
    pub fn part_a(&self, ts: &str) -> PathBuf {
        self.join("part_a")
            .join(format!("report_draft_{}_{ts}.md", self.slug))
    }
    pub fn part_b(&self, ts: &str) -> PathBuf {
        self.join("part_b")
            .join(format!("report_enhanced_{}_{ts}.md", self.slug))
    }
    pub fn checkpoints_dir(&self) -> PathBuf {
        self.join("checkpoints")
    }
    pub fn final_dir(&self) -> PathBuf {
        self.join("final")
    }
    pub fn final_report(&self, ts: &str) -> PathBuf {
        self.final_dir()
            .join(format!("FINAL_REPORT_{}_{ts}.md", self.slug))
    }
    pub fn upload_receipt(&self, run_id: &str) -> PathBuf {
        self.final_dir()
            .join(format!("upload_receipt_{run_id}.json"))
    }
    pub fn lock_file(&self, stage: Stage) -> PathBuf {
        self.join(".locks").join(format!("{}.lock", stage.as_str()))
    }

    /// The marker of a stage. The final marker carries the report's timestamp, so it needs `ts`;
    /// the others have fixed names.
    pub fn marker(&self, stage: Stage, ts: &str) -> PathBuf {
        match stage {
            Stage::Data => self.data_dir().join(".ready"),
            Stage::Vectors => self.vector_ids_dir().join(".ready"),
            Stage::Final => self
                .final_dir()
                .join(format!("FINAL_REPORT_{}_{ts}.ready", self.slug)),
            Stage::Upload => self.upload_receipt(ts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_follow_the_contract() {
        let ts = timestamp(Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap());
        assert_eq!(ts, "20260102_030405");
        let dir = CompanyDir::new("/outputs", "acme");
        let cases = [
            (
                dir.submission(&ts, "r1"),
                "/outputs/acme/debug/submission_20260102_030405_r1.json",
            ),
            (dir.marker(Stage::Data, ""), "/outputs/acme/data/.ready"),
            (
                dir.vector_record(&ts),
                "/outputs/acme/vector_ids/vector_20260102_030405.json",
            ),
            (
                dir.marker(Stage::Vectors, ""),
                "/outputs/acme/vector_ids/.ready",
            ),
            (
                dir.part_a(&ts),
                "/outputs/acme/part_a/report_draft_acme_20260102_030405.md",
            ),
            (
                dir.part_b(&ts),
                "/outputs/acme/part_b/report_enhanced_acme_20260102_030405.md",
            ),
            (
                dir.final_report(&ts),
                "/outputs/acme/final/FINAL_REPORT_acme_20260102_030405.md",
            ),
            (
                dir.marker(Stage::Final, &ts),
                "/outputs/acme/final/FINAL_REPORT_acme_20260102_030405.ready",
            ),
            (
                dir.upload_receipt("r1"),
                "/outputs/acme/final/upload_receipt_r1.json",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, PathBuf::from(want));
        }
        assert_eq!(
            dir.relative(&dir.join("data/a/b.md")).as_deref(),
            Some("data/a/b.md")
        );
        assert_eq!(dir.relative(Path::new("/elsewhere/x")), None);
    }
}

//! The roots a job reads from and writes to (SPEC §4.4).
//!
//! Locally and under compose every job shares one tree: `--outputs` is also the only input root.
//! On Paperspace each job owns an output volume and sees upstream volumes read-only under
//! `/inputs/<name>`. Either way a job finds upstream stages by searching its input roots in order,
//! and builds every path it writes from the outputs root, which may never lie inside an input
//! root: the type offers no way to write into one.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::layout::{CompanyDir, Stage};
use crate::markers::{Marker, read_marker, read_verified};

/// `--outputs` and `--inputs`, shared by every job.
#[derive(clap::Args, Debug, Clone)]
pub struct RootArgs {
    /// Writable root of the outputs tree.
    #[arg(
        long,
        env = "OUTPUTS_ROOT",
        default_value = "/outputs",
        value_name = "DIR"
    )]
    pub outputs: PathBuf,
    /// Read-only roots searched for upstream stages, in order (repeatable; default: the outputs
    /// root). On Paperspace: `--inputs /inputs/<volume>` per upstream job.
    #[arg(
        long = "inputs",
        env = "INPUT_ROOTS",
        value_delimiter = ',',
        value_name = "DIR"
    )]
    pub inputs: Vec<PathBuf>,
}

/// Checked roots: an outputs root that exists and is writable, and the input roots.
#[derive(Debug, Clone)]
pub struct Roots {
    outputs: PathBuf,
    inputs: Vec<PathBuf>,
}

impl Roots {
    /// Creates the outputs root if needed, proves it is writable, and refuses an outputs root
    /// inside a distinct input root.
    pub fn open(args: &RootArgs) -> Result<Roots> {
        let roots = Roots::plan(args)?;
        std::fs::create_dir_all(&roots.outputs)
            .map_err(|e| Error::io("create outputs root", &roots.outputs, e))?;
        let probe = tempfile::Builder::new()
            .prefix(crate::atomic::TEMP_PREFIX)
            .tempfile_in(&roots.outputs)
            .map_err(|e| Error::io("write into outputs root", &roots.outputs, e))?;
        drop(probe);
        Ok(roots)
    }

    /// The same checks as [`Roots::open`] without touching the disk (for `--dry-run`).
    pub fn plan(args: &RootArgs) -> Result<Roots> {
        let outputs = absolute(&args.outputs)?;
        let inputs = if args.inputs.is_empty() {
            vec![outputs.clone()]
        } else {
            args.inputs
                .iter()
                .map(|p| absolute(p))
                .collect::<Result<Vec<_>>>()?
        };
        for input in &inputs {
            if input != &outputs && outputs.starts_with(input) {
                return Err(Error::bad_input(format!(
                    "outputs root {} lies inside input root {}: a job must never write into an \
                     input; pass an --outputs outside every --inputs",
                    outputs.display(),
                    input.display()
                )));
            }
        }
        Ok(Roots { outputs, inputs })
    }

    pub fn outputs(&self) -> &Path {
        &self.outputs
    }
    pub fn inputs(&self) -> &[PathBuf] {
        &self.inputs
    }

    /// The company directory this job writes to.
    pub fn output_dir(&self, slug: &str) -> CompanyDir {
        CompanyDir::new(&self.outputs, slug)
    }

    /// The company directory, in the first input root that has `relative` under it.
    pub fn find(&self, slug: &str, relative: &str) -> Option<CompanyDir> {
        self.inputs
            .iter()
            .map(|root| CompanyDir::new(root, slug))
            .find(|dir| dir.join(relative).exists())
    }

    /// Finds and verifies an upstream stage with a fixed marker name (`data`, `vector_ids`).
    /// The error for a missing marker lists every path searched and the job to run.
    pub fn upstream(&self, slug: &str, stage: Stage) -> Result<(CompanyDir, Marker)> {
        let relative = match stage {
            Stage::Data => "data/.ready",
            Stage::Vectors => "vector_ids/.ready",
            Stage::Final | Stage::Upload => {
                return Err(Error::internal(format!(
                    "stage {} has no fixed marker name",
                    stage.as_str()
                )));
            }
        };
        match self.find(slug, relative) {
            Some(dir) => {
                let marker = read_verified(&dir, stage, &dir.join(relative))?;
                Ok((dir, marker))
            }
            None => Err(self.missing(slug, stage, relative, "")),
        }
    }

    /// Finds and verifies the final marker of `run_id` (or, without one, the most recently
    /// finished run's, by the time recorded in the marker).
    pub fn upstream_final(
        &self,
        slug: &str,
        run_id: Option<&str>,
    ) -> Result<(CompanyDir, Marker, PathBuf)> {
        let prefix = format!("FINAL_REPORT_{slug}_");
        let mut best: Option<(CompanyDir, Marker, PathBuf)> = None;
        for root in &self.inputs {
            let dir = CompanyDir::new(root, slug);
            let Ok(entries) = std::fs::read_dir(dir.final_dir()) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if !(name.starts_with(&prefix) && name.ends_with(".ready")) {
                    continue;
                }
                let Ok(marker) = read_marker(&entry.path()) else {
                    continue;
                };
                if run_id.is_some_and(|id| id != marker.run_id) {
                    continue;
                }
                if best
                    .as_ref()
                    .is_none_or(|(_, b, _)| marker.finished > b.finished)
                {
                    best = Some((dir.clone(), marker, entry.path()));
                }
            }
        }
        let relative = format!("final/{prefix}<ts>.ready");
        let Some((dir, _, path)) = best else {
            let what = run_id
                .map(|id| format!(" for run {id}"))
                .unwrap_or_default();
            return Err(self.missing(slug, Stage::Final, &relative, &what));
        };
        let marker = read_verified(&dir, Stage::Final, &path)?;
        Ok((dir, marker, path))
    }

    fn missing(&self, slug: &str, stage: Stage, relative: &str, what: &str) -> Error {
        let searched: Vec<String> = self
            .inputs
            .iter()
            .map(|r| {
                CompanyDir::new(r, slug)
                    .join(relative)
                    .display()
                    .to_string()
            })
            .collect();
        Error::upstream(format!(
            "missing {} marker{what} (looked for {}): run the `{}` job first",
            stage.as_str(),
            searched.join(", "),
            stage.job()
        ))
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path)
        .map_err(|e| Error::bad_input(format!("invalid path {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::markers::{FileRecord, fingerprint};
    use std::os::unix::fs::PermissionsExt;

    fn args(outputs: &Path, inputs: &[&Path]) -> RootArgs {
        RootArgs {
            outputs: outputs.into(),
            inputs: inputs.iter().map(|p| p.to_path_buf()).collect(),
        }
    }

    fn write_data_stage(root: &Path) -> Marker {
        let dir = CompanyDir::new(root, "acme");
        std::fs::create_dir_all(dir.data_dir()).unwrap();
        std::fs::write(dir.join("data/doc.md"), "hello").unwrap();
        let marker = Marker {
            stage: "data".into(),
            run_id: "r1".into(),
            slug: "acme".into(),
            job: "setup".into(),
            job_version: "test".into(),
            started: chrono::Utc::now(),
            finished: chrono::Utc::now(),
            fingerprint: fingerprint(&1),
            files: vec![FileRecord::of(&dir, "data/doc.md").unwrap()],
            metrics: Default::default(),
            details: Default::default(),
        };
        marker.write(&dir.marker(Stage::Data, "")).unwrap();
        marker
    }

    #[test]
    fn same_tree_by_default() {
        let tmp = tempfile::tempdir().unwrap();
        let roots = Roots::open(&args(tmp.path(), &[])).unwrap();
        assert_eq!(roots.inputs(), &[tmp.path().to_path_buf()]);
        write_data_stage(tmp.path());
        let (dir, marker) = roots.upstream("acme", Stage::Data).unwrap();
        assert_eq!(dir.root(), tmp.path());
        assert_eq!(marker.run_id, "r1");
    }

    #[test]
    fn reads_upstream_from_read_only_input_and_writes_only_outputs() {
        let tmp = tempfile::tempdir().unwrap();
        let input = tmp.path().join("inputs/setup");
        let outputs = tmp.path().join("outputs/vectorize");
        write_data_stage(&input);
        for dir in [input.join("acme/data"), input.join("acme"), input.clone()] {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        }
        let roots = Roots::open(&args(&outputs, &[&input])).unwrap();
        let (dir, _) = roots.upstream("acme", Stage::Data).unwrap();
        assert_eq!(dir.root(), input);
        let out = roots.output_dir("acme");
        assert_eq!(out.root(), outputs);
        crate::atomic::write_atomic(&out.vector_record("t"), b"{}").unwrap();
        // Nothing could be written into the read-only input (root can bypass permissions, so
        // check the tree instead of relying on EACCES).
        let mut names: Vec<_> = std::fs::read_dir(input.join("acme"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, vec![std::ffi::OsString::from("data")]);
        std::fs::set_permissions(&input, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn outputs_inside_an_input_root_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let err =
            Roots::plan(&args(&tmp.path().join("in/out"), &[&tmp.path().join("in")])).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string().contains("never write into an input"),
            "{err}"
        );
    }

    #[test]
    fn missing_upstream_lists_searched_paths_and_job() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        let b = tmp.path().join("b");
        let roots = Roots::open(&args(&tmp.path().join("out"), &[&a, &b])).unwrap();
        let msg = roots
            .upstream("acme", Stage::Vectors)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(&a.join("acme/vector_ids/.ready").display().to_string()),
            "{msg}"
        );
        assert!(
            msg.contains(&b.join("acme/vector_ids/.ready").display().to_string()),
            "{msg}"
        );
        assert!(msg.contains("`vectorize`"), "{msg}");
        let msg = roots
            .upstream_final("acme", Some("r9"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("`pipeline`") && msg.contains("r9"), "{msg}");
    }

    #[test]
    fn unwritable_outputs_is_a_storage_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let err = Roots::open(&args(&file.join("sub"), &[])).unwrap_err();
        assert_eq!(err.exit_code(), 5, "{err}");
    }
}

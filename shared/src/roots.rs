//! The roots a job reads from and writes to (SPEC §4.4).
//!
//! Locally and under compose every job shares one tree: `--outputs` is also the only input root.
//! On Paperspace each job owns an output volume and sees upstream volumes read-only under
//! `/inputs/<name>`. Either way a job finds upstream stages by searching its input roots in order,
//! and builds every path it writes from the outputs root, which may never lie inside an input
//! root: the type offers no way to write into one.

use std::path::{Component, Path, PathBuf};

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

    /// The same checks as [`Roots::open`] without writing anything (for `--dry-run`).
    ///
    /// Roots are compared after resolving symlinks and `..`, so no spelling of a path can put
    /// the outputs root inside an input root or an input root inside the outputs root. An input
    /// root equal to the outputs root is the shared local tree (the default) and is allowed.
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
        let real_outputs = resolved(&outputs);
        for input in &inputs {
            let real_input = resolved(input);
            if real_input == real_outputs {
                continue;
            }
            if real_outputs.starts_with(&real_input) {
                return Err(Error::bad_input(format!(
                    "outputs root {} lies inside input root {}: a job must never write into an \
                     input; pass an --outputs outside every --inputs",
                    outputs.display(),
                    input.display()
                )));
            }
            if real_input.starts_with(&real_outputs) {
                return Err(Error::bad_input(format!(
                    "input root {} lies inside outputs root {}: a job must never write into an \
                     input; pass --inputs outside the --outputs tree",
                    input.display(),
                    outputs.display()
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

/// `path` with symlinks and `..` resolved: its longest existing ancestor is canonicalised and
/// the rest (which does not exist yet, so holds no symlink) is applied lexically.
fn resolved(path: &Path) -> PathBuf {
    for ancestor in path.ancestors() {
        let Ok(mut real) = ancestor.canonicalize() else {
            continue;
        };
        let rest = path.strip_prefix(ancestor).unwrap_or(Path::new(""));
        for component in rest.components() {
            match component {
                Component::ParentDir => {
                    real.pop();
                }
                Component::Normal(name) => real.push(name),
                Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            }
        }
        return real;
    }
    path.to_path_buf()
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

    /// Makes directories read-only for a test, and writable again when dropped so that the
    /// temporary directory can be removed even when the test fails.
    struct ReadOnly(Vec<PathBuf>);

    impl ReadOnly {
        fn new(dirs: &[PathBuf]) -> ReadOnly {
            for dir in dirs {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
            }
            ReadOnly(dirs.to_vec())
        }
    }

    impl Drop for ReadOnly {
        fn drop(&mut self) {
            for dir in &self.0 {
                let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
            }
        }
    }

    /// A real write probe: root ignores permission bits, so 0555 alone proves nothing.
    fn can_write(dir: &Path) -> bool {
        tempfile::tempfile_in(dir).is_ok()
    }

    /// A data stage in `root`, with every directory of it read-only.
    fn read_only_data_stage(root: &Path) -> ReadOnly {
        write_data_stage(root);
        ReadOnly::new(&[
            root.join("acme/data"),
            root.join("acme"),
            root.to_path_buf(),
        ])
    }

    #[test]
    fn reads_upstream_from_a_read_only_input_root() {
        let tmp = tempfile::tempdir().unwrap();
        let input = tmp.path().join("inputs/setup");
        let outputs = tmp.path().join("outputs/vectorize");
        let _read_only = read_only_data_stage(&input);
        let roots = Roots::open(&args(&outputs, &[&input])).unwrap();
        let (dir, marker) = roots.upstream("acme", Stage::Data).unwrap();
        assert_eq!(dir.root(), input);
        assert_eq!(marker.run_id, "r1");
        assert_eq!(roots.output_dir("acme").root(), outputs);
    }

    #[test]
    fn outputs_nested_in_a_read_only_input_root_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let input = tmp.path().join("in");
        std::fs::create_dir_all(tmp.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(&input, tmp.path().join("link")).unwrap();
        let _read_only = read_only_data_stage(&input);
        let nested = [
            input.join("acme/out"),
            tmp.path().join("elsewhere/../in/out"),
            tmp.path().join("link/out"),
            tmp.path().join("link/acme/data/../../out"),
        ];
        for outputs in &nested {
            let err = Roots::open(&args(outputs, &[&input])).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{}: {err}", outputs.display());
            assert!(
                err.to_string().contains("never write into an input"),
                "{err}"
            );
        }
        // The input root spelled through the symlink, the outputs root spelled directly.
        let err = Roots::open(&args(&input.join("out"), &[&tmp.path().join("link")])).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{err}");
        // The refusal comes before anything is created (root could have written there).
        assert!(!input.join("out").exists() && !input.join("acme/out").exists());
    }

    #[test]
    fn an_input_root_inside_the_outputs_root_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let outputs = tmp.path().join("all");
        let err = Roots::plan(&args(&outputs, &[&outputs.join("setup")])).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{err}");
        assert!(
            err.to_string().contains("lies inside outputs root"),
            "{err}"
        );
    }

    #[test]
    fn an_input_root_equal_to_the_outputs_root_is_the_shared_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let tree = tmp.path().join("tree");
        write_data_stage(&tree);
        std::os::unix::fs::symlink(&tree, tmp.path().join("link")).unwrap();
        let other = tmp.path().join("other");
        let roots = Roots::open(&args(
            &tmp.path().join("link"),
            &[&tree.join("acme/.."), &other],
        ))
        .unwrap();
        let (dir, _) = roots.upstream("acme", Stage::Data).unwrap();
        assert_eq!(dir.root(), tree.join("acme/.."));
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
    fn unwritable_outputs_root_is_a_storage_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let read_only = tmp.path().join("read-only");
        std::fs::create_dir(&read_only).unwrap();
        let _read_only = ReadOnly::new(std::slice::from_ref(&read_only));
        // Paths no one can write, not even root: below a regular file, and procfs.
        let mut unwritable = vec![file.join("sub"), file.clone()];
        if Path::new("/proc/self").is_dir() {
            unwritable.push(PathBuf::from("/proc"));
        }
        if !can_write(&read_only) {
            unwritable.push(read_only.clone());
        }
        for outputs in &unwritable {
            let err = Roots::open(&args(outputs, &[])).unwrap_err();
            assert_eq!(err.exit_code(), 5, "{}: {err}", outputs.display());
            assert!(err.to_string().contains("outputs root"), "{err}");
        }
    }
}

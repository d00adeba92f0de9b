//! What a run indexes: the documents `data/.ready` lists, each with the filename it is uploaded
//! under, checked against OpenAI's limits BEFORE anything is uploaded (SPEC §5.2, §8).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use shared::layout::CompanyDir;
use shared::markers::Marker;
use shared::{Error, Result};

/// OpenAI's per-file upload limit.
pub const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// Extensions the `file_search` tool indexes (OpenAI's "supported files" table). Tables (csv,
/// jsonl, xlsx) and images are not among them: setup converts tables to Markdown.
const INDEXABLE_EXTENSIONS: &[&str] = &[
    "c", "cpp", "cs", "css", "doc", "docx", "go", "html", "java", "js", "json", "md", "pdf", "php",
    "pptx", "py", "rb", "sh", "tex", "ts", "txt",
];

/// One document to index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Document {
    /// Relative to the company directory (`data/...`).
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
    /// The name it is uploaded under, unique within the run: model citations name it.
    pub filename: String,
}

/// The documents of a run, in the marker's order.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub documents: Vec<Document>,
}

impl Plan {
    /// The documents under `data/` that the verified data marker lists (not the submission file
    /// it also vouches for). Every unusable document is named in one error.
    pub fn from_marker(data_dir: &CompanyDir, marker: &Marker) -> Result<Plan> {
        let listed: Vec<_> = marker
            .files
            .iter()
            .filter(|f| f.path.starts_with("data/"))
            .collect();
        let mut refused = Vec::new();
        for file in &listed {
            if let Some(reason) = refusal(&file.path, file.bytes) {
                refused.push(format!("{} ({reason})", file.path));
            }
        }
        if !refused.is_empty() {
            return Err(Error::bad_input(format!(
                "{} document(s) in {} cannot be indexed by OpenAI file_search: {}; remove or convert them \
                 (indexable: .{}; at most 512 MB each) and re-run setup",
                refused.len(),
                data_dir.data_dir().display(),
                refused.join(", "),
                INDEXABLE_EXTENSIONS.join(" .")
            )));
        }
        let names = upload_names(listed.iter().map(|f| f.path.as_str()))?;
        let documents = listed
            .iter()
            .map(|f| Document {
                path: f.path.clone(),
                bytes: f.bytes,
                sha256: f.sha256.clone(),
                filename: names[&f.path].clone(),
            })
            .collect();
        Ok(Plan { documents })
    }

    pub fn total_bytes(&self) -> u64 {
        self.documents.iter().map(|d| d.bytes).sum()
    }

    /// Digest of what is indexed (paths, contents, upload names): equal digests mean the same
    /// vector store can serve.
    pub fn data_fingerprint(&self) -> String {
        shared::markers::fingerprint(&self.documents)
    }
}

/// Why a document cannot be uploaded, if it cannot.
fn refusal(path: &str, bytes: u64) -> Option<String> {
    let extension = path
        .rsplit_once('/')
        .map_or(path, |(_, name)| name)
        .rsplit_once('.')
        .map(|(_, e)| e);
    let indexable =
        extension.is_some_and(|e| INDEXABLE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
    if !indexable {
        let kind = extension.map_or("no extension".to_string(), |e| format!(".{e}"));
        return Some(format!("type {kind} is not indexable"));
    }
    if bytes > MAX_FILE_BYTES {
        return Some(format!("{bytes} bytes, over OpenAI's 512 MB limit"));
    }
    if bytes == 0 {
        return Some("empty".to_string());
    }
    None
}

/// Upload names: the base name when it is unique in the run, else the path under `data/` with
/// `/` replaced by `__` (so `interviews/cto.md` and `board/cto.md` stay distinguishable).
fn upload_names<'a>(
    paths: impl Iterator<Item = &'a str> + Clone,
) -> Result<BTreeMap<String, String>> {
    let base = |path: &'a str| path.rsplit_once('/').map_or(path, |(_, name)| name);
    let mut base_counts: BTreeMap<&str, usize> = BTreeMap::new();
    for path in paths.clone() {
        *base_counts.entry(base(path)).or_default() += 1;
    }
    let mut names = BTreeMap::new();
    let mut taken = BTreeSet::new();
    for path in paths {
        let name = if base_counts[base(path)] == 1 {
            base(path).to_string()
        } else {
            path.strip_prefix("data/")
                .unwrap_or(path)
                .replace('/', "__")
        };
        if !taken.insert(name.clone()) {
            return Err(Error::bad_input(format!(
                "two documents would be uploaded as {name:?} (one of them is {path}): rename one and re-run setup"
            )));
        }
        names.insert(path.to_string(), name);
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_names_are_kept_unless_they_collide() {
        let names = upload_names(
            [
                "data/a.md",
                "data/x/cto.md",
                "data/y/z/cto.md",
                "data/b.pdf",
            ]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(names["data/a.md"], "a.md");
        assert_eq!(names["data/b.pdf"], "b.pdf");
        assert_eq!(names["data/x/cto.md"], "x__cto.md");
        assert_eq!(names["data/y/z/cto.md"], "y__z__cto.md");
        let err = upload_names(["data/x__cto.md", "data/x/cto.md", "data/cto.md"].into_iter())
            .unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn unindexable_types_oversized_and_empty_files_are_refused() {
        assert_eq!(refusal("data/notes.MD", 10), None);
        assert_eq!(refusal("data/deck.pptx", MAX_FILE_BYTES), None);
        assert!(refusal("data/table.csv", 10).unwrap().contains(".csv"));
        assert!(refusal("data/rows.jsonl", 10).is_some());
        assert!(refusal("data/book.xlsx", 10).is_some());
        assert!(refusal("data/README", 10).unwrap().contains("no extension"));
        assert!(
            refusal("data/big.pdf", MAX_FILE_BYTES + 1)
                .unwrap()
                .contains("512 MB")
        );
        assert!(refusal("data/empty.txt", 0).is_some());
    }
}

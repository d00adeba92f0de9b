//! From a source listing to the `data/` layout: what each document becomes, under which name,
//! and which documents are skipped (and why).
//!
//! Names are decided here, before anything is written, so they depend only on the listing: the
//! same Drive folder always gives the same `data/` tree, which is what makes re-runs reuse files.

use std::collections::{HashMap, HashSet};

use shared::records::{DocumentOrigin, SkippedDocument};

use crate::names::{dedupe, sanitize, split_extension};
use crate::preprocess::{Treatment, extension_for_mime, treatment};
use crate::source::{Content, Document, Listing, ROOT};

/// OpenAI's per-file limit for file_search.
pub const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;

const DOC_MIME: &str = "application/vnd.google-apps.document";
const SHEET_MIME: &str = "application/vnd.google-apps.spreadsheet";
const SLIDES_MIME: &str = "application/vnd.google-apps.presentation";
const XLSX_MIME: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const DOCX_MIME: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/// One way to export a Google-native file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportFormat {
    pub mime: &'static str,
    /// Extension of the file written to `data/`.
    pub ext: &'static str,
    /// Set when the export is a table to convert (the written file is then Markdown).
    pub convert: Option<Treatment>,
}

/// How a document's content reaches `data/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    /// Downloaded or copied as it is.
    AsIs,
    /// Downloaded or copied, then converted to Markdown.
    Table(Treatment),
    /// A Google-native file: exported in the first format that fits under Drive's export cap.
    Export(Vec<ExportFormat>),
}

/// A document with its place in `data/`.
#[derive(Debug, Clone)]
pub struct Planned {
    pub document: Document,
    pub fetch: Fetch,
    /// Company-relative target per candidate format (one for `AsIs`/`Table`; one per export
    /// format, all with the same stem).
    pub targets: Vec<String>,
    pub origin: DocumentOrigin,
}

/// Everything setup will write, and what it will not.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub documents: Vec<Planned>,
    pub skipped: Vec<SkippedDocument>,
    /// Folders and documents whose name was sanitised or numbered: (source path, path under
    /// `data/`), sorted by source path.
    pub renamed: Vec<(String, String)>,
}

/// The export formats for a Google-native type, best first; `None` for types that cannot be
/// exported into anything file_search indexes (forms, drawings, sites, …).
fn export_formats(mime: &str) -> Option<Vec<ExportFormat>> {
    let format = |mime, ext, convert| ExportFormat { mime, ext, convert };
    match mime {
        DOC_MIME => Some(vec![
            format("text/markdown", ".md", None),
            format(DOCX_MIME, ".docx", None),
            format("text/plain", ".txt", None),
        ]),
        SLIDES_MIME => Some(vec![
            format("application/pdf", ".pdf", None),
            format("text/plain", ".txt", None),
        ]),
        SHEET_MIME => Some(vec![
            format(XLSX_MIME, ".md", Some(Treatment::Workbook)),
            format("text/csv", ".md", Some(Treatment::Delimited(b','))),
        ]),
        _ => None,
    }
}

/// Decides the fetch, the output name (before de-duplication) or the skip reason of a document.
fn classify(doc: &Document) -> Result<(Fetch, Vec<String>), String> {
    let mime = match &doc.content {
        Content::Drive(item) => Some(item.mime_type.as_str()),
        Content::Local(_) => None,
    };
    if let Some(mime) = mime.filter(|m| m.starts_with("application/vnd.google-apps.")) {
        let kind = mime.trim_start_matches("application/vnd.google-apps.");
        let formats = export_formats(mime).ok_or_else(|| {
            format!("unsupported type: Google {kind} files cannot be exported for indexing")
        })?;
        let base = sanitize(&doc.name);
        let names = formats.iter().map(|f| format!("{base}{}", f.ext)).collect();
        return Ok((Fetch::Export(formats), names));
    }
    if doc.size == Some(0) {
        return Err("empty file (0 bytes)".to_string());
    }
    if doc.size.is_some_and(|s| s > MAX_FILE_BYTES) {
        return Err("larger than OpenAI's 512 MB per-file limit; split or compress it".to_string());
    }
    let safe = sanitize(&doc.name);
    let (safe, how) = match treatment(&safe) {
        Some(how) => (safe, how),
        None => {
            let added = mime
                .and_then(extension_for_mime)
                .map(|ext| format!("{safe}{ext}"));
            match added.as_deref().and_then(treatment) {
                Some(how) => (added.unwrap_or_default(), how),
                None => {
                    let (_, ext) = split_extension(&doc.name);
                    let what = if ext.is_empty() {
                        "files without an extension".to_string()
                    } else {
                        format!("{ext} files")
                    };
                    return Err(format!("unsupported type: file_search cannot index {what}"));
                }
            }
        }
    };
    Ok(match how {
        Treatment::PassThrough => (Fetch::AsIs, vec![safe]),
        table => (Fetch::Table(table), vec![format!("{safe}.md")]),
    })
}

/// Lays out `listing` under `data/`: sanitised, de-duplicated names; folders as directories.
pub fn plan(listing: &Listing, source: &str) -> Plan {
    let mut plan = Plan::default();
    let mut classified: Vec<(Document, Fetch, Vec<String>)> = Vec::new();
    for doc in &listing.documents {
        match classify(doc) {
            Ok((fetch, names)) => classified.push((doc.clone(), fetch, names)),
            Err(reason) => plan.skipped.push(SkippedDocument {
                original_path: doc.original_path.clone(),
                drive_id: drive_id(doc),
                reason,
            }),
        }
    }

    // Folders and documents share one namespace per parent folder.
    let mut by_parent: HashMap<&str, Vec<(String, String)>> = HashMap::new();
    for folder in &listing.folders {
        by_parent
            .entry(folder.parent.as_str())
            .or_default()
            .push((folder.id.clone(), sanitize(&folder.name)));
    }
    for (doc, _, names) in &classified {
        by_parent
            .entry(doc.parent.as_str())
            .or_default()
            .push((doc.id.clone(), names[0].clone()));
    }
    let mut final_names: HashMap<String, String> = HashMap::new();
    for entries in by_parent.values() {
        for ((id, _), name) in entries.iter().zip(dedupe(entries)) {
            final_names.insert(id.clone(), name);
        }
    }
    let mut dirs: HashMap<String, String> = HashMap::from([(ROOT.to_string(), "data".to_string())]);
    // Source paths of folders; listings name a parent before its children.
    let mut sources: HashMap<String, String> = HashMap::new();
    for folder in &listing.folders {
        let parent = dirs
            .get(&folder.parent)
            .cloned()
            .unwrap_or_else(|| "data".to_string());
        let name = final_names
            .get(&folder.id)
            .cloned()
            .unwrap_or_else(|| sanitize(&folder.name));
        let source_path = match sources.get(&folder.parent) {
            Some(parent) => format!("{parent}/{}", folder.name),
            None => folder.name.clone(),
        };
        if name != folder.name {
            plan.renamed.push((
                source_path.clone(),
                data_relative(&format!("{parent}/{name}")),
            ));
        }
        sources.insert(folder.id.clone(), source_path);
        dirs.insert(folder.id.clone(), format!("{parent}/{name}"));
    }

    let mut taken: HashSet<String> = HashSet::new();
    for (doc, _, _) in &classified {
        let dir = &dirs[doc.parent.as_str()];
        taken.insert(format!("{dir}/{}", final_names[&doc.id]).to_lowercase());
    }
    for (doc, fetch, names) in classified {
        let dir = dirs
            .get(&doc.parent)
            .cloned()
            .unwrap_or_else(|| "data".to_string());
        let primary = final_names[&doc.id].clone();
        // Extensions added for a conversion or an export are not a rename; a sanitised or
        // numbered name is.
        if sanitize(&doc.name) != doc.name || primary != names[0] {
            plan.renamed.push((
                doc.original_path.clone(),
                data_relative(&format!("{dir}/{primary}")),
            ));
        }
        let (stem, primary_ext) = split_extension(&primary);
        let mut targets = vec![format!("{dir}/{primary}")];
        for name in names.iter().skip(1) {
            let (_, ext) = split_extension(name);
            let mut target = format!("{dir}/{stem}{ext}");
            // A fallback format must not land on another document's name.
            if ext != primary_ext && taken.contains(&target.to_lowercase()) {
                target = format!("{dir}/{stem} (export){ext}");
            }
            targets.push(target);
        }
        let origin = origin(&doc, source);
        plan.documents.push(Planned {
            document: doc,
            fetch,
            targets,
            origin,
        });
    }
    plan.documents
        .sort_by(|a, b| a.targets[0].cmp(&b.targets[0]));
    plan.skipped
        .sort_by(|a, b| a.original_path.cmp(&b.original_path));
    plan.renamed.sort();
    plan
}

/// `data/a/b.md` → `a/b.md`: paths in rename warnings are relative to the source and to `data/`.
fn data_relative(path: &str) -> String {
    path.strip_prefix("data/").unwrap_or(path).to_string()
}

fn drive_id(doc: &Document) -> Option<String> {
    match &doc.content {
        Content::Drive(item) => Some(item.id.clone()),
        Content::Local(_) => None,
    }
}

fn origin(doc: &Document, source: &str) -> DocumentOrigin {
    let (mime_type, modified_time, md5_checksum) = match &doc.content {
        Content::Drive(item) => (
            Some(item.mime_type.clone()),
            item.modified_time.clone(),
            item.md5_checksum.clone(),
        ),
        Content::Local(_) => (None, None, None),
    };
    DocumentOrigin {
        source: source.to_string(),
        original_name: doc.name.clone(),
        original_path: doc.original_path.clone(),
        drive_id: drive_id(doc),
        mime_type,
        modified_time,
        md5_checksum,
        export_format: None,
        sheet: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Folder;
    use std::path::PathBuf;

    fn local(id: &str, parent: &str, name: &str, size: u64) -> Document {
        Document {
            id: id.into(),
            parent: parent.into(),
            name: name.into(),
            original_path: id.into(),
            size: Some(size),
            content: Content::Local(PathBuf::from(id)),
        }
    }

    #[test]
    fn layout_keeps_folders_dedupes_and_skips_with_reasons() {
        let listing = Listing {
            folders: vec![
                Folder {
                    id: "Interviews".into(),
                    parent: ROOT.into(),
                    name: "Interviews".into(),
                },
                Folder {
                    id: "Q1:Q2".into(),
                    parent: ROOT.into(),
                    name: "Q1:Q2".into(),
                },
            ],
            documents: vec![
                local("Interviews/a.md", "Interviews", "a.md", 5),
                local("b/report.pdf", ROOT, "report.pdf", 5),
                local("a/report.pdf", ROOT, "report.pdf", 5),
                local("metrics.csv", ROOT, "metrics.csv", 5),
                local("empty.txt", ROOT, "empty.txt", 0),
                local("photo.jpg", ROOT, "photo.jpg", 5),
                local("CON", ROOT, "CON", 5),
                local("video.pdf", ROOT, "video.pdf", MAX_FILE_BYTES + 1),
            ],
        };
        let plan = plan(&listing, "local");
        let targets: Vec<&str> = plan
            .documents
            .iter()
            .map(|p| p.targets[0].as_str())
            .collect();
        assert_eq!(
            targets,
            [
                "data/Interviews/a.md",
                "data/metrics.csv.md",
                "data/report (2).pdf",
                "data/report.pdf"
            ]
        );
        assert_eq!(plan.documents[3].origin.original_path, "a/report.pdf");
        // b/report.pdf sorts after a/report.pdf by id, so it is the numbered one; metrics.csv
        // only gains the `.md` of its conversion, which is no rename.
        assert_eq!(
            plan.renamed,
            [
                ("Q1:Q2".to_string(), "Q1_Q2".to_string()),
                ("b/report.pdf".to_string(), "report (2).pdf".to_string())
            ]
        );
        let skipped: Vec<(&str, &str)> = plan
            .skipped
            .iter()
            .map(|s| (s.original_path.as_str(), s.reason.as_str()))
            .collect();
        assert_eq!(skipped.len(), 4);
        assert!(
            skipped[0].0 == "CON" && skipped[0].1.contains("without an extension"),
            "{skipped:?}"
        );
        assert!(skipped[1].1.contains("0 bytes"));
        assert!(skipped[2].1.contains(".jpg"));
        assert!(
            skipped[3].0 == "video.pdf" && skipped[3].1.contains("512 MB"),
            "{skipped:?}"
        );
    }
}

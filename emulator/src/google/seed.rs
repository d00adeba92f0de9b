//! Seeding the Drive tree from a local folder, following the naming convention of
//! `emulator/SEEDING.md`: name suffixes turn files into Google Docs, Sheets and Slides, and
//! folders into a shared drive, an unshared, a read-only or a trashed folder.

use std::io;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::tree::{
    Access, DOC_MIME, DriveFile, FOLDER_MIME, SHEET_MIME, SLIDES_MIME, drive_id_from,
};

/// The items made from one local folder.
pub(crate) struct Seeded {
    pub root_id: String,
    pub files: Vec<DriveFile>,
}

/// What the enclosing folders impose on an item.
#[derive(Clone)]
struct Inherited {
    access: Access,
    drive_id: Option<String>,
    trashed: bool,
}

/// File name endings that make Google-native files: (ending, native MIME type).
const NATIVE_ENDINGS: [(&str, &str); 4] = [
    (".gdoc.md", DOC_MIME),
    (".gdoc.txt", DOC_MIME),
    (".gsheet.xlsx", SHEET_MIME),
    (".gslides.pdf", SLIDES_MIME),
];
const TRASHED_MARK: &str = ".trashed";

pub(crate) fn read_tree(dir: &Path) -> io::Result<Seeded> {
    let metadata = std::fs::metadata(dir)?;
    if !metadata.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a directory", dir.display()),
        ));
    }
    let dir_name = dir
        .canonicalize()?
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "seed".to_string());
    let mut files = Vec::new();
    let inherited = Inherited {
        access: Access::Writable,
        drive_id: None,
        trashed: false,
    };
    let root_id = seed_folder(dir, &dir_name, &dir_name, None, &inherited, &mut files)?;
    Ok(Seeded { root_id, files })
}

/// Adds the folder at `path` (named `local_name` on disk) and everything below it; returns its id.
fn seed_folder(
    path: &Path,
    local_name: &str,
    id_seed: &str,
    parent: Option<&str>,
    inherited: &Inherited,
    files: &mut Vec<DriveFile>,
) -> io::Result<String> {
    let id = drive_id_from(&format!("seed:{id_seed}"));
    let mut name = local_name.to_string();
    let mut own = inherited.clone();
    loop {
        if let Some(stem) = name.strip_suffix(".shareddrive") {
            own.drive_id = Some(id.clone());
            name = stem.to_string();
        } else if let Some(stem) = name.strip_suffix(".unshared") {
            own.access = Access::Hidden;
            name = stem.to_string();
        } else if let Some(stem) = name.strip_suffix(".readonly") {
            if own.access == Access::Writable {
                own.access = Access::ReadOnly;
            }
            name = stem.to_string();
        } else if let Some(stem) = name.strip_suffix(TRASHED_MARK) {
            own.trashed = true;
            name = stem.to_string();
        } else {
            break;
        }
    }
    let mut folder = DriveFile::new(&id, &name, FOLDER_MIME, Vec::new());
    stamp(&mut folder, parent, &own, &std::fs::metadata(path)?);
    files.push(folder);

    let mut entries: Vec<_> = std::fs::read_dir(path)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let entry_name = entry.file_name().to_string_lossy().into_owned();
        // Dot files (.gitkeep, .DS_Store) keep folders in version control; they are not content.
        if entry_name.starts_with('.') {
            continue;
        }
        let child_seed = format!("{id_seed}/{entry_name}");
        let metadata = std::fs::metadata(entry.path())?;
        if metadata.is_dir() {
            seed_folder(
                &entry.path(),
                &entry_name,
                &child_seed,
                Some(&id),
                &own,
                files,
            )?;
        } else {
            let content = std::fs::read(entry.path())?;
            let (name, mime, trashed) = classify_file(&entry_name);
            let mut file = DriveFile::new(
                &drive_id_from(&format!("seed:{child_seed}")),
                &name,
                &mime,
                content,
            );
            let mut file_inherited = own.clone();
            file_inherited.trashed |= trashed;
            stamp(&mut file, Some(&id), &file_inherited, &metadata);
            files.push(file);
        }
    }
    Ok(id)
}

fn stamp(
    file: &mut DriveFile,
    parent: Option<&str>,
    inherited: &Inherited,
    metadata: &std::fs::Metadata,
) {
    file.parents = parent.map(str::to_string).into_iter().collect();
    file.access = inherited.access;
    file.drive_id = inherited.drive_id.clone();
    file.trashed = inherited.trashed;
    // The local modification time, so re-seeding unchanged files gives unchanged metadata.
    if let Ok(modified) = metadata.modified() {
        let time: DateTime<Utc> = modified.into();
        file.modified_time = time;
        file.created_time = time;
    }
}

/// Drive name, MIME type and trashed flag of a local file name.
fn classify_file(local_name: &str) -> (String, String, bool) {
    let mut name = local_name.to_string();
    let mut trashed = false;
    if let Some(position) = name.find(&format!("{TRASHED_MARK}.")) {
        name.replace_range(position..position + TRASHED_MARK.len(), "");
        trashed = true;
    }
    for (ending, mime) in NATIVE_ENDINGS {
        if let Some(stem) = name.strip_suffix(ending) {
            return (stem.to_string(), mime.to_string(), trashed);
        }
    }
    let mime = binary_mime(&name);
    (name, mime, trashed)
}

/// The MIME type Drive would record for an uploaded file of this name.
pub(crate) fn binary_mime(name: &str) -> String {
    let extension = Path::new(name)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "md" | "markdown" => "text/markdown".to_string(),
        _ => mime_guess::from_path(name)
            .first_or_octet_stream()
            .essence_str()
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_and_trashed_names() {
        assert_eq!(
            classify_file("Memo.gdoc.md"),
            ("Memo".into(), DOC_MIME.into(), false)
        );
        assert_eq!(
            classify_file("Metrics.gsheet.xlsx"),
            ("Metrics".into(), SHEET_MIME.into(), false)
        );
        assert_eq!(
            classify_file("Deck.gslides.pdf"),
            ("Deck".into(), SLIDES_MIME.into(), false)
        );
        assert_eq!(
            classify_file("old.trashed.pdf"),
            ("old.pdf".into(), "application/pdf".into(), true)
        );
        assert_eq!(
            classify_file("Old.trashed.gdoc.md"),
            ("Old".into(), DOC_MIME.into(), true)
        );
        assert_eq!(
            classify_file("notes.md"),
            ("notes.md".into(), "text/markdown".into(), false)
        );
        assert_eq!(
            classify_file("data.xlsx"),
            (
                "data.xlsx".into(),
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".into(),
                false
            )
        );
    }
}

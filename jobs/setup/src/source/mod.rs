//! Where the documents come from: a Drive folder or file, a local directory, or nothing.
//!
//! Each source produces the same [`Listing`]: folders (kept as sub-directories) and documents,
//! each with a stable id (the Drive id, or the path under `--source-dir`) that orders duplicate
//! names and identifies content across runs.

pub mod drive;
pub mod local;

use std::path::PathBuf;

use drive_client::DriveItem;

/// The id of the source's top folder in [`Folder::parent`] and [`Document::parent`].
pub const ROOT: &str = "";

/// A folder below the source's top folder.
#[derive(Debug, Clone)]
pub struct Folder {
    pub id: String,
    pub parent: String,
    pub name: String,
}

/// Where a document's bytes are.
#[derive(Debug, Clone)]
pub enum Content {
    Drive(DriveItem),
    Local(PathBuf),
}

/// One document found at the source.
#[derive(Debug, Clone)]
pub struct Document {
    pub id: String,
    pub parent: String,
    /// The name at the source, before sanitising.
    pub name: String,
    /// The `/`-separated source path (folder names and the name, as at the source).
    pub original_path: String,
    pub size: Option<u64>,
    pub content: Content,
}

/// Everything found at the source.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub folders: Vec<Folder>,
    pub documents: Vec<Document>,
}

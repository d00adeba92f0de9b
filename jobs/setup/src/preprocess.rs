//! What OpenAI file_search can index, and tables turned into something it can.
//!
//! file_search indexes Markdown, text, PDF, Word, PowerPoint, HTML, JSON and source code, but not
//! CSV, TSV or spreadsheets. Tables become Markdown: one table per sheet, with the header row
//! repeated every [`ROWS_PER_CHUNK`] rows, because the index cuts documents into chunks of about
//! 800 tokens and a chunk of bare rows without its header means nothing to the model.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use shared::atomic::AtomicFile;
use shared::{Error, Result};

/// Data rows between repeated headers (about one index chunk of a typical table).
pub const ROWS_PER_CHUNK: usize = 50;

/// Extensions file_search indexes as they are (lowercase, without the dot).
const PASS_THROUGH: [&str; 27] = [
    "md", "markdown", "txt", "pdf", "doc", "docx", "pptx", "html", "htm", "json", "c", "cpp", "cs",
    "css", "go", "java", "js", "ts", "py", "rb", "php", "sh", "tex", "rs", "kt", "swift", "sql",
];

/// How a document is made ready for indexing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Treatment {
    /// Kept as it is.
    PassThrough,
    /// A delimited table (`,` or `\t`) converted to Markdown.
    Delimited(u8),
    /// A workbook: every sheet converted to Markdown.
    Workbook,
}

/// The treatment for a file name, or `None` when file_search cannot use it.
pub fn treatment(name: &str) -> Option<Treatment> {
    let ext = extension(name)?;
    match ext.as_str() {
        "csv" => Some(Treatment::Delimited(b',')),
        "tsv" | "tab" => Some(Treatment::Delimited(b'\t')),
        "xlsx" | "xlsm" | "xls" | "ods" => Some(Treatment::Workbook),
        e if PASS_THROUGH.contains(&e) => Some(Treatment::PassThrough),
        _ => None,
    }
}

/// An extension for a file whose name lacks a usable one, from its Drive mime type.
pub fn extension_for_mime(mime: &str) -> Option<&'static str> {
    Some(match mime {
        "text/plain" => ".txt",
        "text/markdown" | "text/x-markdown" => ".md",
        "application/pdf" => ".pdf",
        "text/html" => ".html",
        "application/json" => ".json",
        "text/csv" => ".csv",
        "text/tab-separated-values" => ".tsv",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => ".docx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => ".pptx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => ".xlsx",
        _ => return None,
    })
}

fn extension(name: &str) -> Option<String> {
    let (_, ext) = crate::names::split_extension(name);
    ext.strip_prefix('.').map(str::to_ascii_lowercase)
}

/// Converts the table at `source` into Markdown at `target` (written atomically). `title` heads
/// the document (the original file name). Returns false when the table has no cells at all.
pub fn convert_table(
    treatment: Treatment,
    source: &Path,
    title: &str,
    target: &Path,
) -> Result<bool> {
    let markdown = match treatment {
        Treatment::Delimited(delimiter) => delimited_to_markdown(source, delimiter, title)?,
        Treatment::Workbook => workbook_to_markdown(source, title)?,
        Treatment::PassThrough => {
            return Err(Error::internal("a pass-through file is not a table"));
        }
    };
    let Some(markdown) = markdown else {
        return Ok(false);
    };
    let mut file = AtomicFile::create(target)?;
    file.write_all(markdown.as_bytes())
        .map_err(|e| Error::io("write", target, e))?;
    file.commit()?;
    Ok(true)
}

fn delimited_to_markdown(source: &Path, delimiter: u8, title: &str) -> Result<Option<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_path(source)
        .map_err(|e| Error::io("read", source, std::io::Error::other(e.to_string())))?;
    let mut rows: Vec<Vec<String>> = Vec::new();
    for record in reader.byte_records() {
        let record = record.map_err(|e| {
            Error::bad_input(format!(
                "the table {title:?} cannot be read as CSV ({e}); fix or remove the file"
            ))
        })?;
        rows.push(
            record
                .iter()
                .map(|cell| String::from_utf8_lossy(cell).into_owned())
                .collect(),
        );
    }
    let mut out = format!("# {}\n\n", escape_heading(title));
    if !write_table(&mut out, rows, title) {
        return Ok(None);
    }
    Ok(Some(out))
}

fn workbook_to_markdown(source: &Path, title: &str) -> Result<Option<String>> {
    use calamine::{Data, Reader};
    let mut workbook = calamine::open_workbook_auto(source).map_err(|e| {
        Error::bad_input(format!(
            "the spreadsheet {title:?} cannot be read ({e}); re-save it as .xlsx or remove it"
        ))
    })?;
    let mut out = format!("# {}\n", escape_heading(title));
    let mut any = false;
    for sheet in workbook.sheet_names() {
        let range = workbook.worksheet_range(&sheet).map_err(|e| {
            Error::bad_input(format!(
                "sheet {sheet:?} of {title:?} cannot be read ({e}); re-save the workbook"
            ))
        })?;
        let rows: Vec<Vec<String>> = range
            .rows()
            .map(|row| {
                row.iter()
                    .map(|cell| match cell {
                        Data::DateTime(value) => value
                            .as_datetime()
                            .map(|t| {
                                t.format(if t.time() == chrono::NaiveTime::MIN {
                                    "%Y-%m-%d"
                                } else {
                                    "%Y-%m-%d %H:%M:%S"
                                })
                                .to_string()
                            })
                            .unwrap_or_else(|| cell.to_string()),
                        other => other.to_string(),
                    })
                    .collect()
            })
            .collect();
        let mut section = format!("\n## Sheet: {}\n\n", escape_heading(&sheet));
        if write_table(&mut section, rows, &sheet) {
            out.push_str(&section);
            any = true;
        }
    }
    Ok(any.then_some(out))
}

/// Appends `rows` (the first is the header) as Markdown tables of at most [`ROWS_PER_CHUNK`]
/// data rows each, every one starting with the header. Returns false when there is nothing.
fn write_table(out: &mut String, mut rows: Vec<Vec<String>>, name: &str) -> bool {
    rows.retain(|row| row.iter().any(|cell| !cell.trim().is_empty()));
    if rows.is_empty() {
        return false;
    }
    let width = rows.iter().map(Vec::len).max().unwrap_or(0).max(1);
    for row in &mut rows {
        row.resize(width, String::new());
    }
    let header: Vec<String> = rows[0]
        .iter()
        .enumerate()
        .map(|(i, cell)| {
            if cell.trim().is_empty() {
                format!("Column {}", i + 1)
            } else {
                cell.clone()
            }
        })
        .collect();
    let data = &rows[1..];
    let total = data.len();
    let header_line = table_line(&header);
    let rule = format!("|{}\n", " --- |".repeat(width));
    if data.is_empty() {
        out.push_str(&header_line);
        out.push_str(&rule);
        return true;
    }
    for (chunk_index, chunk) in data.chunks(ROWS_PER_CHUNK).enumerate() {
        if chunk_index > 0 {
            let first = chunk_index * ROWS_PER_CHUNK + 1;
            let last = first + chunk.len() - 1;
            let _ = write!(
                out,
                "\n{name}, rows {first}–{last} of {total} (continued):\n\n"
            );
        }
        out.push_str(&header_line);
        out.push_str(&rule);
        for row in chunk {
            out.push_str(&table_line(row));
        }
    }
    true
}

fn table_line(cells: &[String]) -> String {
    let mut line = String::from("|");
    for cell in cells {
        line.push(' ');
        line.push_str(&escape_cell(cell));
        line.push_str(" |");
    }
    line.push('\n');
    line
}

/// A cell on one line, with `|` escaped so it cannot split the row.
fn escape_cell(cell: &str) -> String {
    cell.trim()
        .replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace("\r\n", "<br>")
        .replace(['\n', '\r'], "<br>")
}

fn escape_heading(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn treatments_follow_what_file_search_indexes() {
        assert_eq!(treatment("a.CSV"), Some(Treatment::Delimited(b',')));
        assert_eq!(treatment("a.tsv"), Some(Treatment::Delimited(b'\t')));
        assert_eq!(treatment("a.xlsx"), Some(Treatment::Workbook));
        assert_eq!(treatment("a.pdf"), Some(Treatment::PassThrough));
        assert_eq!(treatment("main.py"), Some(Treatment::PassThrough));
        assert_eq!(treatment("photo.jpg"), None);
        assert_eq!(treatment("archive.zip"), None);
        assert_eq!(treatment("README"), None);
    }

    #[test]
    fn csv_becomes_markdown_with_the_header_repeated_per_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("t.csv");
        let mut text = String::from("Lane,Shipments,Note\n");
        for i in 1..=120 {
            text.push_str(&format!("L{i},{},\"a|b\nc\"\n", i * 10));
        }
        std::fs::write(&source, text).unwrap();
        let target = dir.path().join("t.md");
        assert!(convert_table(Treatment::Delimited(b','), &source, "t.csv", &target).unwrap());
        let md = std::fs::read_to_string(&target).unwrap();
        assert_eq!(md.matches("| Lane | Shipments | Note |").count(), 3);
        assert!(md.contains("| L120 | 1200 | a\\|b<br>c |"), "{md}");
        assert!(md.contains("t.csv, rows 101–120 of 120 (continued):"));
        let empty = dir.path().join("e.csv");
        std::fs::write(&empty, "\n , \n").unwrap();
        assert!(
            !convert_table(
                Treatment::Delimited(b','),
                &empty,
                "e.csv",
                &dir.path().join("e.md")
            )
            .unwrap()
        );
    }
}

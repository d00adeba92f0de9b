//! Conversions of Google-native files: exports (`files.export`) and the import that turns an
//! uploaded Markdown, HTML or text file into a Google Doc.
//!
//! A Doc is stored as Markdown; Markdown, plain text, HTML and DOCX exports are made from it. A
//! Sheet is stored as the XLSX it was seeded with (CSV/TSV exports read its first sheet, as Drive
//! does); a Slides deck as its PDF. Drive refuses an export whose result exceeds 10 MB.

use std::io::Cursor;

use calamine::{Reader, Xlsx};
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use super::error::DriveError;
use super::tree::{DOC_MIME, DriveFile, SHEET_MIME, SLIDES_MIME};

/// Drive's export cap: 10 MB.
pub(crate) const EXPORT_LIMIT_BYTES: usize = 10_485_760;

const DOCX_MIME: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const XLSX_MIME: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// The bytes of `file` exported as `target`.
pub(crate) fn export(file: &DriveFile, target: &str) -> Result<Vec<u8>, DriveError> {
    let unsupported = || DriveError::bad_request("The requested conversion is not supported.");
    let markdown = || String::from_utf8_lossy(&file.content).into_owned();
    let exported = match (file.mime_type.as_str(), target) {
        (DOC_MIME, "text/markdown" | "text/x-markdown") => file.content.clone(),
        (DOC_MIME, "text/plain") => markdown_to_text(&markdown()).into_bytes(),
        (DOC_MIME, "text/html") => markdown_to_html(&markdown()).into_bytes(),
        (DOC_MIME, DOCX_MIME) => markdown_to_docx(&markdown())?,
        (SHEET_MIME, XLSX_MIME) | (SLIDES_MIME, "application/pdf") => file.content.clone(),
        (SHEET_MIME, "text/csv") => first_sheet_as_delimited(&file.content, b',')?,
        (SHEET_MIME, "text/tab-separated-values") => {
            first_sheet_as_delimited(&file.content, b'\t')?
        }
        _ => return Err(unsupported()),
    };
    if exported.len() > EXPORT_LIMIT_BYTES {
        return Err(DriveError::export_too_large());
    }
    Ok(exported)
}

/// What a Google Doc made from an upload of `media_type` contains (as Markdown).
pub(crate) fn import_as_doc(media_type: &str, bytes: &[u8]) -> Result<Vec<u8>, DriveError> {
    let essence = media_type.split(';').next().unwrap_or_default().trim();
    match essence {
        "text/markdown" | "text/x-markdown" | "text/plain" => Ok(bytes.to_vec()),
        // Drive keeps the text and structure of imported HTML: headings, paragraphs, lists.
        "text/html" => crate::extract::html_text(bytes)
            .map(String::into_bytes)
            .map_err(DriveError::bad_request),
        _ => Err(DriveError::bad_request(format!(
            "Conversion of {essence} to a Google Doc is not supported."
        ))),
    }
}

fn markdown_to_text(markdown: &str) -> String {
    let mut text = String::new();
    for event in Parser::new_ext(markdown, Options::ENABLE_TABLES) {
        match event {
            Event::Text(t) | Event::Code(t) => text.push_str(&t),
            Event::SoftBreak | Event::HardBreak => text.push('\n'),
            Event::Start(Tag::Item) => text.push_str("* "),
            Event::End(TagEnd::TableCell) => text.push('\t'),
            Event::End(
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::Item
                | TagEnd::CodeBlock
                | TagEnd::TableRow
                | TagEnd::TableHead,
            ) => text.push('\n'),
            _ => {}
        }
    }
    text
}

fn markdown_to_html(markdown: &str) -> String {
    let mut body = String::new();
    pulldown_cmark::html::push_html(&mut body, Parser::new_ext(markdown, Options::ENABLE_TABLES));
    format!(
        "<html><head><meta content=\"text/html; charset=UTF-8\" http-equiv=\"content-type\"></head><body>{body}</body></html>"
    )
}

/// A real .docx: one paragraph per line of the Doc's text, headings in bold.
fn markdown_to_docx(markdown: &str) -> Result<Vec<u8>, DriveError> {
    let mut document = docx_rs::Docx::new();
    for line in markdown.lines() {
        let heading = line.trim_start().starts_with('#');
        let text = line.trim_start().trim_start_matches('#').trim_start();
        let mut run = docx_rs::Run::new().add_text(text);
        if heading {
            run = run.bold();
        }
        document = document.add_paragraph(docx_rs::Paragraph::new().add_run(run));
    }
    let mut packed = Cursor::new(Vec::new());
    document
        .build()
        .pack(&mut packed)
        .map_err(|e| DriveError::bad_request(format!("The document could not be exported: {e}")))?;
    Ok(packed.into_inner())
}

fn first_sheet_as_delimited(xlsx: &[u8], delimiter: u8) -> Result<Vec<u8>, DriveError> {
    let broken =
        |e: String| DriveError::bad_request(format!("The spreadsheet could not be exported: {e}"));
    let mut workbook: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(xlsx))
        .map_err(|e: calamine::XlsxError| broken(e.to_string()))?;
    let Some(first) = workbook.sheet_names().first().cloned() else {
        return Ok(Vec::new());
    };
    let range = workbook
        .worksheet_range(&first)
        .map_err(|e| broken(e.to_string()))?;
    let mut writer = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_writer(Vec::new());
    for row in range.rows() {
        writer
            .write_record(row.iter().map(ToString::to_string))
            .map_err(|e| broken(e.to_string()))?;
    }
    writer.into_inner().map_err(|e| broken(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_becomes_plain_text() {
        let text = markdown_to_text("# Title\n\nSome *bold* text.\n\n- one\n- two\n");
        assert_eq!(text, "Title\nSome bold text.\n* one\n* two\n");
    }

    #[test]
    fn html_upload_keeps_text_and_headings() {
        let markdown = import_as_doc(
            "text/html; charset=utf-8",
            b"<html><head><title>x</title><style>p{}</style></head><body><h1>Report</h1><p>A &amp; B</p><ul><li>one</li></ul></body></html>",
        )
        .unwrap();
        let markdown = String::from_utf8(markdown).unwrap();
        assert_eq!(markdown, "# Report\n\nA & B\n* one\n");
    }

    #[test]
    fn docx_export_is_a_zip_with_the_text() {
        let docx = markdown_to_docx("# Heading\nBody line").unwrap();
        assert_eq!(&docx[..2], b"PK");
        let mut archive = zip::ZipArchive::new(Cursor::new(docx)).unwrap();
        let mut xml = String::new();
        std::io::Read::read_to_string(&mut archive.by_name("word/document.xml").unwrap(), &mut xml)
            .unwrap();
        assert!(xml.contains("Heading") && xml.contains("Body line"));
    }
}

//! Text extraction for retrieval: what file_search would index from an uploaded file.
//!
//! Plain-text formats are read as UTF-8, HTML goes through `html2text`, PDF through
//! `pdf-extract`, DOCX through `docx-rs`, PPTX through `zip` + `quick-xml` (the text runs of
//! each slide; no maintained crate reads slides). The result only feeds passage retrieval, so
//! layout is not preserved.

use std::io::Read;
use std::path::Path;

use docx_rs::{DocumentChild, TableCellContent, TableChild, TableRowChild};
use quick_xml::events::Event;

/// Extensions that OpenAI's file_search indexes (its documented list).
const INDEXABLE: &[&str] = &[
    "c", "cpp", "cs", "css", "doc", "docx", "go", "html", "htm", "java", "js", "json", "md",
    "markdown", "pdf", "php", "pptx", "py", "rb", "sh", "tex", "ts", "txt",
];

/// Line width for rendering HTML: wide enough that no sentence is wrapped, since retrieval
/// quotes passages verbatim.
const HTML_WIDTH: usize = 10_000;

/// Whether file_search can index a file with this name.
pub fn is_indexable(filename: &str) -> bool {
    extension(filename).is_some_and(|ext| INDEXABLE.contains(&ext.as_str()))
}

fn extension(filename: &str) -> Option<String> {
    Path::new(filename)
        .extension()
        .and_then(|ext| ext.to_str())
        .map(str::to_ascii_lowercase)
}

/// Extracts the text of a file, chosen by its extension. Errors describe why the file cannot
/// be read (they become a vector-store file's `last_error.message`).
pub fn extract_text(filename: &str, bytes: &[u8]) -> Result<String, String> {
    match extension(filename).as_deref() {
        Some("pdf") => pdf_text(bytes),
        Some("docx") => docx_text(bytes),
        Some("pptx") => pptx_text(bytes),
        Some("html" | "htm") => html_text(bytes),
        Some("doc") => Err("legacy .doc files cannot be parsed; convert to .docx".to_string()),
        _ => utf8(bytes),
    }
}

/// The visible text of an HTML page (no markup, scripts or styles; entities decoded), with
/// headings and list items marked as in Markdown: also what Drive keeps of an HTML file
/// imported as a Google Doc.
pub fn html_text(bytes: &[u8]) -> Result<String, String> {
    html2text::config::plain()
        .link_footnotes(false)
        .string_from_read(bytes, HTML_WIDTH)
        .map_err(|error| format!("the HTML could not be parsed: {error}"))
}

fn utf8(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "the file is not valid UTF-8 text".to_string())
}

fn pdf_text(bytes: &[u8]) -> Result<String, String> {
    // pdf-extract panics on some malformed documents; a bad upload must fail the file, not the
    // emulator.
    let owned = bytes.to_vec();
    std::panic::catch_unwind(move || pdf_extract::extract_text_from_mem(&owned))
        .map_err(|_| "the PDF could not be parsed".to_string())?
        .map_err(|error| format!("the PDF could not be parsed: {error}"))
}

/// One line per paragraph, table cells included, in document order.
fn docx_text(bytes: &[u8]) -> Result<String, String> {
    let document = docx_rs::read_docx(bytes)
        .map_err(|error| format!("the file is not a valid DOCX document: {error}"))?
        .document;
    let mut text = String::new();
    for child in &document.children {
        match child {
            DocumentChild::Paragraph(paragraph) => push_line(&mut text, &paragraph.raw_text()),
            DocumentChild::Table(table) => table_text(table, &mut text),
            _ => {}
        }
    }
    Ok(text)
}

fn table_text(table: &docx_rs::Table, out: &mut String) {
    for TableChild::TableRow(row) in &table.rows {
        for TableRowChild::TableCell(cell) in &row.cells {
            for content in &cell.children {
                match content {
                    TableCellContent::Paragraph(paragraph) => push_line(out, &paragraph.raw_text()),
                    TableCellContent::Table(inner) => table_text(inner, out),
                    _ => {}
                }
            }
        }
    }
}

fn push_line(out: &mut String, line: &str) {
    out.push_str(line);
    out.push('\n');
}

/// The text runs of every slide, in slide order, one line per paragraph.
fn pptx_text(bytes: &[u8]) -> Result<String, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|error| format!("the file is not a valid PPTX (zip) document: {error}"))?;
    let mut slides: Vec<(u32, String)> = archive
        .file_names()
        .filter_map(|name| {
            let number = name
                .strip_prefix("ppt/slides/slide")?
                .strip_suffix(".xml")?
                .parse()
                .ok()?;
            Some((number, name.to_string()))
        })
        .collect();
    slides.sort();
    let mut text = String::new();
    for (_, part) in slides {
        let mut xml = String::new();
        archive
            .by_name(&part)
            .map_err(|error| format!("{part} is missing: {error}"))?
            .read_to_string(&mut xml)
            .map_err(|error| format!("{part} cannot be read: {error}"))?;
        slide_runs(&xml, &mut text)?;
        text.push('\n');
    }
    Ok(text)
}

/// Appends the text runs (`a:t` elements) of a slide, one line per paragraph (`a:p`).
fn slide_runs(xml: &str, out: &mut String) -> Result<(), String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut in_text_run = false;
    loop {
        match reader.read_event() {
            Ok(Event::Start(start)) if start.name().as_ref() == b"a:t" => in_text_run = true,
            Ok(Event::End(end)) if end.name().as_ref() == b"a:t" => in_text_run = false,
            Ok(Event::End(end)) if end.name().as_ref() == b"a:p" => out.push('\n'),
            Ok(Event::Empty(empty)) if empty.name().as_ref() == b"a:br" => out.push('\n'),
            Ok(Event::Text(text)) if in_text_run => {
                let decoded = text
                    .decode()
                    .map_err(|error| format!("bad text in the slide XML: {error}"))?;
                let unescaped = quick_xml::escape::unescape(&decoded)
                    .map_err(|error| format!("bad entity in the slide XML: {error}"))?;
                out.push_str(&unescaped);
            }
            Ok(Event::GeneralRef(entity)) if in_text_run => {
                let name = entity
                    .decode()
                    .map_err(|error| format!("bad entity in the slide XML: {error}"))?;
                let reference = format!("&{name};");
                let resolved = quick_xml::escape::unescape(&reference)
                    .map_err(|error| format!("bad entity in the slide XML: {error}"))?;
                out.push_str(&resolved);
            }
            Ok(Event::Eof) => return Ok(()),
            Err(error) => return Err(format!("the slide XML is malformed: {error}")),
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_loses_markup_scripts_and_entities() {
        let html = "<html><head><style>p{}</style><script>var x = 1;</script></head>\
                    <body><h1>Title</h1><p>Fish &amp; chips are sold daily &#8212; from the \
                    harbour kiosk that opens at six and closes when the last boat is in.</p>\
                    </body></html>";
        let text = extract_text("page.html", html.as_bytes()).unwrap();
        assert!(text.contains("Title\n"), "{text}");
        // One unwrapped line: retrieval quotes whole sentences.
        assert!(
            text.contains(
                "Fish & chips are sold daily \u{2014} from the harbour kiosk that opens at six \
                 and closes when the last boat is in."
            ),
            "{text}"
        );
        assert!(!text.contains("var x"));
        assert!(!text.contains("p{}"));
    }

    #[test]
    fn docx_paragraphs_and_table_cells_become_lines() {
        use docx_rs::{Docx, Paragraph, Run, Table, TableCell, TableRow};
        let docx = Docx::new()
            .add_paragraph(
                Paragraph::new()
                    .add_run(Run::new().add_text("Orders are keyed in "))
                    .add_run(Run::new().add_text("by hand & checked.")),
            )
            .add_table(Table::new(vec![TableRow::new(vec![
                TableCell::new()
                    .add_paragraph(Paragraph::new().add_run(Run::new().add_text("Cell one"))),
            ])]))
            .add_paragraph(Paragraph::new().add_run(Run::new().add_text("Second paragraph.")));
        let mut packed = std::io::Cursor::new(Vec::new());
        docx.build().pack(&mut packed).unwrap();
        let text = extract_text("memo.docx", packed.get_ref()).unwrap();
        assert_eq!(
            text.trim(),
            "Orders are keyed in by hand & checked.\nCell one\nSecond paragraph."
        );
    }

    #[test]
    fn broken_binary_files_fail_with_a_reason() {
        assert!(extract_text("scan.pdf", b"not a pdf").is_err());
        assert!(extract_text("memo.docx", b"not a zip").is_err());
        assert!(extract_text("notes.txt", &[0xff, 0xfe, 0x00]).is_err());
    }

    #[test]
    fn indexable_follows_the_file_search_list() {
        assert!(is_indexable("a.PDF"));
        assert!(is_indexable("notes.md"));
        assert!(!is_indexable("table.csv"));
        assert!(!is_indexable("book.xlsx"));
        assert!(!is_indexable("rows.jsonl"));
        assert!(!is_indexable("README"));
    }
}

//! Text extraction for retrieval: what file_search would index from an uploaded file.
//!
//! Plain-text formats are read as UTF-8, HTML loses its markup, PDF goes through
//! `pdf-extract`, DOCX and PPTX through `zip` + `quick-xml` (the text runs of the document
//! XML). The result only feeds passage retrieval, so layout is not preserved.

use std::io::Read;
use std::path::Path;

use quick_xml::events::Event;

/// Extensions that OpenAI's file_search indexes (its documented list).
const INDEXABLE: &[&str] = &[
    "c", "cpp", "cs", "css", "doc", "docx", "go", "html", "htm", "java", "js", "json", "md",
    "markdown", "pdf", "php", "pptx", "py", "rb", "sh", "tex", "ts", "txt",
];

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
        Some("docx") => office_text(bytes, OfficeKind::Docx),
        Some("pptx") => office_text(bytes, OfficeKind::Pptx),
        Some("html" | "htm") => Ok(html_text(&utf8(bytes)?)),
        Some("doc") => Err("legacy .doc files cannot be parsed; convert to .docx".to_string()),
        _ => utf8(bytes),
    }
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

#[derive(Clone, Copy)]
enum OfficeKind {
    Docx,
    Pptx,
}

fn office_text(bytes: &[u8], kind: OfficeKind) -> Result<String, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|error| format!("the file is not a valid Office (zip) document: {error}"))?;
    let parts: Vec<String> = match kind {
        OfficeKind::Docx => vec!["word/document.xml".to_string()],
        OfficeKind::Pptx => {
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
            slides.into_iter().map(|(_, name)| name).collect()
        }
    };
    let (text_tag, paragraph_tag): (&[u8], &[u8]) = match kind {
        OfficeKind::Docx => (b"w:t", b"w:p"),
        OfficeKind::Pptx => (b"a:t", b"a:p"),
    };
    let mut text = String::new();
    for part in parts {
        let mut xml = String::new();
        archive
            .by_name(&part)
            .map_err(|error| format!("{part} is missing: {error}"))?
            .read_to_string(&mut xml)
            .map_err(|error| format!("{part} cannot be read: {error}"))?;
        xml_runs(&xml, text_tag, paragraph_tag, &mut text)?;
        text.push('\n');
    }
    Ok(text)
}

/// Appends the text runs (`text_tag` elements) of an Office XML part, one line per paragraph.
fn xml_runs(
    xml: &str,
    text_tag: &[u8],
    paragraph_tag: &[u8],
    out: &mut String,
) -> Result<(), String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut in_text_run = false;
    loop {
        match reader.read_event() {
            Ok(Event::Start(start)) if start.name().as_ref() == text_tag => in_text_run = true,
            Ok(Event::End(end)) if end.name().as_ref() == text_tag => in_text_run = false,
            Ok(Event::End(end)) if end.name().as_ref() == paragraph_tag => out.push('\n'),
            Ok(Event::Empty(empty)) if matches!(empty.name().as_ref(), b"w:tab") => out.push('\t'),
            Ok(Event::Empty(empty)) if matches!(empty.name().as_ref(), b"w:br" | b"a:br") => {
                out.push('\n')
            }
            Ok(Event::Text(text)) if in_text_run => {
                let decoded = text
                    .decode()
                    .map_err(|error| format!("bad text in the document XML: {error}"))?;
                let unescaped = quick_xml::escape::unescape(&decoded)
                    .map_err(|error| format!("bad entity in the document XML: {error}"))?;
                out.push_str(&unescaped);
            }
            Ok(Event::GeneralRef(entity)) if in_text_run => {
                let name = entity
                    .decode()
                    .map_err(|error| format!("bad entity in the document XML: {error}"))?;
                let reference = format!("&{name};");
                let resolved = quick_xml::escape::unescape(&reference)
                    .map_err(|error| format!("bad entity in the document XML: {error}"))?;
                out.push_str(&resolved);
            }
            Ok(Event::Eof) => return Ok(()),
            Err(error) => return Err(format!("the document XML is malformed: {error}")),
            Ok(_) => {}
        }
    }
}

/// Visible text of an HTML page: tags removed, `script`/`style` dropped, block ends become
/// line breaks, the common entities decoded. Enough for retrieval, not a renderer.
fn html_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&decode_entities(&rest[..open]));
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else {
            rest = "";
            break;
        };
        let tag = after[..close].trim().to_ascii_lowercase();
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        rest = &after[close + 1..];
        if (name == "script" || name == "style") && !tag.starts_with('/') {
            let end_tag = format!("</{name}");
            rest = match rest.to_ascii_lowercase().find(&end_tag) {
                Some(end) => rest[end..].find('>').map_or("", |gt| &rest[end + gt + 1..]),
                None => "",
            };
            continue;
        }
        if matches!(
            name.as_str(),
            "p" | "br" | "div" | "li" | "tr" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "title"
        ) {
            out.push('\n');
        }
    }
    out.push_str(&decode_entities(rest));
    out
}

fn decode_entities(text: &str) -> String {
    text.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn html_loses_markup_scripts_and_entities() {
        let html = "<html><head><style>p{}</style><script>var x = 1;</script></head>\
                    <body><h1>Title</h1><p>Fish &amp; chips are sold daily.</p></body></html>";
        let text = extract_text("page.html", html.as_bytes()).unwrap();
        assert!(text.contains("Title\n"));
        assert!(text.contains("Fish & chips are sold daily."));
        assert!(!text.contains("var x"));
        assert!(!text.contains("p{}"));
    }

    #[test]
    fn docx_text_runs_become_paragraph_lines() {
        let mut buffer = std::io::Cursor::new(Vec::new());
        {
            let mut zip = zip::ZipWriter::new(&mut buffer);
            zip.start_file(
                "word/document.xml",
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
            zip.write_all(
                br#"<w:document><w:body><w:p><w:r><w:t>Orders are keyed in </w:t></w:r><w:r><w:t>by hand &amp; checked.</w:t></w:r></w:p><w:p><w:r><w:t>Second paragraph.</w:t></w:r></w:p></w:body></w:document>"#,
            )
            .unwrap();
            zip.finish().unwrap();
        }
        let text = extract_text("memo.docx", buffer.get_ref()).unwrap();
        assert_eq!(
            text.trim(),
            "Orders are keyed in by hand & checked.\nSecond paragraph."
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

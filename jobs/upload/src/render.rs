//! `--as-google-doc`: Drive converts uploaded HTML (not Markdown) into a formatted Google Doc,
//! so the report is rendered to a standalone HTML page first.

use pulldown_cmark::{Event, Options, Parser, html};

/// The report as a complete HTML document titled `title`.
pub fn markdown_to_html(title: &str, markdown: &str) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_TASKLISTS;
    let mut body = String::with_capacity(markdown.len() * 3 / 2);
    // The report is model-written text: raw HTML in it is shown as text, never interpreted.
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        other => other,
    });
    html::push_html(&mut body, events);
    let mut title_html = String::new();
    // Writing into a String cannot fail.
    let _ = pulldown_cmark_escape::escape_html(&mut title_html, title);
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title_html}</title></head>\n<body>\n{body}</body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_headings_tables_and_escapes_the_title() {
        let markdown = "# Acme <Report>\n\n| KPI | Value |\n|---|---|\n| Lead time | 4 days |\n\nSee **this** [source: memo.md].\n";
        let html = markdown_to_html("A & B", markdown);
        assert!(html.contains("<title>A &amp; B</title>"), "{html}");
        assert!(html.contains("<h1>Acme &lt;Report&gt;</h1>"), "{html}");
        assert!(html.contains("<td>Lead time</td>"), "{html}");
        assert!(
            html.contains("<strong>this</strong> [source: memo.md]"),
            "{html}"
        );
    }
}

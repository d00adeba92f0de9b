//! Deterministic "model" output: passage retrieval by term overlap, prose that quotes the
//! retrieved sentences verbatim with `[source: FILENAME]` citations, and JSON that satisfies
//! a requested JSON schema. The same request always yields the same text, so tests can assert
//! on content and on how it flows from a document to a report.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Longest passage (search result chunk), in characters: about OpenAI's 800-token chunks,
/// scaled down so that small test documents still yield several passages.
const PASSAGE_CHARS: usize = 800;

/// A chunk of a file's text with the sentences it is made of.
#[derive(Clone, Debug, PartialEq)]
pub struct Passage {
    pub text: String,
    pub sentences: Vec<String>,
}

/// Splits extracted text into passages of whole sentences. Whitespace inside a paragraph is
/// collapsed (hard-wrapped lines and PDF line breaks join up), so a quoted sentence equals the
/// document's sentence up to whitespace.
pub fn split_passages(text: &str) -> Vec<Passage> {
    let mut passages = Vec::new();
    let mut current = Passage {
        text: String::new(),
        sentences: Vec::new(),
    };
    for paragraph in paragraphs(text) {
        for sentence in sentences(&paragraph) {
            if !current.text.is_empty() && current.text.len() + sentence.len() + 1 > PASSAGE_CHARS {
                passages.push(std::mem::replace(
                    &mut current,
                    Passage {
                        text: String::new(),
                        sentences: Vec::new(),
                    },
                ));
            }
            if !current.text.is_empty() {
                current.text.push(' ');
            }
            current.text.push_str(&sentence);
            if is_quotable(&sentence) {
                current.sentences.push(sentence);
            }
        }
    }
    if !current.text.is_empty() {
        passages.push(current);
    }
    passages
}

/// Paragraphs: blank-line separated blocks; headings, list items and table rows stand alone.
fn paragraphs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        let standalone = trimmed.starts_with('#')
            || trimmed.starts_with('|')
            || trimmed.starts_with("- ")
            || trimmed.starts_with("* ")
            || trimmed.starts_with('>');
        if trimmed.is_empty() || standalone {
            if !current.is_empty() {
                out.push(current.join(" "));
                current.clear();
            }
            if standalone {
                let content = trimmed
                    .trim_start_matches(['#', '>', '|'])
                    .trim_start_matches("- ")
                    .trim_start_matches("* ")
                    .trim();
                if !content.is_empty() {
                    out.push(content.to_string());
                }
            }
        } else {
            current.push(trimmed);
        }
    }
    if !current.is_empty() {
        out.push(current.join(" "));
    }
    out.into_iter()
        .map(|paragraph| paragraph.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|paragraph| !paragraph.is_empty())
        .collect()
}

/// Sentences of one paragraph: split after `.`, `!` or `?` followed by a space.
fn sentences(paragraph: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = paragraph.char_indices().collect();
    for window in chars.windows(2) {
        let ((_, current), (next_index, next)) = (window[0], window[1]);
        if matches!(current, '.' | '!' | '?') && next == ' ' {
            out.push(paragraph[start..next_index].trim().to_string());
            start = next_index;
        }
    }
    let tail = paragraph[start..].trim();
    if !tail.is_empty() {
        out.push(tail.to_string());
    }
    out.into_iter().filter(|s| !s.is_empty()).collect()
}

/// A sentence worth quoting: a few words of prose, not a heading fragment or a number.
fn is_quotable(sentence: &str) -> bool {
    sentence.split_whitespace().count() >= 4
        && sentence.chars().filter(|c| c.is_alphabetic()).count() >= 15
}

/// Lowercased content words of a text (the terms of the overlap score).
pub fn terms(text: &str) -> BTreeSet<String> {
    const STOPWORDS: &[&str] = &[
        "the", "and", "for", "are", "but", "not", "you", "all", "any", "can", "has", "her", "was",
        "one", "our", "out", "his", "how", "its", "who", "did", "yes", "this", "that", "with",
        "from", "they", "will", "would", "there", "their", "what", "about", "which", "when",
        "your", "into", "than", "then", "them", "these", "those", "have", "been", "were", "each",
        "also", "such", "only", "other", "more", "most", "some", "very", "should", "could",
    ];
    text.split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|word| word.chars().count() >= 3 && !STOPWORDS.contains(&word.as_str()))
        .collect()
}

/// Share of the query's terms found in `text`, in 0..=1.
pub fn overlap_score(query: &BTreeSet<String>, text: &str) -> f32 {
    if query.is_empty() {
        return 0.0;
    }
    let found = terms(text).intersection(query).count();
    found as f32 / query.len() as f32
}

/// A sentence quoted in the output and the file it comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Quote {
    pub sentence: String,
    /// The filename written in the `[source: …]` citation.
    pub filename: String,
    pub file_id: String,
}

impl Quote {
    fn cited(&self) -> String {
        format!("\"{}\" [source: {}]", self.sentence, self.filename)
    }
}

/// Where generated strings come from: retrieved quotes, or the request's own sentences when no
/// vector store was searched.
#[derive(Clone, Debug)]
pub enum Material {
    Quotes(Vec<Quote>),
    Request(Vec<String>),
}

impl Material {
    /// Builds the material for a request; `quotes` empty means "no retrieval".
    pub fn new(quotes: Vec<Quote>, request_text: &str) -> Material {
        if quotes.is_empty() {
            let mut own: Vec<String> = paragraphs(request_text)
                .iter()
                .flat_map(|paragraph| sentences(paragraph))
                .filter(|sentence| is_quotable(sentence))
                .collect();
            if own.is_empty() {
                own.push("No source material was provided for this request.".to_string());
            }
            Material::Request(own)
        } else {
            Material::Quotes(quotes)
        }
    }

    fn len(&self) -> usize {
        match self {
            Material::Quotes(quotes) => quotes.len(),
            Material::Request(sentences) => sentences.len(),
        }
    }

    /// The `n`th piece (cycling), with its citation when it comes from a document.
    fn piece(&self, n: usize) -> String {
        match self {
            Material::Quotes(quotes) => quotes[n % quotes.len()].cited(),
            Material::Request(sentences) => sentences[n % sentences.len()].clone(),
        }
    }

    /// A short label (for `title`/`name`-like fields): the first words of the `n`th piece.
    fn label(&self, n: usize) -> String {
        let source = match self {
            Material::Quotes(quotes) => &quotes[n % quotes.len()].sentence,
            Material::Request(sentences) => &sentences[n % sentences.len()],
        };
        let words: Vec<&str> = source.split_whitespace().take(6).collect();
        words
            .join(" ")
            .trim_end_matches(|c: char| !c.is_alphanumeric())
            .to_string()
    }
}

const LEAD_INS: &[&str] = &[
    "The documents state:",
    "One source puts it this way:",
    "The material also records:",
    "A further passage notes:",
    "Another document adds:",
    "The evidence includes:",
];

/// Markdown prose of a few paragraphs. Headings (`#` lines) found in the request become the
/// section headings of the answer, so a prompt that lists required sections gets them back.
pub fn prose(request_text: &str, material: &Material) -> String {
    let headings: Vec<String> = request_text
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with('#'))
        .map(str::to_string)
        .collect();
    let topic = paragraphs(request_text)
        .first()
        .map(|first| truncate_chars(first, 160))
        .unwrap_or_default();
    let mut out = String::new();
    match material {
        Material::Quotes(quotes) => {
            let files: BTreeSet<&str> = quotes.iter().map(|q| q.filename.as_str()).collect();
            out.push_str(&format!(
                "This answer draws on {} passages retrieved from {} documents for the request \"{}\".",
                quotes.len(),
                files.len(),
                topic
            ));
        }
        Material::Request(_) => out.push_str(&format!(
            "No documents were searched; this answer is based on the request \"{topic}\" alone."
        )),
    }
    let sections = if headings.is_empty() {
        vec![String::new(); 3]
    } else {
        headings
    };
    let per_section = material.len().div_ceil(sections.len()).max(1);
    let mut next_piece = 0;
    for (index, heading) in sections.iter().enumerate() {
        out.push_str("\n\n");
        if !heading.is_empty() {
            out.push_str(heading);
            out.push_str("\n\n");
        }
        let mut sentences_written = Vec::new();
        for _ in 0..per_section {
            let lead = LEAD_INS[next_piece % LEAD_INS.len()];
            sentences_written.push(format!("{lead} {}.", material.piece(next_piece)));
            next_piece += 1;
        }
        if index == sections.len() - 1 {
            sentences_written.push(
                "Taken together, these passages describe the current situation in the organisation's own words."
                    .to_string(),
            );
        }
        out.push_str(&sentences_written.join(" "));
    }
    out
}

fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// A JSON value that validates against `schema` (the subset strict structured outputs use:
/// `type`, `properties`, `required`, `additionalProperties`, `items`, `minItems`/`maxItems`,
/// `enum`, `const`, `anyOf`, numeric bounds, `$ref` into `$defs`/`definitions`).
pub fn fill_schema(schema: &Value, material: &Material) -> Value {
    let mut filler = Filler {
        root: schema,
        material,
        next_piece: 0,
        labels: BTreeSet::new(),
    };
    filler.value(schema, "$", "", 0)
}

struct Filler<'a> {
    root: &'a Value,
    material: &'a Material,
    next_piece: usize,
    /// Labels already given in this answer: a model names distinct items distinctly, and
    /// consumers (e.g. "N use cases with unique titles") rely on that.
    labels: BTreeSet<String>,
}

/// `$ref` chains deeper than this are treated as cycles and cut with a null.
const MAX_DEPTH: usize = 32;

impl<'a> Filler<'a> {
    fn value(&mut self, schema: &Value, path: &str, key: &str, depth: usize) -> Value {
        if depth > MAX_DEPTH {
            return Value::Null;
        }
        let Some(object) = schema.as_object() else {
            // `true` or an empty schema accepts anything: a string is the most useful.
            return self.string(key, schema);
        };
        if let Some(reference) = object.get("$ref").and_then(Value::as_str) {
            return match self.resolve(reference) {
                Some(target) => self.value(target, path, key, depth + 1),
                None => Value::Null,
            };
        }
        if let Some(constant) = object.get("const") {
            return constant.clone();
        }
        if let Some(choices) = object.get("enum").and_then(Value::as_array)
            && !choices.is_empty()
        {
            return choices[pick(path, choices.len())].clone();
        }
        for combinator in ["anyOf", "oneOf"] {
            if let Some(branches) = object.get(combinator).and_then(Value::as_array) {
                // Prefer a branch that carries content over the `null` alternative.
                let chosen = branches
                    .iter()
                    .find(|branch| branch.get("type").and_then(Value::as_str) != Some("null"))
                    .or_else(|| branches.first());
                return match chosen {
                    Some(branch) => self.value(branch, path, key, depth + 1),
                    None => Value::Null,
                };
            }
        }
        if let Some(all) = object.get("allOf").and_then(Value::as_array)
            && let Some(first) = all.first()
        {
            return self.value(first, path, key, depth + 1);
        }
        let kind = match object.get("type") {
            Some(Value::String(kind)) => kind.clone(),
            Some(Value::Array(kinds)) => kinds
                .iter()
                .filter_map(Value::as_str)
                .find(|kind| *kind != "null")
                .unwrap_or("null")
                .to_string(),
            _ if object.contains_key("properties") => "object".to_string(),
            _ if object.contains_key("items") => "array".to_string(),
            _ => "string".to_string(),
        };
        match kind.as_str() {
            "object" => self.object(object, path, depth),
            "array" => self.array(object, path, key, depth),
            "integer" => integer(object, path),
            "number" => number(object, path),
            "boolean" => Value::Bool(pick(path, 2) == 0),
            "null" => Value::Null,
            _ => self.string(key, schema),
        }
    }

    fn object(&mut self, schema: &Map<String, Value>, path: &str, depth: usize) -> Value {
        let mut out = Map::new();
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (name, property) in properties {
                let child = self.value(property, &format!("{path}.{name}"), name, depth + 1);
                out.insert(name.clone(), child);
            }
        }
        Value::Object(out)
    }

    fn array(&mut self, schema: &Map<String, Value>, path: &str, key: &str, depth: usize) -> Value {
        let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
        let max = schema
            .get("maxItems")
            .and_then(Value::as_u64)
            .unwrap_or(u64::MAX);
        let count = 3u64.clamp(min, max.max(min));
        let item_schema = schema.get("items").cloned().unwrap_or(Value::Bool(true));
        let items = (0..count)
            .map(|index| self.value(&item_schema, &format!("{path}[{index}]"), key, depth + 1))
            .collect();
        Value::Array(items)
    }

    fn string(&mut self, key: &str, schema: &Value) -> Value {
        let lowered = key.to_ascii_lowercase();
        let is_label = ["title", "name", "label", "slug", "category", "id"]
            .iter()
            .any(|word| lowered == *word || lowered.ends_with(&format!("_{word}")));
        let mut text = if is_label {
            self.unique_label()
        } else {
            self.material.piece(self.next_piece)
        };
        self.next_piece += 1;
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
            text = text
                .chars()
                .take(usize::try_from(max).unwrap_or(usize::MAX))
                .collect();
        }
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
            while (text.chars().count() as u64) < min {
                text.push('.');
            }
        }
        Value::String(text)
    }

    /// The label of the next piece not yet used as a label; numbered once every piece is used.
    fn unique_label(&mut self) -> String {
        let pieces = self.material.len().max(1);
        let fresh = (0..pieces)
            .map(|offset| self.material.label(self.next_piece + offset))
            .find(|label| !self.labels.contains(label));
        let label = fresh.unwrap_or_else(|| {
            let base = self.material.label(self.next_piece);
            (2..)
                .map(|n| format!("{base} ({n})"))
                .find(|candidate| !self.labels.contains(candidate))
                .unwrap_or(base)
        });
        self.labels.insert(label.clone());
        label
    }

    fn resolve(&self, reference: &str) -> Option<&'a Value> {
        let pointer = reference.strip_prefix('#')?;
        let root: &'a Value = self.root;
        root.pointer(pointer)
    }
}

/// A deterministic choice among `count` options, keyed by the value's path in the document.
fn pick(path: &str, count: usize) -> usize {
    let digest = Sha256::digest(path.as_bytes());
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(head) % count.max(1) as u64) as usize
}

/// Lower and upper bounds of a numeric schema, exclusive bounds moved inwards by `step`.
fn bounds(schema: &Map<String, Value>, step: f64) -> (Option<f64>, Option<f64>) {
    let get = |name: &str| schema.get(name).and_then(Value::as_f64);
    let low = match (get("minimum"), get("exclusiveMinimum")) {
        (Some(a), Some(b)) => Some(a.max(b + step)),
        (Some(a), None) => Some(a),
        (None, Some(b)) => Some(b + step),
        (None, None) => None,
    };
    let high = match (get("maximum"), get("exclusiveMaximum")) {
        (Some(a), Some(b)) => Some(a.min(b - step)),
        (Some(a), None) => Some(a),
        (None, Some(b)) => Some(b - step),
        (None, None) => None,
    };
    (low, high)
}

fn integer(schema: &Map<String, Value>, path: &str) -> Value {
    let (low, high) = bounds(schema, 1.0);
    let low = low.map(|value| value.ceil() as i64);
    let high = high.map(|value| value.floor() as i64);
    let value = match (low, high) {
        (Some(low), Some(high)) if high >= low => {
            let span = u64::try_from(high - low).unwrap_or(0).saturating_add(1);
            let offset =
                (pick(path, usize::try_from(span).unwrap_or(usize::MAX)) as u64).min(span - 1);
            low + offset as i64
        }
        (Some(low), _) => low.max(1),
        (None, Some(high)) => high.min(1),
        (None, None) => 1 + pick(path, 10) as i64,
    };
    Value::from(value)
}

fn number(schema: &Map<String, Value>, path: &str) -> Value {
    let (low, high) = bounds(schema, 0.001);
    let fraction = pick(path, 101) as f64 / 100.0;
    let value = match (low, high) {
        (Some(low), Some(high)) if high >= low => low + (high - low) * fraction,
        (Some(low), _) => low,
        (None, Some(high)) => high.min(1.0),
        (None, None) => fraction,
    };
    // Two decimals read like a model's number; rounding must not leave the bounds.
    let rounded = (value * 100.0).round() / 100.0;
    let inside = low.is_none_or(|low| rounded >= low) && high.is_none_or(|high| rounded <= high);
    Value::from(if inside { rounded } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn quotes() -> Material {
        Material::Quotes(vec![
            Quote {
                sentence: "Invoices are typed into the ledger by two clerks.".into(),
                filename: "finance.md".into(),
                file_id: "file-1".into(),
            },
            Quote {
                sentence: "The warehouse tracks stock on paper cards.".into(),
                filename: "ops.pdf".into(),
                file_id: "file-2".into(),
            },
        ])
    }

    #[test]
    fn passages_keep_whole_sentences_and_join_wrapped_lines() {
        let text = "# Finance\n\nInvoices are typed into the ledger\nby two clerks. Each month \
                    the totals are checked!\n\n- Stock is counted by hand every Friday.\n";
        let passages = split_passages(text);
        let all: Vec<&String> = passages.iter().flat_map(|p| &p.sentences).collect();
        assert_eq!(
            all,
            [
                "Invoices are typed into the ledger by two clerks.",
                "Each month the totals are checked!",
                "Stock is counted by hand every Friday."
            ]
        );
    }

    #[test]
    fn long_text_is_chunked_below_the_passage_size() {
        let text = "The quarterly review covers every regional office in detail. ".repeat(60);
        let passages = split_passages(&text);
        assert!(passages.len() > 1);
        assert!(passages.iter().all(|p| p.text.len() <= PASSAGE_CHARS));
    }

    #[test]
    fn prose_cites_every_quote_and_echoes_requested_headings() {
        let text = prose("Write the report.\n## Current state\n## Risks", &quotes());
        assert!(text.contains(
            "\"Invoices are typed into the ledger by two clerks.\" [source: finance.md]"
        ));
        assert!(text.contains("[source: ops.pdf]"));
        let first = text.find("## Current state").unwrap();
        assert!(text.find("## Risks").unwrap() > first);
    }

    #[test]
    fn labels_of_array_items_are_distinct() {
        // Two quotes, twenty titled items: labels cycle through the quotes, then get numbered.
        let schema = json!({"type": "array", "minItems": 20, "maxItems": 20,
            "items": {"type": "object", "properties": {"title": {"type": "string"}, "why": {"type": "string"}}}});
        let value = fill_schema(&schema, &quotes());
        let titles: BTreeSet<&str> = value
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["title"].as_str().unwrap())
            .collect();
        assert_eq!(titles.len(), 20, "{titles:?}");
    }

    #[test]
    fn schema_output_honours_bounds_enums_and_item_counts() {
        let schema = json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["cases", "score", "level", "ratio", "note"],
            "properties": {
                "cases": {"type": "array", "minItems": 5, "maxItems": 5, "items": {"$ref": "#/$defs/case"}},
                "score": {"type": "integer", "minimum": 0, "maximum": 100},
                "level": {"type": "string", "enum": ["Explorer", "Adopter", "Leader"]},
                "ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                "note": {"anyOf": [{"type": "null"}, {"type": "string"}]}
            },
            "$defs": {"case": {"type": "object", "additionalProperties": false,
                "required": ["title", "rationale"],
                "properties": {"title": {"type": "string"}, "rationale": {"type": "string"}}}}
        });
        let value = fill_schema(&schema, &quotes());
        assert_eq!(value["cases"].as_array().unwrap().len(), 5);
        assert!(
            value["cases"][0]["rationale"]
                .as_str()
                .unwrap()
                .contains("[source: ")
        );
        assert!(
            !value["cases"][0]["title"]
                .as_str()
                .unwrap()
                .contains("[source: ")
        );
        let score = value["score"].as_i64().unwrap();
        assert!((0..=100).contains(&score));
        assert!(["Explorer", "Adopter", "Leader"].contains(&value["level"].as_str().unwrap()));
        let ratio = value["ratio"].as_f64().unwrap();
        assert!(ratio > 0.0 && ratio <= 1.0);
        assert!(value["note"].is_string());
        assert_eq!(value, fill_schema(&schema, &quotes()), "deterministic");
    }

    #[test]
    fn without_documents_strings_come_from_the_request() {
        let material = Material::new(Vec::new(), "Acme Corp sells garden furniture online.");
        let value = fill_schema(&json!({"type": "string"}), &material);
        assert_eq!(value, "Acme Corp sells garden furniture online.");
    }
}

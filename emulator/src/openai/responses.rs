//! `/v1/responses`: a deterministic model with the file_search tool, strict JSON-schema output,
//! `max_output_tokens` truncation, usage accounting and `previous_response_id` chaining.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::{ApiError, Inner, JsonBody, OpenAiState, StoredResponse, unix_now};
use crate::generate::{self, Material, Quote};

/// Results per file_search call when the tool does not say (OpenAI's default is 10..50).
const DEFAULT_MAX_RESULTS: usize = 10;
/// Quotes in a prose answer: a few paragraphs' worth.
const PROSE_QUOTES: usize = 6;
/// OpenAI rejects smaller `max_output_tokens`.
const MIN_OUTPUT_TOKENS: u64 = 16;
/// The filename cited when `fabricate_citations` is on; made unique against real files.
const FABRICATED_FILENAME: &str = "fabricated-source.pdf";

/// Tokens as OpenAI bills them, approximated as one per four characters.
fn tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// The text of `input` (a string or a list of message items).
fn input_text(input: &Value) -> String {
    match input {
        Value::String(text) => text.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(|item| match item.get("content") {
                Some(Value::String(text)) => Some(text.clone()),
                Some(Value::Array(parts)) => Some(
                    parts
                        .iter()
                        .filter_map(|part| part.get("text").and_then(Value::as_str))
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
                _ => item
                    .get("output")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            })
            .collect::<Vec<_>>()
            .join("\n\n"),
        _ => String::new(),
    }
}

fn param_error(message: String, param: &str, code: &'static str) -> ApiError {
    ApiError::invalid_request(message, Some(param), Some(code))
}

/// Strict structured outputs require closed objects that list every property as required.
fn check_strict_schema(schema: &Value, name: &str, context: &str) -> Result<(), ApiError> {
    let invalid = |detail: String| {
        param_error(
            format!(
                "Invalid schema for response_format '{name}': In context=({context}), {detail}"
            ),
            "text.format.schema",
            "invalid_json_schema",
        )
    };
    let Some(object) = schema.as_object() else {
        return Ok(());
    };
    let is_object_type = match object.get("type") {
        Some(Value::String(kind)) => kind == "object",
        Some(Value::Array(kinds)) => kinds.iter().any(|kind| kind == "object"),
        _ => object.contains_key("properties"),
    };
    if is_object_type {
        if object.get("additionalProperties") != Some(&Value::Bool(false)) {
            return Err(invalid(
                "'additionalProperties' is required to be supplied and to be false.".to_string(),
            ));
        }
        let required: Vec<&str> = object
            .get("required")
            .and_then(Value::as_array)
            .map(|keys| keys.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(properties) = object.get("properties").and_then(Value::as_object) {
            if let Some(missing) = properties
                .keys()
                .find(|key| !required.contains(&key.as_str()))
            {
                return Err(invalid(format!(
                    "'required' is required to be supplied and to be an array including every key in properties. Missing '{missing}'."
                )));
            }
            for (key, property) in properties {
                check_strict_schema(property, name, &format!("{context}'properties', '{key}', "))?;
            }
        }
    }
    if let Some(items) = object.get("items") {
        check_strict_schema(items, name, &format!("{context}'items', "))?;
    }
    for keyword in ["anyOf", "oneOf", "allOf"] {
        if let Some(branches) = object.get(keyword).and_then(Value::as_array) {
            for (index, branch) in branches.iter().enumerate() {
                check_strict_schema(branch, name, &format!("{context}'{keyword}', {index}, "))?;
            }
        }
    }
    for keyword in ["$defs", "definitions"] {
        if let Some(definitions) = object.get(keyword).and_then(Value::as_object) {
            for (key, definition) in definitions {
                check_strict_schema(
                    definition,
                    name,
                    &format!("{context}'{keyword}', '{key}', "),
                )?;
            }
        }
    }
    Ok(())
}

/// One file_search hit.
struct Hit {
    file_id: String,
    filename: String,
    score: f32,
    text: String,
    sentences: Vec<String>,
    attributes: Value,
}

/// Searches the completed files of `store_ids` for `query`: top `limit` passages by term
/// overlap; ties keep store, file and passage order.
fn search(
    inner: &Inner,
    store_ids: &[String],
    query: &str,
    limit: usize,
) -> Result<Vec<Hit>, ApiError> {
    let now = Instant::now();
    let query_terms = generate::terms(query);
    let mut candidates: Vec<(f32, usize, Hit)> = Vec::new();
    for store_id in store_ids {
        let store = inner.stores.get(store_id).ok_or_else(|| {
            ApiError::not_found(format!("Vector store with id '{store_id}' not found."))
        })?;
        if store.expired {
            return Err(param_error(
                format!("Vector store {store_id} is expired. Create a new vector store."),
                "tools",
                "vector_store_expired",
            ));
        }
        let mut files: Vec<_> = store.files.values().collect();
        files.sort_by_key(|file| file.seq);
        for file in files {
            let Ok(passages) = &file.outcome else {
                continue;
            };
            if file.cancelled || now < file.ready_at {
                continue;
            }
            for passage in passages {
                let score = generate::overlap_score(&query_terms, &passage.text);
                let order = candidates.len();
                candidates.push((
                    score,
                    order,
                    Hit {
                        file_id: file.file_id.clone(),
                        filename: file.filename.clone(),
                        score,
                        text: passage.text.clone(),
                        sentences: passage.sentences.clone(),
                        attributes: file.attributes.clone(),
                    },
                ));
            }
        }
    }
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    Ok(candidates
        .into_iter()
        .take(limit)
        .map(|(_, _, hit)| hit)
        .collect())
}

/// Quotes from the hits: each hit's best-matching sentence first, then the others, no repeats.
fn quotes_from(hits: &[Hit], query: &str) -> Vec<Quote> {
    let query_terms = generate::terms(query);
    let mut best = Vec::new();
    let mut rest = Vec::new();
    for hit in hits {
        let mut ranked: Vec<(usize, &String)> = hit.sentences.iter().enumerate().collect();
        ranked.sort_by(|a, b| {
            generate::overlap_score(&query_terms, b.1)
                .total_cmp(&generate::overlap_score(&query_terms, a.1))
                .then(a.0.cmp(&b.0))
        });
        for (rank, (_, sentence)) in ranked.into_iter().enumerate() {
            let quote = Quote {
                sentence: sentence.clone(),
                filename: hit.filename.clone(),
                file_id: hit.file_id.clone(),
            };
            if rank == 0 { &mut best } else { &mut rest }.push(quote);
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    best.into_iter()
        .chain(rest)
        .filter(|quote| seen.insert(quote.sentence.clone()))
        .collect()
}

/// A filename that no vector store holds.
fn fabricated_filename(inner: &Inner) -> String {
    let existing: std::collections::BTreeSet<&str> = inner
        .stores
        .values()
        .flat_map(|store| store.files.values().map(|file| file.filename.as_str()))
        .chain(inner.files.values().map(|file| file.filename.as_str()))
        .collect();
    let mut candidate = FABRICATED_FILENAME.to_string();
    let mut counter = 1;
    while existing.contains(candidate.as_str()) {
        counter += 1;
        candidate = format!("fabricated-source-{counter}.pdf");
    }
    candidate
}

/// `file_citation` annotations for every complete `[source: NAME]` marker in `text`; `index`
/// is the character offset of the marker.
fn annotations(text: &str, file_ids: &BTreeMap<String, String>) -> Vec<Value> {
    const MARKER: &str = "[source: ";
    let mut out = Vec::new();
    let mut search_from = 0;
    while let Some(found) = text[search_from..].find(MARKER) {
        let start = search_from + found;
        let name_start = start + MARKER.len();
        let Some(length) = text[name_start..].find(']') else {
            break;
        };
        let filename = &text[name_start..name_start + length];
        out.push(json!({
            "type": "file_citation",
            "file_id": file_ids.get(filename).cloned().unwrap_or_else(|| "file-unknown".to_string()),
            "filename": filename,
            "index": text[..start].chars().count(),
        }));
        search_from = name_start + length;
    }
    out
}

pub(super) async fn create(
    State(state): State<Arc<OpenAiState>>,
    JsonBody(request): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .filter(|model| !model.is_empty())
        .ok_or_else(|| {
            param_error(
                "Missing required parameter: 'model'.".to_string(),
                "model",
                "missing_required_parameter",
            )
        })?
        .to_string();
    let instructions = match request.get("instructions") {
        Some(Value::String(text)) => text.clone(),
        Some(other @ Value::Array(_)) => input_text(other),
        _ => String::new(),
    };
    let input = request.get("input").map(input_text).unwrap_or_default();
    let max_output_tokens = request.get("max_output_tokens").and_then(Value::as_u64);
    if let Some(max) = max_output_tokens
        && max < MIN_OUTPUT_TOKENS
    {
        return Err(param_error(
            format!(
                "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= {MIN_OUTPUT_TOKENS}, but got {max} instead."
            ),
            "max_output_tokens",
            "integer_below_min_value",
        ));
    }
    let file_search = request
        .get("tools")
        .and_then(Value::as_array)
        .and_then(|tools| {
            tools
                .iter()
                .find(|tool| tool.get("type").and_then(Value::as_str) == Some("file_search"))
        });
    let include_results = request
        .get("include")
        .and_then(Value::as_array)
        .is_some_and(|include| {
            include
                .iter()
                .any(|item| item == "file_search_call.results")
        });
    let format = request
        .pointer("/text/format")
        .cloned()
        .unwrap_or(Value::Null);
    let format_type = format.get("type").and_then(Value::as_str).unwrap_or("text");
    let schema = match format_type {
        "json_schema" => {
            let schema = format.get("schema").cloned().ok_or_else(|| {
                param_error(
                    "Missing required parameter: 'text.format.schema'.".to_string(),
                    "text.format.schema",
                    "missing_required_parameter",
                )
            })?;
            let name = format
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if format.get("strict") == Some(&Value::Bool(true)) {
                check_strict_schema(&schema, name, "")?;
            }
            Some(schema)
        }
        "json_object" => Some(json!({
            "type": "object",
            "properties": {"answer": {"type": "string"}},
        })),
        _ => None,
    };
    let query = [instructions.as_str(), input.as_str()]
        .iter()
        .filter(|part| !part.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("\n\n");

    let mut inner = state.lock();
    let previous_transcript = match request.get("previous_response_id").and_then(Value::as_str) {
        Some(previous_id) => inner
            .responses
            .get(previous_id)
            .map(|stored| stored.transcript.clone())
            .ok_or_else(|| {
                param_error(
                    format!("Previous response with id '{previous_id}' not found."),
                    "previous_response_id",
                    "previous_response_not_found",
                )
            })?,
        None => String::new(),
    };

    let mut output = Vec::new();
    let mut retrieved_tokens = 0;
    let mut quotes = Vec::new();
    if let Some(tool) = file_search {
        let store_ids: Vec<String> = tool
            .get("vector_store_ids")
            .and_then(Value::as_array)
            .map(|ids| {
                ids.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let limit = tool
            .get("max_num_results")
            .and_then(Value::as_u64)
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(DEFAULT_MAX_RESULTS);
        let hits = search(&inner, &store_ids, &query, limit)?;
        retrieved_tokens = hits.iter().map(|hit| tokens(&hit.text)).sum::<u64>();
        quotes = quotes_from(&hits, &query);
        let results = include_results.then(|| {
            hits.iter()
                .map(|hit| {
                    json!({
                        "file_id": hit.file_id,
                        "filename": hit.filename,
                        "score": hit.score,
                        "text": hit.text,
                        "attributes": hit.attributes,
                    })
                })
                .collect::<Vec<_>>()
        });
        let (call_id, _) = inner.next_id("fs_");
        output.push(json!({
            "id": call_id,
            "type": "file_search_call",
            "status": "completed",
            "queries": [generate::terms(&input).into_iter().take(12).collect::<Vec<_>>().join(" ")],
            "results": results,
        }));
    }
    if inner.settings.fabricate_citations && !quotes.is_empty() {
        let fabricated = fabricated_filename(&inner);
        for quote in &mut quotes {
            quote.filename = fabricated.clone();
            quote.file_id = "file-fabricated".to_string();
        }
    }
    let file_ids: BTreeMap<String, String> = quotes
        .iter()
        .map(|quote| (quote.filename.clone(), quote.file_id.clone()))
        .collect();
    let full_text = match &schema {
        Some(schema) => {
            let material = Material::new(quotes, &input);
            generate::fill_schema(schema, &material).to_string()
        }
        None => {
            quotes.truncate(PROSE_QUOTES);
            let material = Material::new(quotes, &input);
            generate::prose(&query, &material)
        }
    };
    let full_tokens = tokens(&full_text);
    let (text, output_tokens, incomplete) = match max_output_tokens {
        Some(max) if full_tokens > max => {
            let keep = usize::try_from(max * 4).unwrap_or(usize::MAX);
            (full_text.chars().take(keep).collect::<String>(), max, true)
        }
        _ => (full_text, full_tokens, false),
    };
    let (message_id, _) = inner.next_id("msg_");
    output.push(json!({
        "id": message_id,
        "type": "message",
        "status": if incomplete { "incomplete" } else { "completed" },
        "role": "assistant",
        "content": [{
            "type": "output_text",
            "text": text,
            "annotations": annotations(&text, &file_ids),
            "logprobs": [],
        }],
    }));
    let cached_tokens = tokens(&previous_transcript);
    let input_tokens = cached_tokens + tokens(&query) + retrieved_tokens;
    let created_at = unix_now();
    let (response_id, _) = inner.next_id("resp_");
    let body = json!({
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "completed_at": if incomplete { Value::Null } else { json!(created_at) },
        "status": if incomplete { "incomplete" } else { "completed" },
        "error": null,
        "incomplete_details": if incomplete { json!({"reason": "max_output_tokens"}) } else { Value::Null },
        "instructions": request.get("instructions").cloned().unwrap_or(Value::Null),
        "max_output_tokens": max_output_tokens,
        "model": model,
        "output": output,
        "parallel_tool_calls": true,
        "previous_response_id": request.get("previous_response_id").cloned().unwrap_or(Value::Null),
        "store": true,
        "temperature": request.get("temperature").cloned().unwrap_or(json!(1.0)),
        "text": request.get("text").cloned().unwrap_or_else(|| json!({"format": {"type": "text"}})),
        "tool_choice": request.get("tool_choice").cloned().unwrap_or(json!("auto")),
        "tools": request.get("tools").cloned().unwrap_or(json!([])),
        "top_p": request.get("top_p").cloned().unwrap_or(json!(1.0)),
        "truncation": "disabled",
        "metadata": request.get("metadata").cloned().unwrap_or(json!({})),
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": cached_tokens, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
    });
    let transcript = [previous_transcript.as_str(), query.as_str(), text.as_str()]
        .iter()
        .filter(|part| !part.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("\n\n");
    inner.responses.insert(
        response_id,
        StoredResponse {
            body: body.clone(),
            transcript,
        },
    );
    Ok(Json(body))
}

fn no_such_response(id: &str) -> ApiError {
    ApiError::not_found(format!("Response with id '{id}' not found."))
}

pub(super) async fn retrieve(
    State(state): State<Arc<OpenAiState>>,
    Path(response_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let inner = state.lock();
    let stored = inner
        .responses
        .get(&response_id)
        .ok_or_else(|| no_such_response(&response_id))?;
    Ok(Json(stored.body.clone()))
}

pub(super) async fn delete(
    State(state): State<Arc<OpenAiState>>,
    Path(response_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut inner = state.lock();
    inner
        .responses
        .remove(&response_id)
        .ok_or_else(|| no_such_response(&response_id))?;
    Ok(Json(
        json!({"id": response_id, "object": "response", "deleted": true}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_point_at_each_marker() {
        let ids = BTreeMap::from([("a.md".to_string(), "file-1".to_string())]);
        let text = "Quote one [source: a.md]. Über [source: b.md] and [source: cut";
        let found = annotations(text, &ids);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0]["file_id"], "file-1");
        assert_eq!(found[0]["index"], 10);
        assert_eq!(found[1]["filename"], "b.md");
        assert_eq!(found[1]["index"], 31);
    }

    #[test]
    fn strict_schemas_must_close_objects_and_require_every_key() {
        let open =
            json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]});
        assert!(check_strict_schema(&open, "s", "").is_err());
        let partial = json!({"type": "object", "additionalProperties": false,
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "required": ["a"]});
        assert!(check_strict_schema(&partial, "s", "").is_err());
        let nested_open = json!({"type": "object", "additionalProperties": false, "required": ["a"],
            "properties": {"a": {"type": "array", "items": {"type": "object", "properties": {}}}}});
        assert!(check_strict_schema(&nested_open, "s", "").is_err());
        let good = json!({"type": "object", "additionalProperties": false, "required": ["a"],
            "properties": {"a": {"anyOf": [{"type": "string"}, {"type": "null"}]}}});
        assert!(check_strict_schema(&good, "s", "").is_ok());
    }
}

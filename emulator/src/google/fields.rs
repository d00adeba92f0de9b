//! Drive's partial responses: the `fields` parameter (`nextPageToken,files(id,name)`, `*`).
//!
//! Without `fields` Drive v3 returns only a few properties (`kind,id,name,mimeType` for a file),
//! so a client that forgets to ask for `md5Checksum` or `webViewLink` does not get them; the
//! emulator behaves the same so such a bug shows up in tests, not in production.

use serde_json::{Map, Value};

/// What Drive returns for a file when no `fields` parameter is given.
pub(crate) const DEFAULT_FILE_FIELDS: &str = "kind,id,name,mimeType";
/// What Drive returns for a file list when no `fields` parameter is given.
pub(crate) const DEFAULT_LIST_FIELDS: &str =
    "kind,incompleteSearch,nextPageToken,files(kind,id,name,mimeType)";

/// A parsed field mask: each selected property, with an optional mask for its sub-objects.
#[derive(Debug)]
enum Selection {
    All,
    Some(Vec<(String, Option<Selection>)>),
}

/// Keeps only the properties of `value` that `mask` selects.
pub(crate) fn select(value: &Value, mask: &str) -> Value {
    let mut chars = mask.chars().peekable();
    let selection = parse(&mut chars);
    apply(value, &selection)
}

fn parse(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Selection {
    let mut items = Vec::new();
    let mut name = String::new();
    let mut all = false;
    let finish = |name: &mut String, sub: Option<Selection>, items: &mut Vec<_>, all: &mut bool| {
        let trimmed = name.trim().to_string();
        name.clear();
        if trimmed == "*" {
            *all = true;
        } else if !trimmed.is_empty() {
            // `files/id` is the path form of `files(id)`.
            let mut parts = trimmed.rsplit('/');
            let leaf = parts.next().unwrap_or_default().to_string();
            let mut entry: (String, Option<Selection>) = (leaf, sub);
            for parent in parts {
                entry = (parent.to_string(), Some(Selection::Some(vec![entry])));
            }
            items.push(entry);
        }
    };
    while let Some(c) = chars.next() {
        match c {
            ',' => finish(&mut name, None, &mut items, &mut all),
            '(' => {
                let sub = parse(chars);
                finish(&mut name, Some(sub), &mut items, &mut all);
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if chars.peek() == Some(&',') {
                    chars.next();
                }
            }
            ')' => break,
            _ => name.push(c),
        }
    }
    finish(&mut name, None, &mut items, &mut all);
    if all {
        Selection::All
    } else {
        Selection::Some(items)
    }
}

fn apply(value: &Value, selection: &Selection) -> Value {
    let Selection::Some(items) = selection else {
        return value.clone();
    };
    match value {
        Value::Array(elements) => {
            Value::Array(elements.iter().map(|e| apply(e, selection)).collect())
        }
        Value::Object(object) => {
            let mut kept = Map::new();
            for (name, sub) in items {
                if let Some(found) = object.get(name) {
                    let filtered = match sub {
                        Some(sub) => apply(found, sub),
                        None => found.clone(),
                    };
                    merge_into(&mut kept, name, filtered);
                }
            }
            Value::Object(kept)
        }
        other => other.clone(),
    }
}

/// Two selections of the same property (`files(id),files(name)`) add up.
fn merge_into(kept: &mut Map<String, Value>, name: &str, value: Value) {
    match (kept.get_mut(name), value) {
        (Some(Value::Object(existing)), Value::Object(more)) => existing.extend(more),
        (Some(Value::Array(existing)), Value::Array(more)) => {
            for (old, new) in existing.iter_mut().zip(more) {
                if let (Value::Object(old), Value::Object(new)) = (old, new) {
                    old.extend(new);
                }
            }
        }
        (_, value) => {
            kept.insert(name.to_string(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_selection_keeps_only_named_properties() {
        let list = json!({
            "kind": "drive#fileList",
            "nextPageToken": "t",
            "files": [{"id": "a", "name": "A", "size": "3"}, {"id": "b", "name": "B"}],
        });
        let selected = select(&list, "nextPageToken, files(id,name)");
        assert_eq!(
            selected,
            json!({"nextPageToken": "t", "files": [{"id": "a", "name": "A"}, {"id": "b", "name": "B"}]})
        );
    }

    #[test]
    fn star_and_path_forms() {
        let file = json!({"id": "a", "name": "A", "capabilities": {"canEdit": true, "canDownload": false}});
        assert_eq!(select(&file, "*"), file);
        assert_eq!(
            select(&file, "id,capabilities/canEdit"),
            json!({"id": "a", "capabilities": {"canEdit": true}})
        );
        assert_eq!(
            select(&json!({"files": [file.clone()]}), "files(*)"),
            json!({"files": [file]})
        );
    }
}

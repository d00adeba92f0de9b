//! File and folder names that are safe on every file system, unique and stable (SPEC §8).
//!
//! Drive allows any name: `../../etc/passwd`, `a/b`, `CON`, control characters, two files called
//! `report.pdf` in one folder. Each becomes one safe path component: separators and characters
//! Windows forbids turn into `_`, control characters are dropped, leading dots are removed (a
//! name must not pass for a hidden or temporary file, nor be `.` or `..`), reserved device names
//! get a `_`, and length is capped in bytes without splitting a character. Unicode, including
//! 4-byte characters, is kept. Collisions (compared case-insensitively, so a copy on macOS or
//! Windows keeps every file) are resolved as `name (2).ext`, numbered in the order of the
//! source ids, so the same folder always gives the same names.

use std::collections::HashSet;

/// Longest name in bytes: ext4 allows 255; room is left for a ` (NN)` suffix and `.md`.
pub const MAX_NAME_BYTES: usize = 200;

const WINDOWS_RESERVED: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// One safe path component for `name`.
pub fn sanitize(name: &str) -> String {
    let replaced: String = name
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| {
            if matches!(c, '/' | '\\' | '<' | '>' | ':' | '"' | '|' | '?' | '*') {
                '_'
            } else {
                c
            }
        })
        .collect();
    // Windows drops trailing dots and spaces; a leading dot would hide the file (or make it look
    // like one of our temp files).
    let trimmed = replaced
        .trim()
        .trim_end_matches(['.', ' '])
        .trim_start_matches(['.', ' ']);
    let mut safe = if trimmed.is_empty() {
        "unnamed".to_string()
    } else {
        trimmed.to_string()
    };
    let (stem, ext) = split_extension(&safe);
    if WINDOWS_RESERVED
        .iter()
        .any(|r| r.eq_ignore_ascii_case(stem))
    {
        safe = format!("{stem}_{ext}");
    }
    cap_length(&safe, MAX_NAME_BYTES)
}

/// `("report", ".pdf")`; a name without a dot (or only a leading one) has no extension.
pub fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 && name.len() - i <= 10 => (&name[..i], &name[i..]),
        _ => (name, ""),
    }
}

/// Truncates the stem so the whole name fits in `max` bytes, keeping the extension.
fn cap_length(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let (stem, ext) = split_extension(name);
    let mut end = max.saturating_sub(ext.len());
    while !stem.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ext}", stem[..end].trim_end())
}

/// Makes names unique within one folder. `entries` are `(source id, wanted name)`; the result
/// gives each entry's final name, in the input order. Entries are numbered by source id, so the
/// outcome does not depend on listing order.
pub fn dedupe(entries: &[(String, String)]) -> Vec<String> {
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|&a, &b| entries[a].0.cmp(&entries[b].0));
    let wanted: HashSet<String> = entries
        .iter()
        .map(|(_, name)| name.to_lowercase())
        .collect();
    let mut taken: HashSet<String> = HashSet::new();
    let mut result = vec![String::new(); entries.len()];
    for index in order {
        let name = &entries[index].1;
        let mut candidate = name.clone();
        let mut n = 1;
        // A generated name must not take a name some other entry asked for.
        while taken.contains(&candidate.to_lowercase())
            || (n > 1 && wanted.contains(&candidate.to_lowercase()))
        {
            n += 1;
            let (stem, ext) = split_extension(name);
            candidate = format!("{stem} ({n}){ext}");
        }
        taken.insert(candidate.to_lowercase());
        result[index] = candidate;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_become_safe_components() {
        let cases = [
            ("../../etc/passwd", "_.._etc_passwd"),
            ("a/b.pdf", "a_b.pdf"),
            ("..", "unnamed"),
            (".", "unnamed"),
            ("", "unnamed"),
            (".hidden.md", "hidden.md"),
            (".tmp-abc", "tmp-abc"),
            ("CON", "CON_"),
            ("con.txt", "con_.txt"),
            ("Com1.pdf", "Com1_.pdf"),
            ("CONSOLE.txt", "CONSOLE.txt"),
            ("bell\u{7}tab\tnew\nline.md", "belltabnewline.md"),
            ("what?*<>|:\".md", "what_______.md"),
            ("trailing dots... ", "trailing dots"),
            ("Übersicht 😀 计划.md", "Übersicht 😀 计划.md"),
            ("back\\slash.txt", "back_slash.txt"),
        ];
        for (input, expected) in cases {
            assert_eq!(sanitize(input), expected, "{input:?}");
        }
    }

    #[test]
    fn long_names_are_capped_on_a_character_boundary_keeping_the_extension() {
        let name = format!("{}.pdf", "😀".repeat(100));
        let safe = sanitize(&name);
        assert!(safe.len() <= MAX_NAME_BYTES, "{}", safe.len());
        assert!(safe.ends_with("😀.pdf"));
    }

    #[test]
    fn duplicates_are_numbered_by_id_whatever_the_listing_order() {
        let entries = vec![
            ("id-c".to_string(), "report.pdf".to_string()),
            ("id-a".to_string(), "Report.pdf".to_string()),
            ("id-b".to_string(), "report (2).pdf".to_string()),
            ("id-d".to_string(), "notes".to_string()),
            ("id-0".to_string(), "report.pdf".to_string()),
        ];
        let names = dedupe(&entries);
        assert_eq!(
            names,
            [
                "report (4).pdf",
                "Report (3).pdf",
                "report (2).pdf",
                "notes",
                "report.pdf"
            ]
        );
        let mut reversed = entries.clone();
        reversed.reverse();
        let mut again = dedupe(&reversed);
        again.reverse();
        assert_eq!(again, names);
    }
}

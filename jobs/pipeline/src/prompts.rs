//! The prompt templates: files under `prompts/`, rendered with minijinja.
//!
//! The templates are embedded at build time, so the binary needs no files beside it;
//! `--prompts-dir DIR` replaces any of them for one run (a file in DIR with a template's name
//! wins; any other `.j2` file there is refused, since a misspelt name would be silently ignored).
//! Each template's SHA-256 is part of its step's checkpoint fingerprint: editing one template
//! re-runs exactly the steps that render it, and those whose inputs change as a result.

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;
use shared::markers::sha256_hex;
use shared::{Error, Result};

/// The system instructions every model call gets (role, citation rule).
pub const INSTRUCTIONS: &str = "instructions.j2";
pub const PROFILE: &str = "s02_profile.j2";
pub const EVIDENCE: &str = "s03_evidence.j2";
pub const PART_A: &str = "s04_part_a.j2";
pub const USE_CASES: &str = "s05_use_cases.j2";
pub const DEEP_DIVE: &str = "s06_deep_dive.j2";
pub const PART_B: &str = "s07_part_b.j2";
pub const CONSOLIDATE: &str = "s08_consolidate.j2";
pub const STYLE: &str = "s09_style.j2";

/// Every template's name.
pub const ALL: [&str; 9] = [
    INSTRUCTIONS,
    PROFILE,
    EVIDENCE,
    PART_A,
    USE_CASES,
    DEEP_DIVE,
    PART_B,
    CONSOLIDATE,
    STYLE,
];

/// Every template, with its embedded source.
const EMBEDDED: [(&str, &str); 9] = [
    (INSTRUCTIONS, include_str!("../prompts/instructions.j2")),
    (PROFILE, include_str!("../prompts/s02_profile.j2")),
    (EVIDENCE, include_str!("../prompts/s03_evidence.j2")),
    (PART_A, include_str!("../prompts/s04_part_a.j2")),
    (USE_CASES, include_str!("../prompts/s05_use_cases.j2")),
    (DEEP_DIVE, include_str!("../prompts/s06_deep_dive.j2")),
    (PART_B, include_str!("../prompts/s07_part_b.j2")),
    (CONSOLIDATE, include_str!("../prompts/s08_consolidate.j2")),
    (STYLE, include_str!("../prompts/s09_style.j2")),
];

/// The loaded templates, their hashes and where each came from.
pub struct Prompts {
    env: Environment<'static>,
    hashes: BTreeMap<&'static str, String>,
    overridden: Vec<&'static str>,
}

impl Prompts {
    /// The embedded templates, each replaced by `dir/<name>` when that file exists.
    pub fn load(dir: Option<&Path>) -> Result<Prompts> {
        if let Some(dir) = dir {
            refuse_unknown_templates(dir)?;
        }
        let mut env = Environment::new();
        // A variable a template names but the step does not provide is an error, not "".
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        let mut hashes = BTreeMap::new();
        let mut overridden = Vec::new();
        for (name, embedded) in EMBEDDED {
            let source = match dir.map(|d| d.join(name)).filter(|p| p.is_file()) {
                Some(path) => {
                    overridden.push(name);
                    std::fs::read_to_string(&path).map_err(|e| {
                        Error::bad_input(format!(
                            "cannot read prompt template {}: {e}",
                            path.display()
                        ))
                    })?
                }
                None => embedded.to_string(),
            };
            hashes.insert(name, sha256_hex(source.as_bytes()));
            env.add_template_owned(name, source).map_err(|e| {
                Error::bad_input(format!("prompt template {name} does not parse: {e}"))
            })?;
        }
        Ok(Prompts {
            env,
            hashes,
            overridden,
        })
    }

    /// The SHA-256 of a template's source.
    pub fn hash(&self, name: &str) -> String {
        self.hashes.get(name).cloned().unwrap_or_default()
    }

    /// The templates taken from `--prompts-dir`.
    pub fn overridden(&self) -> &[&'static str] {
        &self.overridden
    }

    /// Renders `name` with `context`. A failure is the template's fault (an override that uses
    /// a variable the step does not provide), hence bad input.
    pub fn render(&self, name: &str, context: &impl Serialize) -> Result<String> {
        let template = self
            .env
            .get_template(name)
            .map_err(|e| Error::internal(format!("unknown prompt template {name}: {e}")))?;
        template
            .render(minijinja::Value::from_serialize(context))
            .map_err(|e| {
                Error::bad_input(format!("prompt template {name} cannot be rendered: {e:#}"))
            })
    }
}

fn refuse_unknown_templates(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::bad_input(format!("cannot read --prompts-dir {}: {e}", dir.display()))
    })?;
    let known: Vec<&str> = EMBEDDED.iter().map(|(name, _)| *name).collect();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".j2") && !known.contains(&name.as_str()) {
            return Err(Error::bad_input(format!(
                "unknown prompt template {} in --prompts-dir; known templates: {}",
                entry.path().display(),
                known.join(", ")
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_changes_only_its_own_hash() {
        let embedded = Prompts::load(None).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(PART_B), "Part B for {{ company.name }}.").unwrap();
        let custom = Prompts::load(Some(tmp.path())).unwrap();
        assert_eq!(custom.overridden(), [PART_B]);
        assert_ne!(custom.hash(PART_B), embedded.hash(PART_B));
        for (name, _) in EMBEDDED.iter().filter(|(n, _)| *n != PART_B) {
            assert_eq!(custom.hash(name), embedded.hash(name), "{name}");
        }
        let text = custom
            .render(PART_B, &serde_json::json!({"company": {"name": "Acme"}}))
            .unwrap();
        assert_eq!(text, "Part B for Acme.");
    }

    #[test]
    fn unknown_files_and_missing_variables_are_bad_input() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("s05_usecases.j2"), "x").unwrap();
        let err = Prompts::load(Some(tmp.path())).err().unwrap();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("s05_usecases.j2"), "{err}");

        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(PROFILE), "{{ no_such_variable }}").unwrap();
        let prompts = Prompts::load(Some(tmp.path())).unwrap();
        let err = prompts.render(PROFILE, &serde_json::json!({})).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}

//! Run inputs: one schema for Paperspace, compose and `make` (SPEC §3).
//!
//! Values come from five places, highest precedence first: command-line flags and their
//! environment variables ([`InputArgs`]), the legacy `--company-info` text block, a directory of
//! one file per key (how Paperspace mounts a workflow's string inputs: `/inputs/company_name`),
//! an inputs file (YAML or JSON), then defaults. [`InputArgs::resolve`] merges them and validates every key
//! BEFORE a job touches the network, so a typo costs nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::slug::{is_valid_slug, slugify};

/// The keys of the schema, in the order of SPEC §3.
pub const KEYS: [&str; 10] = [
    "company_name",
    "company_slug",
    "use_cases_count",
    "company_description",
    "readiness_score",
    "readiness_category",
    "report_expectations",
    "google_drive_link",
    "model_set",
    "run_id",
];

/// The run-input flags every job accepts. Each has an environment variable of the same name in
/// upper case, so a workflow can pass inputs either way.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct InputArgs {
    /// Inputs file (YAML or JSON) with the keys of SPEC §3; flags override it.
    #[arg(long, env = "INPUTS_FILE", value_name = "FILE")]
    pub inputs_file: Option<PathBuf>,
    /// Directory holding one file per key (e.g. `company_name`), as Paperspace mounts string
    /// inputs under `/inputs`; missing files are simply absent keys.
    #[arg(long, env = "INPUT_VALUES_DIR", value_name = "DIR")]
    pub input_values_dir: Option<PathBuf>,
    /// Legacy profile block of `{Label}: value` lines (e.g. `{Overall Readiness score}: 75`).
    #[arg(long, env = "COMPANY_INFO", value_name = "TEXT")]
    pub company_info: Option<String>,
    /// The client company's name (required): 1 to 200 characters.
    #[arg(long, env = "COMPANY_NAME")]
    pub company_name: Option<String>,
    /// Directory name for the company; derived from the name when absent.
    #[arg(long, env = "COMPANY_SLUG")]
    pub company_slug: Option<String>,
    /// Number of AI use cases in the report: 1 to 20 (default 7).
    #[arg(long, env = "USE_CASES_COUNT")]
    pub use_cases_count: Option<String>,
    /// Free-text description of the company.
    #[arg(long, env = "COMPANY_DESCRIPTION")]
    pub company_description: Option<String>,
    /// Overall readiness score 0 to 100 (default 50); "75", "75%" and "75 %" are accepted.
    #[arg(long, env = "READINESS_SCORE")]
    pub readiness_score: Option<String>,
    /// Explorer, Adopter or Leader (default Explorer).
    #[arg(long, env = "READINESS_CATEGORY")]
    pub readiness_category: Option<String>,
    /// What the client expects from the report.
    #[arg(long, env = "REPORT_EXPECTATIONS")]
    pub report_expectations: Option<String>,
    /// Drive folder or file with the documents: URL, `?id=` URL or bare id.
    #[arg(long, env = "GOOGLE_DRIVE_LINK")]
    pub google_drive_link: Option<String>,
    /// cheap, better or gpt5 (default gpt5).
    #[arg(long, env = "MODEL_SET")]
    pub model_set: Option<String>,
    /// Identifier carried by every artifact of the run: `[A-Za-z0-9_-]{1,64}`.
    #[arg(long, env = "RUN_ID")]
    pub run_id: Option<String>,
}

/// Where a raw value came from; recorded in the submission file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Flag,
    CompanyInfo,
    ValuesDir,
    InputsFile,
}

/// A raw value as received, before validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    pub source: Source,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadinessCategory {
    Explorer,
    Adopter,
    Leader,
}

/// Which models write the report (SPEC §7.3); the names map to models in the pipeline's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelSet {
    Cheap,
    Better,
    Gpt5,
}

impl ModelSet {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelSet::Cheap => "cheap",
            ModelSet::Better => "better",
            ModelSet::Gpt5 => "gpt5",
        }
    }
}

/// Validated run inputs with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInputs {
    pub company_name: String,
    pub company_slug: String,
    pub use_cases_count: u32,
    pub company_description: String,
    pub readiness_score: u8,
    pub readiness_category: ReadinessCategory,
    pub report_expectations: String,
    /// The link as given ("" when none).
    pub google_drive_link: String,
    /// The Drive id parsed from the link, when there is one.
    pub google_drive_id: Option<String>,
    pub model_set: ModelSet,
    /// The run id if one was given; `None` lets a job generate one (setup) or adopt the one in
    /// its upstream marker (the later jobs).
    pub run_id: Option<String>,
}

/// Resolved inputs plus the raw values they came from, as written to the submission file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resolution {
    pub received: BTreeMap<String, Received>,
    pub resolved: RunInputs,
}

impl InputArgs {
    /// Merges every source and validates. Errors name the key, the value and the rule.
    pub fn resolve(&self) -> Result<Resolution> {
        let mut received: BTreeMap<String, Received> = BTreeMap::new();
        if let Some(path) = &self.inputs_file {
            for (key, value) in read_inputs_file(path)? {
                received.insert(
                    key,
                    Received {
                        source: Source::InputsFile,
                        value,
                    },
                );
            }
        }
        if let Some(dir) = &self.input_values_dir {
            for (key, value) in read_input_values_dir(dir)? {
                received.insert(
                    key,
                    Received {
                        source: Source::ValuesDir,
                        value,
                    },
                );
            }
        }
        if let Some(text) = &self.company_info {
            for (key, value) in parse_company_info(text)? {
                received.insert(
                    key,
                    Received {
                        source: Source::CompanyInfo,
                        value,
                    },
                );
            }
        }
        for (key, value) in self.flag_values() {
            if let Some(value) = value {
                received.insert(
                    key.to_string(),
                    Received {
                        source: Source::Flag,
                        value: value.clone(),
                    },
                );
            }
        }
        let raw: BTreeMap<&str, &str> = received
            .iter()
            .map(|(k, r)| (k.as_str(), r.value.as_str()))
            .collect();
        let resolved = validate(&raw)?;
        Ok(Resolution { received, resolved })
    }

    fn flag_values(&self) -> [(&'static str, &Option<String>); 10] {
        [
            ("company_name", &self.company_name),
            ("company_slug", &self.company_slug),
            ("use_cases_count", &self.use_cases_count),
            ("company_description", &self.company_description),
            ("readiness_score", &self.readiness_score),
            ("readiness_category", &self.readiness_category),
            ("report_expectations", &self.report_expectations),
            ("google_drive_link", &self.google_drive_link),
            ("model_set", &self.model_set),
            ("run_id", &self.run_id),
        ]
    }
}

fn invalid(key: &str, value: &str, rule: &str) -> Error {
    Error::bad_input(format!("invalid {key} {value:?}: {rule}"))
}

/// Validates raw string values (any source) into [`RunInputs`].
pub fn validate(raw: &BTreeMap<&str, &str>) -> Result<RunInputs> {
    let get = |key: &str| raw.get(key).copied();

    let company_name = get("company_name").unwrap_or("").trim().to_string();
    let name_len = company_name.chars().count();
    if !(1..=200).contains(&name_len) {
        return Err(invalid(
            "company_name",
            &company_name,
            "must be 1 to 200 characters after trimming; pass --company-name or COMPANY_NAME",
        ));
    }
    if !company_name.chars().any(char::is_alphanumeric) {
        return Err(invalid(
            "company_name",
            &company_name,
            "must contain at least one letter or digit",
        ));
    }

    let company_slug = match get("company_slug").map(str::trim).filter(|s| !s.is_empty()) {
        Some(slug) if is_valid_slug(slug) => slug.to_string(),
        Some(slug) => {
            return Err(invalid(
                "company_slug",
                slug,
                &format!(
                    "must be lowercase [a-z0-9_], 1 to 64 characters, no leading, trailing or \
                     double '_' (e.g. {:?}); leave it out to derive it from company_name",
                    slugify(slug)
                ),
            ));
        }
        None => slugify(&company_name),
    };

    let use_cases_count = match get("use_cases_count").map(str::trim) {
        None | Some("") => 7,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=20).contains(&n) => n,
            _ => {
                return Err(invalid(
                    "use_cases_count",
                    v,
                    "must be an integer from 1 to 20",
                ));
            }
        },
    };

    let readiness_score = match get("readiness_score").map(str::trim) {
        None | Some("") => 50,
        Some(v) => match v.trim_end_matches('%').trim_end().parse::<u8>() {
            Ok(n) if n <= 100 => n,
            _ => {
                return Err(invalid(
                    "readiness_score",
                    v,
                    "must be an integer from 0 to 100 (\"75\", \"75%\" and \"75 %\" are accepted)",
                ));
            }
        },
    };

    let readiness_category = match get("readiness_category").map(str::trim) {
        None | Some("") => ReadinessCategory::Explorer,
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "explorer" => ReadinessCategory::Explorer,
            "adopter" => ReadinessCategory::Adopter,
            "leader" => ReadinessCategory::Leader,
            _ => {
                return Err(invalid(
                    "readiness_category",
                    v,
                    "must be Explorer, Adopter or Leader",
                ));
            }
        },
    };

    let google_drive_link = get("google_drive_link").unwrap_or("").trim().to_string();
    let google_drive_id = if google_drive_link.is_empty() {
        None
    } else {
        Some(crate::drive_link::parse_drive_id(
            "google_drive_link",
            &google_drive_link,
        )?)
    };

    let model_set = match get("model_set").map(str::trim) {
        None | Some("") => ModelSet::Gpt5,
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "cheap" => ModelSet::Cheap,
            "better" => ModelSet::Better,
            "gpt5" => ModelSet::Gpt5,
            _ => return Err(invalid("model_set", v, "must be cheap, better or gpt5")),
        },
    };

    let run_id = match get("run_id").map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(v) if is_valid_run_id(v) => Some(v.to_string()),
        Some(v) => return Err(invalid("run_id", v, "must match [A-Za-z0-9_-]{1,64}")),
    };

    Ok(RunInputs {
        company_name,
        company_slug,
        use_cases_count,
        company_description: get("company_description").unwrap_or("").trim().to_string(),
        readiness_score,
        readiness_category,
        report_expectations: get("report_expectations").unwrap_or("").trim().to_string(),
        google_drive_link,
        google_drive_id,
        model_set,
        run_id,
    })
}

/// `[A-Za-z0-9_-]{1,64}`.
pub fn is_valid_run_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A fresh run id: the UTC start time and 8 random hex digits, e.g. `20261203_101500_9f3a0c1e`.
pub fn generate_run_id() -> String {
    format!(
        "{}_{:08x}",
        crate::layout::timestamp(chrono::Utc::now()),
        fastrand::u32(..)
    )
}

/// Reads an inputs file (YAML or JSON; JSON is valid YAML). Scalars of any type become strings so
/// that `use_cases_count: 5` and `use_cases_count: "5"` mean the same; unknown keys are refused
/// (a misspelt key would otherwise be silently ignored).
pub fn read_inputs_file(path: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::bad_input(format!(
            "cannot read inputs file {}: {e}; check --inputs-file",
            path.display()
        ))
    })?;
    parse_inputs_text(&text)
        .map_err(|msg| Error::bad_input(format!("invalid inputs file {}: {msg}", path.display())))
}

fn parse_inputs_text(text: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let doc: serde_yaml::Value = serde_yaml::from_str(text)
        .map_err(|e| format!("not YAML or JSON ({e}); write one `key: value` per line"))?;
    let map = match doc {
        serde_yaml::Value::Mapping(map) => map,
        serde_yaml::Value::Null => return Ok(Vec::new()),
        _ => return Err("expected a mapping of keys to values".into()),
    };
    let mut out = Vec::new();
    for (key, value) in map {
        let key = key
            .as_str()
            .ok_or("every key must be a string")?
            .to_string();
        if !KEYS.contains(&key.as_str()) {
            return Err(format!(
                "unknown key {key:?}; known keys: {}",
                KEYS.join(", ")
            ));
        }
        let value = match value {
            serde_yaml::Value::Null => continue,
            serde_yaml::Value::String(s) => s,
            serde_yaml::Value::Number(n) => n.to_string(),
            serde_yaml::Value::Bool(b) => b.to_string(),
            _ => {
                return Err(format!(
                    "value of {key:?} must be a single value, not a list or mapping"
                ));
            }
        };
        out.push((key, value));
    }
    Ok(out)
}

/// Reads `<dir>/<key>` for every key of the schema; a file's content (without the trailing
/// newline) is the value.
pub fn read_input_values_dir(dir: &Path) -> Result<Vec<(String, String)>> {
    if !dir.is_dir() {
        return Err(Error::bad_input(format!(
            "--input-values-dir {} is not a directory; pass the directory holding one file per input",
            dir.display()
        )));
    }
    let mut out = Vec::new();
    for key in KEYS {
        let path = dir.join(key);
        if path.is_file() {
            let value = std::fs::read_to_string(&path).map_err(|e| {
                Error::bad_input(format!("cannot read input file {}: {e}", path.display()))
            })?;
            out.push((
                key.to_string(),
                value.trim_end_matches(['\n', '\r']).to_string(),
            ));
        }
    }
    Ok(out)
}

/// The labels of the legacy `--company-info` block and the keys they fill.
const COMPANY_INFO_LABELS: [(&str, &str); 6] = [
    ("company name", "company_name"),
    ("company description", "company_description"),
    ("overall readiness score", "readiness_score"),
    ("agent-readiness category", "readiness_category"),
    ("report expectations", "report_expectations"),
    ("number of use cases to generate", "use_cases_count"),
];

/// Parses the legacy block of `{Label}: value` lines.
///
/// Each label line sets its key from the rest of that line only: an empty value stays empty
/// (the original's regex let it swallow the next line). Lines that are not label lines continue
/// the previous value (multi-line descriptions). The last line counts with or without a trailing
/// newline. Unknown labels are refused by name.
pub fn parse_company_info(text: &str) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix('{')
            && let Some((label, value)) = rest.split_once('}')
        {
            let value = value.trim_start();
            let Some(value) = value.strip_prefix(':') else {
                return Err(Error::bad_input(format!(
                    "invalid --company-info line {trimmed:?}: expected `{{Label}}: value`"
                )));
            };
            let label_lc = label.trim().to_lowercase();
            let Some((_, key)) = COMPANY_INFO_LABELS.iter().find(|(l, _)| *l == label_lc) else {
                let known: Vec<&str> = COMPANY_INFO_LABELS.iter().map(|(l, _)| *l).collect();
                return Err(Error::bad_input(format!(
                    "unknown --company-info label {{{label}}}; known labels (any case): {}",
                    known.join(", ")
                )));
            };
            out.retain(|(k, _)| k != key);
            out.push((key.to_string(), value.trim().to_string()));
        } else if let Some((_, value)) = out.last_mut() {
            if !trimmed.is_empty() {
                if !value.is_empty() {
                    value.push('\n');
                }
                value.push_str(trimmed);
            }
        } else if !trimmed.is_empty() {
            return Err(Error::bad_input(format!(
                "invalid --company-info text {trimmed:?}: it must start with a `{{Label}}: value` line"
            )));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> InputArgs {
        InputArgs {
            company_name: Some("Acme Corp.".into()),
            ..Default::default()
        }
    }

    fn err_of(args: InputArgs) -> String {
        let err = args.resolve().unwrap_err();
        assert_eq!(err.exit_code(), 2, "{err}");
        err.to_string()
    }

    #[test]
    fn defaults() {
        let r = args().resolve().unwrap().resolved;
        assert_eq!(r.company_slug, "acme_corp");
        assert_eq!(r.use_cases_count, 7);
        assert_eq!(r.readiness_score, 50);
        assert_eq!(r.readiness_category, ReadinessCategory::Explorer);
        assert_eq!(r.model_set, ModelSet::Gpt5);
        assert_eq!(r.google_drive_id, None);
        assert_eq!(r.run_id, None);
    }

    #[test]
    fn score_forms_and_category_case() {
        for (raw, want) in [
            ("75", 75),
            ("75%", 75),
            ("75 %", 75),
            ("0", 0),
            ("100", 100),
        ] {
            let a = InputArgs {
                readiness_score: Some(raw.into()),
                ..args()
            };
            assert_eq!(a.resolve().unwrap().resolved.readiness_score, want, "{raw}");
        }
        let a = InputArgs {
            readiness_category: Some("aDoPtEr".into()),
            ..args()
        };
        assert_eq!(
            a.resolve().unwrap().resolved.readiness_category,
            ReadinessCategory::Adopter
        );
    }

    #[test]
    fn bad_values_name_key_value_and_rule() {
        for bad in ["0", "21", "-1", "abc", "7.5"] {
            let msg = err_of(InputArgs {
                use_cases_count: Some(bad.into()),
                ..args()
            });
            assert!(
                msg.contains("use_cases_count") && msg.contains(&format!("{bad:?}")),
                "{msg}"
            );
            assert!(msg.contains("1 to 20"), "{msg}");
        }
        for bad in ["", "   ", "!!!"] {
            let msg = err_of(InputArgs {
                company_name: Some(bad.into()),
                ..Default::default()
            });
            assert!(msg.contains("company_name"), "{msg}");
        }
        let msg = err_of(InputArgs::default());
        assert!(
            msg.contains("company_name") && msg.contains("--company-name"),
            "{msg}"
        );
        let msg = err_of(InputArgs {
            company_name: Some("x".repeat(201)),
            ..Default::default()
        });
        assert!(msg.contains("200"), "{msg}");
        let msg = err_of(InputArgs {
            readiness_score: Some("101".into()),
            ..args()
        });
        assert!(
            msg.contains("readiness_score") && msg.contains("0 to 100"),
            "{msg}"
        );
        let msg = err_of(InputArgs {
            readiness_category: Some("Guru".into()),
            ..args()
        });
        assert!(msg.contains("Explorer, Adopter or Leader"), "{msg}");
        let msg = err_of(InputArgs {
            model_set: Some("gpt4".into()),
            ..args()
        });
        assert!(msg.contains("model_set"), "{msg}");
        let msg = err_of(InputArgs {
            company_slug: Some("Acme Corp".into()),
            ..args()
        });
        assert!(
            msg.contains("company_slug") && msg.contains("acme_corp"),
            "{msg}"
        );
        let msg = err_of(InputArgs {
            run_id: Some("a/b".into()),
            ..args()
        });
        assert!(msg.contains("run_id"), "{msg}");
        let msg = err_of(InputArgs {
            google_drive_link: Some("https://x.org/a".into()),
            ..args()
        });
        assert!(msg.contains("google_drive_link"), "{msg}");
    }

    #[test]
    fn inputs_file_yaml_and_json_with_flag_override() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = dir.path().join("in.yaml");
        std::fs::write(
            &yaml,
            "company_name: Müller GmbH\nuse_cases_count: 3\nreadiness_score: 80 %\n",
        )
        .unwrap();
        let json = dir.path().join("in.json");
        std::fs::write(
            &json,
            r#"{"company_name": "Müller GmbH", "use_cases_count": 3}"#,
        )
        .unwrap();
        for path in [&yaml, &json] {
            let a = InputArgs {
                inputs_file: Some(path.clone()),
                ..Default::default()
            };
            let r = a.resolve().unwrap();
            assert_eq!(r.resolved.company_slug, "muller_gmbh");
            assert_eq!(r.resolved.use_cases_count, 3);
            assert_eq!(r.received["use_cases_count"].source, Source::InputsFile);
        }
        let a = InputArgs {
            inputs_file: Some(yaml),
            use_cases_count: Some("9".into()),
            ..Default::default()
        };
        let r = a.resolve().unwrap();
        assert_eq!(r.resolved.use_cases_count, 9);
        assert_eq!(r.received["use_cases_count"].source, Source::Flag);
        assert_eq!(r.resolved.readiness_score, 80);
    }

    #[test]
    fn inputs_file_refuses_unknown_keys_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.yaml");
        std::fs::write(&path, "company_name: Acme\nuse_case_count: 3\n").unwrap();
        let msg = err_of(InputArgs {
            inputs_file: Some(path.clone()),
            ..Default::default()
        });
        assert!(
            msg.contains("use_case_count") && msg.contains("in.yaml"),
            "{msg}"
        );
        std::fs::write(&path, "[1, 2").unwrap();
        let msg = err_of(InputArgs {
            inputs_file: Some(path),
            ..Default::default()
        });
        assert!(msg.contains("invalid inputs file"), "{msg}");
        let missing = dir.path().join("nope.yaml");
        let msg = err_of(InputArgs {
            inputs_file: Some(missing),
            ..Default::default()
        });
        assert!(msg.contains("nope.yaml"), "{msg}");
    }

    #[test]
    fn company_info_empty_value_does_not_swallow_next_line() {
        let text = "{Company description}:\n{Overall Readiness score}: 75 %\n{Agent-readiness category}: Leader\n{Report Expectations}: focus on finance\n{Number of use cases to generate}: 4";
        let a = InputArgs {
            company_info: Some(text.into()),
            ..args()
        };
        let r = a.resolve().unwrap().resolved;
        assert_eq!(r.company_description, "");
        assert_eq!(r.readiness_score, 75);
        assert_eq!(r.readiness_category, ReadinessCategory::Leader);
        assert_eq!(r.report_expectations, "focus on finance");
        // The last line has no trailing newline and still counts.
        assert_eq!(r.use_cases_count, 4);
    }

    #[test]
    fn company_info_multiline_values_unknown_labels_and_precedence() {
        let text = "{Company description}: Makes widgets.\nSells them worldwide.\n\n{Number of use cases to generate}: 2\n";
        let parsed = parse_company_info(text).unwrap();
        assert_eq!(
            parsed[0],
            (
                "company_description".into(),
                "Makes widgets.\nSells them worldwide.".into()
            )
        );
        let a = InputArgs {
            company_info: Some(text.into()),
            use_cases_count: Some("5".into()),
            ..args()
        };
        assert_eq!(a.resolve().unwrap().resolved.use_cases_count, 5);
        let err = parse_company_info("{Budget}: 10").unwrap_err();
        assert!(err.to_string().contains("{Budget}"), "{err}");
        assert!(parse_company_info("no label here").is_err());
    }

    #[test]
    fn values_dir_as_paperspace_mounts_string_inputs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("company_name"), "Acme Logistics GmbH\n").unwrap();
        std::fs::write(dir.path().join("use_cases_count"), "3").unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        let a = InputArgs {
            input_values_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let r = a.resolve().unwrap();
        assert_eq!(r.resolved.company_name, "Acme Logistics GmbH");
        assert_eq!(r.resolved.use_cases_count, 3);
        assert_eq!(r.received["company_name"].source, Source::ValuesDir);
        let a = InputArgs {
            input_values_dir: Some(dir.path().join("nope")),
            ..Default::default()
        };
        assert!(err_of(a).contains("--input-values-dir"));
    }

    /// `InputArgs` as a job's command line sees it.
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        inputs: InputArgs,
    }

    fn parse(argv: &[&str]) -> Result<Resolution> {
        use clap::Parser;
        let cli = Cli::try_parse_from(std::iter::once("job").chain(argv.iter().copied()))
            .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        cli.inputs.resolve()
    }

    /// Clears every variable `InputArgs` reads (so the caller's environment cannot leak in) and
    /// restores them on drop.
    struct EnvVars(Vec<(std::ffi::OsString, Option<std::ffi::OsString>)>);

    impl EnvVars {
        fn cleared() -> EnvVars {
            use clap::CommandFactory;
            let saved: Vec<_> = Cli::command()
                .get_arguments()
                .filter_map(|a| a.get_env())
                .map(|name| (name.to_os_string(), std::env::var_os(name)))
                .collect();
            assert!(saved.len() >= KEYS.len(), "every key has an env var");
            for (name, _) in &saved {
                // SAFETY: only this test touches these variables, the crate's other tests build
                // `InputArgs` directly, and std serialises its own environment access.
                unsafe { std::env::remove_var(name) };
            }
            EnvVars(saved)
        }

        fn set(&self, name: &str, value: impl AsRef<std::ffi::OsStr>) {
            assert!(self.0.iter().any(|(n, _)| n == name), "{name} is not read");
            // SAFETY: as in `cleared`.
            unsafe { std::env::set_var(name, value) };
        }
    }

    impl Drop for EnvVars {
        fn drop(&mut self) {
            for (name, value) in &self.0 {
                // SAFETY: as in `cleared`.
                unsafe {
                    match value {
                        Some(value) => std::env::set_var(name, value),
                        None => std::env::remove_var(name),
                    }
                }
            }
        }
    }

    /// The only test that touches the environment (it is process-global): every case is here.
    #[test]
    fn environment_variables_fill_inputs_and_flags_beat_them() {
        let env = EnvVars::cleared();
        env.set("COMPANY_NAME", "Env Corp");
        env.set("USE_CASES_COUNT", "3");
        env.set("READINESS_CATEGORY", "leader");
        let r = parse(&[]).unwrap();
        assert_eq!(r.resolved.company_name, "Env Corp");
        assert_eq!(r.resolved.company_slug, "env_corp");
        assert_eq!(r.resolved.use_cases_count, 3);
        assert_eq!(r.resolved.readiness_category, ReadinessCategory::Leader);

        let r = parse(&["--company-name", "Flag Corp", "--use-cases-count=5"]).unwrap();
        assert_eq!(r.resolved.company_name, "Flag Corp");
        assert_eq!(r.resolved.use_cases_count, 5);
        assert_eq!(r.resolved.readiness_category, ReadinessCategory::Leader);

        // Environment variables beat the inputs file, itself named by its variable.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("run.yaml");
        std::fs::write(
            &file,
            "company_name: File Corp\nuse_cases_count: 9\nmodel_set: cheap\n",
        )
        .unwrap();
        env.set("INPUTS_FILE", &file);
        let r = parse(&[]).unwrap();
        assert_eq!(r.resolved.company_name, "Env Corp");
        assert_eq!(r.resolved.use_cases_count, 3);
        assert_eq!(r.resolved.model_set, ModelSet::Cheap);
        assert_eq!(r.received["model_set"].source, Source::InputsFile);
        assert_eq!(r.received["company_name"].source, Source::Flag);

        // A value from the environment is validated like a flag.
        env.set("USE_CASES_COUNT", "99");
        let err = parse(&[]).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("use_cases_count") && msg.contains("99"),
            "{msg}"
        );
    }

    #[test]
    fn generated_run_ids_are_valid() {
        let id = generate_run_id();
        assert!(is_valid_run_id(&id), "{id}");
        assert_ne!(generate_run_id(), generate_run_id());
    }
}

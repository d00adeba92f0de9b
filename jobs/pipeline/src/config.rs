//! The model configuration: which models a model set uses and what their tokens cost (SPEC §7.3).
//!
//! The defaults live in `config/models.yaml`, embedded at build time so the binary runs without
//! it; `--models-config FILE` replaces the whole file for one run. The file is checked before any
//! network call: every model a set names must have a price, or the cost metric would be a guess.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use shared::inputs::ModelSet;
use shared::{Error, Result};

/// The embedded default configuration.
const DEFAULT_MODELS_YAML: &str = include_str!("../config/models.yaml");

/// The two models of one model set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Models {
    /// Writes steps 2 to 8.
    pub content: String,
    /// Writes the style pass of step 9.
    pub style: String,
}

/// USD per one million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
}

/// The whole models file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsConfig {
    pub model_sets: BTreeMap<String, Models>,
    pub prices: BTreeMap<String, Price>,
    pub max_output_tokens_cap: u32,
}

impl ModelsConfig {
    /// The file given with `--models-config`, or the embedded default.
    pub fn load(path: Option<&Path>) -> Result<ModelsConfig> {
        let (text, origin) = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    Error::bad_input(format!(
                        "cannot read models config {}: {e}; check --models-config",
                        path.display()
                    ))
                })?;
                (text, path.display().to_string())
            }
            None => (
                DEFAULT_MODELS_YAML.to_string(),
                "the embedded config/models.yaml".to_string(),
            ),
        };
        let config: ModelsConfig = serde_yaml::from_str(&text)
            .map_err(|e| Error::bad_input(format!("invalid models config {origin}: {e}")))?;
        config.check(&origin)?;
        Ok(config)
    }

    fn check(&self, origin: &str) -> Result<()> {
        for set in [ModelSet::Cheap, ModelSet::Better, ModelSet::Gpt5] {
            let models = self.model_sets.get(set.as_str()).ok_or_else(|| {
                Error::bad_input(format!(
                    "models config {origin} has no model set {:?}; it must define cheap, better and gpt5",
                    set.as_str()
                ))
            })?;
            for model in [&models.content, &models.style] {
                if model.trim().is_empty() {
                    return Err(Error::bad_input(format!(
                        "models config {origin}: model set {:?} names an empty model",
                        set.as_str()
                    )));
                }
                if !self.prices.contains_key(model) {
                    return Err(Error::bad_input(format!(
                        "models config {origin}: model {model:?} of set {:?} has no entry under `prices`; add its USD per 1M input and output tokens",
                        set.as_str()
                    )));
                }
            }
        }
        for (model, price) in &self.prices {
            let valid = |v: f64| v.is_finite() && v >= 0.0;
            if !valid(price.input) || !valid(price.output) {
                return Err(Error::bad_input(format!(
                    "models config {origin}: prices of {model:?} must be non-negative numbers"
                )));
            }
        }
        if self.max_output_tokens_cap < 16 {
            return Err(Error::bad_input(format!(
                "models config {origin}: max_output_tokens_cap must be at least 16"
            )));
        }
        Ok(())
    }

    /// The models of `set` (present: checked at load).
    pub fn models(&self, set: ModelSet) -> Result<&Models> {
        self.model_sets.get(set.as_str()).ok_or_else(|| {
            Error::internal(format!(
                "model set {} vanished after the check",
                set.as_str()
            ))
        })
    }

    /// The cost in USD of `input` and `output` tokens on `model`; unknown models cost nothing
    /// (they cannot occur: every configured model has a price).
    pub fn cost_usd(&self, model: &str, input: u64, output: u64) -> f64 {
        self.prices
            .get(model)
            .map(|price| (input as f64 * price.input + output as f64 * price.output) / 1_000_000.0)
            .unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_names_every_set_with_prices() {
        let config = ModelsConfig::load(None).unwrap();
        let gpt5 = config.models(ModelSet::Gpt5).unwrap();
        assert_eq!(
            (gpt5.content.as_str(), gpt5.style.as_str()),
            ("gpt-5", "gpt-5-nano")
        );
        // 1M input tokens of gpt-5 at $1.25 plus 1M output tokens at $10.
        assert!((config.cost_usd("gpt-5", 1_000_000, 1_000_000) - 11.25).abs() < 1e-9);
    }

    #[test]
    fn a_model_without_a_price_is_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("models.yaml");
        let text = DEFAULT_MODELS_YAML.replace("content: gpt-4.1\n", "content: my-model\n");
        std::fs::write(&path, text).unwrap();
        let err = ModelsConfig::load(Some(&path)).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("\"my-model\""), "{err}");
    }
}

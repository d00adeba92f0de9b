//! Token usage per step and what the run cost, from the price table of the models config.
//!
//! A reused checkpoint still counts: the report cost what its checkpoints cost, whichever
//! invocation paid. What this invocation paid is reported apart, so a resume that pays nothing
//! twice can be seen to.

use serde_json::{Map, Value, json};

use crate::config::ModelsConfig;
use crate::llm::Usage;

/// One step's usage.
#[derive(Debug, Clone)]
struct Entry {
    step: u32,
    model: String,
    usage: Usage,
    reused: bool,
}

/// Usage of every step of the run.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    entries: Vec<Entry>,
}

impl Ledger {
    /// Records a step (or one part of it, e.g. one deep dive).
    pub fn record(&mut self, step: u32, model: &str, usage: Usage, reused: bool) {
        self.entries.push(Entry {
            step,
            model: model.to_string(),
            usage,
            reused,
        });
    }

    /// The usage of `step`, summed over its parts.
    pub fn step_usage(&self, step: u32) -> Usage {
        let mut total = Usage::default();
        for entry in self.entries.iter().filter(|e| e.step == step) {
            total.add(entry.usage);
        }
        total
    }

    pub fn total(&self) -> Usage {
        let mut total = Usage::default();
        for entry in &self.entries {
            total.add(entry.usage);
        }
        total
    }

    pub fn cost_usd(&self, config: &ModelsConfig) -> f64 {
        self.entries
            .iter()
            .map(|e| config.cost_usd(&e.model, e.usage.input_tokens, e.usage.output_tokens))
            .sum()
    }

    /// Usage and cost of the parts this invocation computed (not reused from checkpoints).
    pub fn paid_now(&self, config: &ModelsConfig) -> (Usage, f64) {
        let mut usage = Usage::default();
        let mut cost = 0.0;
        for entry in self.entries.iter().filter(|e| !e.reused) {
            usage.add(entry.usage);
            cost += config.cost_usd(
                &entry.model,
                entry.usage.input_tokens,
                entry.usage.output_tokens,
            );
        }
        (usage, cost)
    }

    /// Logs the token metrics of `step`.
    pub fn log_step(&self, step: u32) {
        let usage = self.step_usage(step);
        shared::logging::metric(
            &format!("step_{step}_input_tokens"),
            usage.input_tokens as f64,
            "tokens",
        );
        shared::logging::metric(
            &format!("step_{step}_output_tokens"),
            usage.output_tokens as f64,
            "tokens",
        );
    }

    /// The token and cost metrics for the final marker.
    pub fn metrics(&self, config: &ModelsConfig) -> Map<String, Value> {
        let mut metrics = Map::new();
        let mut steps: Vec<u32> = self.entries.iter().map(|e| e.step).collect();
        steps.dedup();
        for step in steps {
            let usage = self.step_usage(step);
            metrics.insert(
                format!("step_{step}_input_tokens"),
                json!(usage.input_tokens),
            );
            metrics.insert(
                format!("step_{step}_output_tokens"),
                json!(usage.output_tokens),
            );
        }
        let total = self.total();
        let (now, cost_now) = self.paid_now(config);
        metrics.insert("input_tokens".into(), json!(total.input_tokens));
        metrics.insert("output_tokens".into(), json!(total.output_tokens));
        metrics.insert("model_calls".into(), json!(total.calls));
        metrics.insert("cost_usd".into(), json!(round_cents(self.cost_usd(config))));
        metrics.insert("model_calls_this_invocation".into(), json!(now.calls));
        metrics.insert(
            "cost_usd_this_invocation".into(),
            json!(round_cents(cost_now)),
        );
        metrics
    }
}

/// Cost to a hundredth of a cent: enough for a bill, stable in JSON.
pub fn round_cents(usd: f64) -> f64 {
    (usd * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_counts_every_step_and_separates_what_was_paid_now() {
        let config = ModelsConfig::load(None).unwrap();
        let mut ledger = Ledger::default();
        ledger.record(
            2,
            "gpt-5",
            Usage {
                input_tokens: 1_000_000,
                output_tokens: 0,
                calls: 1,
            },
            true,
        );
        ledger.record(
            6,
            "gpt-5",
            Usage {
                input_tokens: 0,
                output_tokens: 100_000,
                calls: 1,
            },
            false,
        );
        ledger.record(
            6,
            "gpt-5",
            Usage {
                input_tokens: 0,
                output_tokens: 100_000,
                calls: 1,
            },
            false,
        );
        // $1.25 for 1M gpt-5 input tokens, $2 for 200k output tokens at $10 per 1M.
        assert!((ledger.cost_usd(&config) - 3.25).abs() < 1e-9);
        assert_eq!(ledger.step_usage(6).output_tokens, 200_000);
        let metrics = ledger.metrics(&config);
        assert_eq!(metrics["step_6_output_tokens"], 200_000);
        assert_eq!(metrics["model_calls"], 3);
        assert_eq!(metrics["model_calls_this_invocation"], 2);
        assert_eq!(metrics["cost_usd_this_invocation"], 2.0);
    }
}

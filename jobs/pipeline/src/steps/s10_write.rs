//! Step 10: write the final report, then its marker LAST (SPEC §4.3), and log the run's metrics.
//!
//! The marker lists the report with its size and SHA-256, carries the stage fingerprint that
//! lets a re-run say "already done", the typed [`FinalDetails`] upload reads, and the token and
//! cost metrics.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use shared::atomic::{remove_durably, write_atomic};
use shared::layout::Stage;
use shared::markers::{FileRecord, Marker};
use shared::records::FinalDetails;
use shared::{Error, Result};

use super::Pipeline;

/// What the final marker records besides the report itself.
pub struct Summary {
    pub fingerprint: String,
    pub started: DateTime<Utc>,
    /// Token and cost metrics from the ledger.
    pub metrics: Map<String, Value>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    pub part_a_length: usize,
}

/// Writes the report and its marker; returns the marker's path.
pub fn write(pipeline: &Pipeline, markdown: &str, summary: Summary) -> Result<std::path::PathBuf> {
    let out = &pipeline.out;
    let report_path = out.final_report(&pipeline.ts);
    let marker_path = out.marker(Stage::Final, &pipeline.ts);
    // A run finishing in the same second as an earlier one reuses its names: the old marker
    // must not vouch for the report while it is replaced.
    remove_durably(&marker_path)?;
    write_atomic(&report_path, markdown.as_bytes())?;
    let relative = out.relative(&report_path).ok_or_else(|| {
        Error::internal(format!(
            "{} is outside the company directory",
            report_path.display()
        ))
    })?;

    let mut metrics = summary.metrics;
    metrics.insert("part_a_length".into(), json!(summary.part_a_length));
    metrics.insert("final_report_size".into(), json!(markdown.len()));
    metrics.insert(
        "use_cases_count".into(),
        json!(pipeline.inputs.use_cases_count),
    );
    let details = FinalDetails {
        report: relative.clone(),
        model_set: pipeline.inputs.model_set.as_str().to_string(),
        use_cases_count: pipeline.inputs.use_cases_count,
        input_tokens: summary.input_tokens,
        output_tokens: summary.output_tokens,
        cost_usd: summary.cost_usd,
    };
    let marker = Marker {
        stage: Stage::Final.as_str().to_string(),
        run_id: pipeline.loaded.run_id.clone(),
        slug: out.slug().to_string(),
        job: "pipeline".to_string(),
        job_version: env!("CARGO_PKG_VERSION").to_string(),
        started: summary.started,
        finished: Utc::now(),
        fingerprint: summary.fingerprint,
        files: vec![FileRecord::of(out, &relative)?],
        metrics,
        details: serde_json::to_value(&details).map_err(|e| {
            Error::internal(format!("cannot encode the final marker's details: {e}"))
        })?,
    };
    marker.write(&marker_path)?;

    shared::logging::metric("part_a_length", summary.part_a_length as f64, "characters");
    shared::logging::metric("final_report_size", markdown.len() as f64, "bytes");
    shared::logging::metric(
        "use_cases_count",
        f64::from(pipeline.inputs.use_cases_count),
        "use cases",
    );
    Ok(marker_path)
}

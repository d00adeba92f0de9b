//! The `pipeline` job: ten steps from indexed documents to a grounded, validated final report
//! (SPEC §5.3).
//!
//! It verifies the markers of `setup` (`data/.ready`) and `vectorize` (`vector_ids/.ready`),
//! then asks the content model, with `file_search` over the run's vector store, for a company
//! profile, evidence, a Part A draft, exactly N use cases and a deep dive of each (concurrently),
//! a Part B, and a consolidated report, which the style model then harmonises. The report is
//! validated (every section, N use cases, every citation resolving to a document in `data/`) and
//! written with its marker last.
//!
//! Invariants:
//! - Every model answer is strict JSON-schema output; the report's structure is assembled in
//!   code, so it cannot drift.
//! - A truncated answer never reaches the report (`llm.rs` retries with a larger budget).
//! - Every step's result is checkpointed with the fingerprint of what it consumed; a re-run
//!   pays for nothing twice, and a finished run with the same inputs exits at once.
//! - Nothing is written outside the company directory of the outputs root; the final marker is
//!   written last.

pub mod checkpoint;
pub mod config;
pub mod cost;
pub mod llm;
pub mod prompts;
pub mod report;
pub mod schema;
pub mod steps;
pub mod validate;

use std::path::{Path, PathBuf};

use serde_json::json;
use shared::Result;
use shared::http::HttpSettings;
use shared::inputs::{InputArgs, RunInputs};
use shared::layout::{CompanyDir, Stage};
use shared::lock::StageLock;
use shared::logging::{metric, step, success};
use shared::markers::{already_done, fingerprint};
use shared::roots::{RootArgs, Roots};

use checkpoint::Checkpoints;
use config::{Models, ModelsConfig};
use cost::{Ledger, round_cents};
use llm::Llm;
use prompts::Prompts;
use steps::s01_load::Loaded;
use steps::{Pipeline, TOTAL_STEPS};

/// Command line of the `pipeline` binary.
#[derive(clap::Parser, Debug)]
#[command(
    name = "pipeline",
    version,
    about = "Writes the AI agent-readiness report from the indexed documents: ten steps, checkpointed, validated."
)]
pub struct Cli {
    #[command(flatten)]
    pub inputs: InputArgs,
    #[command(flatten)]
    pub roots: RootArgs,
    /// Directory of prompt templates (`*.j2`) that replace the embedded ones of the same name.
    #[arg(long, env = "PIPELINE_PROMPTS_DIR", value_name = "DIR")]
    pub prompts_dir: Option<PathBuf>,
    /// Models config (model sets and prices) replacing the embedded config/models.yaml.
    #[arg(long, env = "PIPELINE_MODELS_CONFIG", value_name = "FILE")]
    pub models_config: Option<PathBuf>,
    /// Deep dives (step 6) in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub max_concurrent_calls: u16,
    /// Output-token budget of a model call's first attempt; a response cut off by it is asked
    /// again with twice the budget, up to the config's max_output_tokens_cap.
    #[arg(long, default_value_t = 16_000, value_parser = clap::value_parser!(u32).range(16..))]
    pub max_output_tokens: u32,
    /// Ignore checkpoints and an existing final report with the same inputs: redo every step.
    #[arg(long)]
    pub force: bool,
    /// Check inputs, upstream markers and configuration, print the plan, write nothing and call
    /// no model.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(cli: Cli) -> Result<()> {
    let started = chrono::Utc::now();
    let inputs = cli.inputs.resolve()?.resolved;
    shared::logging::context().set_company(&inputs.company_name);
    let config = ModelsConfig::load(cli.models_config.as_deref())?;
    let models = config.models(inputs.model_set)?.clone();
    let prompts = Prompts::load(cli.prompts_dir.as_deref())?;
    let roots = if cli.dry_run {
        Roots::plan(&cli.roots)?
    } else {
        Roots::open(&cli.roots)?
    };

    step(
        1,
        TOTAL_STEPS,
        "load and verify inputs (data and vector markers)",
    );
    let loaded = steps::s01_load::load(&roots, &inputs)?;
    shared::logging::context().set_run_id(&loaded.run_id);
    log_documents(&loaded);
    let out = roots.output_dir(&inputs.company_slug);
    let stage_fingerprint = stage_fingerprint(&inputs, &loaded, &prompts, &models);
    let checkpoints = Checkpoints::new(&out, cli.force);

    if cli.dry_run {
        let done = finished_report(&out, &stage_fingerprint, &loaded.run_id);
        print!(
            "{}",
            plan(
                &cli,
                &inputs,
                &loaded,
                &models,
                &prompts,
                &checkpoints,
                done.as_deref()
            )
        );
        return Ok(());
    }

    let _lock = StageLock::acquire(&out, Stage::Final, &loaded.run_id)?;
    // Temp files of a writer killed earlier are garbage; the lock says no writer is running.
    for dir in [
        out.checkpoints_dir(),
        out.join("part_a"),
        out.join("part_b"),
        out.final_dir(),
    ] {
        shared::atomic::sweep_temp_files(&dir)?;
    }
    if !cli.force
        && let Some(marker) = finished_report(&out, &stage_fingerprint, &loaded.run_id)
    {
        success(&format!(
            "already done: {} has the report for these inputs",
            marker.display()
        ));
        return Ok(());
    }

    let settings = HttpSettings {
        max_concurrency: usize::from(cli.max_concurrent_calls),
        ..HttpSettings::default()
    };
    let client = openai_client::connect(&settings)?;
    let ts = checkpoints.run_timestamp(&loaded.run_id, &shared::layout::timestamp(started))?;
    let pipeline = Pipeline {
        llm: Llm::new(
            client,
            loaded.vector_store_id.clone(),
            cli.max_output_tokens,
            config.max_output_tokens_cap,
        ),
        inputs,
        loaded,
        ts,
        out,
        prompts,
        models,
        checkpoints,
        max_concurrent_calls: usize::from(cli.max_concurrent_calls),
    };
    let mut ledger = Ledger::default();
    let content = pipeline.models.content.clone();
    let count = pipeline.use_cases_count();

    step(2, TOTAL_STEPS, "company profile");
    let profile = steps::s02_profile::run(&pipeline).await?;
    ledger.record(2, &content, profile.usage, profile.reused);
    ledger.log_step(2);

    step(3, TOTAL_STEPS, "evidence: themes and representative quotes");
    let evidence = steps::s03_evidence::run(&pipeline, &profile.result).await?;
    ledger.record(3, &content, evidence.usage, evidence.reused);
    ledger.log_step(3);

    step(
        4,
        TOTAL_STEPS,
        "Part A: current state and readiness assessment",
    );
    let (part_a, part_a_markdown) =
        steps::s04_part_a::run(&pipeline, &profile.result, &evidence.result).await?;
    ledger.record(4, &content, part_a.usage, part_a.reused);
    ledger.log_step(4);

    step(
        5,
        TOTAL_STEPS,
        &format!("use-case ideation: exactly {count} use cases"),
    );
    let ideas =
        steps::s05_use_cases::run(&pipeline, &profile.result, &evidence.result, &part_a.result)
            .await?;
    ledger.record(5, &content, ideas.usage, ideas.reused);
    ledger.log_step(5);

    step(
        6,
        TOTAL_STEPS,
        &format!(
            "use-case deep dives: {count}, up to {} at once",
            pipeline.max_concurrent_calls
        ),
    );
    let dives = steps::s06_deep_dives::run(
        &pipeline,
        &profile.result,
        &part_a.result,
        &ideas.result.use_cases,
    )
    .await?;
    for dive in &dives {
        ledger.record(6, &content, dive.usage, dive.reused);
    }
    ledger.log_step(6);
    let dives: Vec<schema::DeepDive> = dives.into_iter().map(|d| d.result).collect();

    step(
        7,
        TOTAL_STEPS,
        "Part B: use cases with roadmap, risks and KPIs",
    );
    let (part_b, part_b_markdown) =
        steps::s07_part_b::run(&pipeline, &part_a.result, &ideas.result.use_cases, &dives).await?;
    ledger.record(7, &content, part_b.usage, part_b.reused);
    ledger.log_step(7);

    step(8, TOTAL_STEPS, "consolidation of Part A and Part B");
    let consolidated =
        steps::s08_consolidate::run(&pipeline, &part_a_markdown, &part_b_markdown).await?;
    ledger.record(8, &content, consolidated.usage, consolidated.reused);
    ledger.log_step(8);

    step(9, TOTAL_STEPS, "style pass and validation");
    let styled = steps::s09_style::run(&pipeline, &consolidated.result).await?;
    ledger.record(
        9,
        &pipeline.models.style,
        styled.outcome.usage,
        styled.outcome.reused,
    );
    ledger.log_step(9);
    tracing::info!(
        cited_documents = styled.sources.len(),
        "validation passed: {count} use cases, every section present, {} cited document(s) resolved",
        styled.sources.len()
    );

    step(10, TOTAL_STEPS, "write the final report and its marker");
    let total = ledger.total();
    let cost = round_cents(ledger.cost_usd(&config));
    let (paid_now, cost_now) = ledger.paid_now(&config);
    metric("input_tokens", total.input_tokens as f64, "tokens");
    metric("output_tokens", total.output_tokens as f64, "tokens");
    metric("cost_usd", cost, "USD");
    metric(
        "model_calls_this_invocation",
        paid_now.calls as f64,
        "calls",
    );
    metric("cost_usd_this_invocation", round_cents(cost_now), "USD");
    let summary = steps::s10_write::Summary {
        fingerprint: stage_fingerprint,
        started,
        metrics: ledger.metrics(&config),
        input_tokens: total.input_tokens,
        output_tokens: total.output_tokens,
        cost_usd: cost,
        part_a_length: part_a_markdown.chars().count(),
    };
    let marker = steps::s10_write::write(&pipeline, &styled.markdown, summary)?;
    success(&format!(
        "final report written: {} ({} use cases, ${cost:.4})",
        pipeline.out.final_report(&pipeline.ts).display(),
        count
    ));
    tracing::info!(marker = %marker.display(), "final marker written");
    Ok(())
}

fn log_documents(loaded: &Loaded) {
    match &loaded.vector_store_id {
        Some(store) => tracing::info!(
            vector_store_id = %store,
            "{} indexed document(s) in vector store {store}",
            loaded.documents.len()
        ),
        None => tracing::warn!(
            "no vector store for this run: the report is written from the company profile alone"
        ),
    }
    for path in &loaded.not_indexed {
        tracing::warn!(path = %path, "{path} could not be indexed by vectorize and cannot be cited");
    }
    metric("documents_indexed", loaded.documents.len() as f64, "files");
}

/// The fingerprint of the whole stage: the run inputs, the documents, every template, the
/// models, and the job version (the code that assembles the report). Not the run id, not the
/// time.
fn stage_fingerprint(
    inputs: &RunInputs,
    loaded: &Loaded,
    prompts: &Prompts,
    models: &Models,
) -> String {
    let mut templates = serde_json::Map::new();
    for name in prompts::ALL {
        templates.insert(name.to_string(), json!(prompts.hash(name)));
    }
    fingerprint(&json!({
        "company_name": inputs.company_name,
        "company_slug": inputs.company_slug,
        "company_description": inputs.company_description,
        "readiness_score": inputs.readiness_score,
        "readiness_category": inputs.readiness_category,
        "report_expectations": inputs.report_expectations,
        "use_cases_count": inputs.use_cases_count,
        "model_set": inputs.model_set,
        "models": models,
        "vector_store_id": loaded.vector_store_id,
        "documents": loaded.documents,
        "templates": templates,
        "job_version": env!("CARGO_PKG_VERSION"),
    }))
}

/// The final marker of this run with this fingerprint, if one exists and its report verifies.
fn finished_report(out: &CompanyDir, stage_fingerprint: &str, run_id: &str) -> Option<PathBuf> {
    let prefix = format!("FINAL_REPORT_{}_", out.slug());
    let entries = std::fs::read_dir(out.final_dir()).ok()?;
    entries.flatten().map(|e| e.path()).find(|path| {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        name.starts_with(&prefix)
            && name.ends_with(".ready")
            && already_done(out, Stage::Final, path, stage_fingerprint)
                .is_some_and(|m| m.run_id == run_id)
    })
}

/// The dry-run plan.
fn plan(
    cli: &Cli,
    inputs: &RunInputs,
    loaded: &Loaded,
    models: &Models,
    prompts: &Prompts,
    checkpoints: &Checkpoints,
    done: Option<&Path>,
) -> String {
    let count = inputs.use_cases_count;
    let mut text =
        String::from("pipeline plan (dry run: nothing is written, no model is called)\n");
    text.push_str(&format!(
        "company: {} (slug {})\n",
        inputs.company_name, inputs.company_slug
    ));
    text.push_str(&format!("run id: {}\n", loaded.run_id));
    text.push_str(&format!(
        "model set: {} (content {}, style {})\n",
        inputs.model_set.as_str(),
        models.content,
        models.style
    ));
    text.push_str(&format!(
        "use cases: {count}, deep dives up to {} at once\n",
        cli.max_concurrent_calls
    ));
    match &loaded.vector_store_id {
        Some(store) => text.push_str(&format!(
            "documents: {} indexed in vector store {store}\n",
            loaded.documents.len()
        )),
        None => text
            .push_str("documents: none (the report is written from the company profile alone)\n"),
    }
    let overridden = prompts.overridden();
    if overridden.is_empty() {
        text.push_str("prompts: embedded\n");
    } else {
        text.push_str(&format!(
            "prompts: embedded, replaced from --prompts-dir: {}\n",
            overridden.join(", ")
        ));
    }
    if let Some(marker) = done
        && !cli.force
    {
        text.push_str(&format!("status: already done ({})\n", marker.display()));
        return text;
    }
    text.push_str("status: to run\n");
    let checkpoint_note = |name: &str| {
        if !cli.force && checkpoints.exists(name) {
            "checkpoint present, reused if inputs match"
        } else {
            "will call the model"
        }
    };
    let model_steps = [
        (2, "s02_profile", "company profile"),
        (3, "s03_evidence", "evidence"),
        (4, "s04_part_a", "Part A"),
        (5, "s05_use_cases", "use-case ideation"),
    ];
    text.push_str("steps:\n  [1/10] load and verify inputs: verified\n");
    for (k, name, what) in model_steps {
        text.push_str(&format!("  [{k}/10] {what}: {}\n", checkpoint_note(name)));
    }
    let present = (1..=count)
        .filter(|k| !cli.force && checkpoints.exists(&format!("deep_dive_{k}")))
        .count();
    text.push_str(&format!(
        "  [6/10] deep dives: {count} calls, {present} checkpoint(s) present\n"
    ));
    for (k, name, what) in [
        (7, "s07_part_b", "Part B"),
        (8, "s08_consolidate", "consolidation"),
        (9, "s09_style", "style pass and validation"),
    ] {
        text.push_str(&format!("  [{k}/10] {what}: {}\n", checkpoint_note(name)));
    }
    text.push_str("  [10/10] write the final report and its marker\n");
    text
}

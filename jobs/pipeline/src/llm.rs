//! The one place that calls the model: an OpenAI Responses API request with strict JSON-schema
//! output and, when the run has a vector store, the `file_search` tool over it.
//!
//! A response cut short by its output budget (`status: incomplete`) is never used: the call is
//! repeated with twice the budget, up to the configured cap, so a truncated section cannot
//! reach the report. Transport failures (429, 5xx, timeouts) are retried by the client crate,
//! not here. Every attempt's token usage is counted, since every attempt is paid for.

use async_openai::types::responses::{
    CreateResponseArgs, FileSearchTool, IncludeEnum, InputParam, Response,
    ResponseFormatJsonSchema, ResponseTextParam, Status, TextResponseFormatConfiguration, Tool,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::{Error, Result};

/// Tokens a step consumed, summed over its calls and attempts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Responses requested (attempts included).
    pub calls: u64,
}

impl Usage {
    pub fn add(&mut self, other: Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.calls += other.calls;
    }
}

/// One structured request.
pub struct Request<'a> {
    /// What the call is for, in error messages (e.g. "step 6 deep dive 3").
    pub purpose: &'a str,
    pub model: &'a str,
    pub instructions: String,
    pub input: String,
    /// The schema's name as sent to the API (`[A-Za-z0-9_-]`).
    pub schema_name: &'a str,
    pub schema: Value,
}

/// The model client of one run.
pub struct Llm {
    client: openai_client::OpenAi,
    vector_store_id: Option<String>,
    initial_budget: u32,
    budget_cap: u32,
}

impl Llm {
    /// `initial_budget` is the first attempt's `max_output_tokens`; `budget_cap` the largest.
    pub fn new(
        client: openai_client::OpenAi,
        vector_store_id: Option<String>,
        initial_budget: u32,
        budget_cap: u32,
    ) -> Llm {
        Llm {
            client,
            vector_store_id,
            initial_budget,
            budget_cap: budget_cap.max(initial_budget),
        }
    }

    /// Asks for JSON matching `request.schema` and parses it into `T`.
    pub async fn structured<T: DeserializeOwned>(
        &self,
        request: Request<'_>,
    ) -> Result<(T, Usage)> {
        let (text, usage) = self.complete(&request).await?;
        let value = serde_json::from_str::<T>(&text).map_err(|e| {
            Error::external(format!(
                "{}: the model's answer does not match the requested JSON schema ({e}); re-run the job, or use another model set",
                request.purpose
            ))
        })?;
        Ok((value, usage))
    }

    /// The complete output text of `request`, raising the output budget while the response is
    /// truncated.
    async fn complete(&self, request: &Request<'_>) -> Result<(String, Usage)> {
        let mut usage = Usage::default();
        let mut budget = self.initial_budget;
        loop {
            let response = self.send(request, budget).await?;
            usage.calls += 1;
            if let Some(spent) = &response.usage {
                usage.input_tokens += u64::from(spent.input_tokens);
                usage.output_tokens += u64::from(spent.output_tokens);
            }
            match response.status {
                Status::Completed => {
                    let text = response.output_text().unwrap_or_default();
                    if text.trim().is_empty() {
                        return Err(Error::external(format!(
                            "{}: the model returned no text (response {}); re-run the job",
                            request.purpose, response.id
                        )));
                    }
                    return Ok((text, usage));
                }
                Status::Incomplete
                    if is_budget_exhausted(&response) && budget < self.budget_cap =>
                {
                    let next = budget.saturating_mul(2).min(self.budget_cap);
                    tracing::warn!(
                        purpose = request.purpose,
                        max_output_tokens = budget,
                        next_max_output_tokens = next,
                        "{}: the response was cut off at {budget} output tokens; asking again with {next}",
                        request.purpose
                    );
                    budget = next;
                }
                Status::Incomplete => {
                    let reason = response
                        .incomplete_details
                        .as_ref()
                        .map(|d| d.reason.as_str())
                        .unwrap_or("unknown reason");
                    return Err(Error::external(format!(
                        "{}: the model's response stayed incomplete ({reason}) at {budget} output tokens; raise max_output_tokens_cap in the models config or shorten the inputs",
                        request.purpose
                    )));
                }
                other => {
                    let detail = response
                        .error
                        .as_ref()
                        .map(|e| e.message.clone())
                        .unwrap_or_else(|| format!("status {other:?}"));
                    return Err(Error::external(format!(
                        "{}: the model failed ({detail}); re-run the job",
                        request.purpose
                    )));
                }
            }
        }
    }

    async fn send(&self, request: &Request<'_>, budget: u32) -> Result<Response> {
        let mut args = CreateResponseArgs::default();
        args.model(request.model)
            .instructions(request.instructions.clone())
            .input(InputParam::Text(request.input.clone()))
            .max_output_tokens(budget)
            .store(false)
            .text(ResponseTextParam {
                format: TextResponseFormatConfiguration::JsonSchema(ResponseFormatJsonSchema {
                    description: None,
                    name: request.schema_name.to_string(),
                    schema: request.schema.clone(),
                    strict: Some(true),
                }),
                verbosity: None,
            });
        if let Some(store) = &self.vector_store_id {
            args.tools(vec![Tool::FileSearch(FileSearchTool {
                vector_store_ids: vec![store.clone()],
                max_num_results: None,
                filters: None,
                ranking_options: None,
            })])
            .include(vec![IncludeEnum::FileSearchCallResults]);
        }
        let body = args.build().map_err(|e| {
            Error::internal(format!(
                "{}: cannot build the request: {e}",
                request.purpose
            ))
        })?;
        self.client
            .responses()
            .create(body)
            .await
            .map_err(|e| openai_client::map_error(e, request.purpose))
    }
}

fn is_budget_exhausted(response: &Response) -> bool {
    response
        .incomplete_details
        .as_ref()
        .is_none_or(|d| d.reason == "max_output_tokens")
}

//! Responses through async-openai: file_search with results and citations that quote the
//! uploaded documents, strict JSON-schema output, truncation, usage and chaining.

mod openai_common;

use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::types::responses::{
    CreateResponseArgs, FileSearchTool, IncludeEnum, InputParam, OutputItem, Response,
    ResponseFormatJsonSchema, ResponseTextParam, Status, TextResponseFormatConfiguration, Tool,
};
use emulator::{Config, Emulator};
use openai_common::{KEY, client, docx, pdf, start, store_with, write};
use serde_json::{Value, json};

const FINANCE: &str = "Invoices are typed into the ledger by two clerks every morning. \
    The finance team closes the books on the fifth working day.";
const WAREHOUSE: &str = "Stock levels in the warehouse are counted by hand every Friday.";
const PURCHASING: &str = "Purchasing approves every order above five hundred euros.";

/// An emulator with one vector store holding a Markdown, a PDF and a DOCX document.
async fn indexed_store() -> (Emulator, Client<OpenAIConfig>, String) {
    let emulator = start(Config::new().file_processing_delay(Duration::from_millis(10))).await;
    let openai = client(&emulator, KEY);
    let dir = tempfile::tempdir().unwrap();
    let paths = [
        write(
            dir.path(),
            "finance.md",
            format!("# Finance\n\n{FINANCE}\n").as_bytes(),
        ),
        write(dir.path(), "warehouse.pdf", &pdf(&[WAREHOUSE])),
        write(dir.path(), "purchasing.docx", &docx(&[PURCHASING])),
    ];
    let (store_id, done) = store_with(&openai, "docs", &paths).await;
    assert_eq!(done.file_counts.completed, 3);
    (emulator, openai, store_id)
}

/// A store with one HTML, one DOCX and one JSON document, each holding one sentence.
#[tokio::test]
async fn html_docx_and_json_documents_are_retrieved_verbatim() {
    const HTML: &str = "Drivers report breakdowns &amp; delays by phone to the night desk.";
    const DOCX: &str = "Customs paperwork for every truck is checked twice before departure.";
    const JSON: &str = "Fuel cards are reconciled against telematics every Monday.";
    let emulator = start(Config::new().file_processing_delay(Duration::from_millis(10))).await;
    let openai = client(&emulator, KEY);
    let dir = tempfile::tempdir().unwrap();
    let html = format!(
        "<html><head><script>var tracking = 1;</script></head><body><h1>Dispatch</h1><p>{HTML}</p></body></html>"
    );
    let paths = [
        write(dir.path(), "dispatch.html", html.as_bytes()),
        write(dir.path(), "customs.docx", &docx(&[DOCX])),
        write(
            dir.path(),
            "fleet.json",
            json!({"fleet": {"fuel": JSON}}).to_string().as_bytes(),
        ),
    ];
    let (store_id, done) = store_with(&openai, "mixed", &paths).await;
    assert_eq!(done.file_counts.completed, 3, "{done:?}");

    let request = CreateResponseArgs::default()
        .model("gpt-5")
        .instructions("Answer from the documents. Cite every source.")
        .input("How are breakdowns and delays reported, customs paperwork checked, and fuel cards reconciled?")
        .tools(vec![file_search(&store_id)])
        .build()
        .unwrap();
    let text = openai
        .responses()
        .create(request)
        .await
        .unwrap()
        .output_text()
        .unwrap();
    assert!(
        text.contains(&format!(
            "\"{}\" [source: dispatch.html]",
            HTML.replace("&amp;", "&")
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("\"{DOCX}\" [source: customs.docx]")),
        "{text}"
    );
    // JSON is indexed as its text, as OpenAI does: the quote is the JSON line.
    assert!(
        text.split("\n\n")
            .any(|paragraph| paragraph.contains(JSON) && paragraph.contains("[source: fleet.json]")),
        "{text}"
    );
    assert!(
        !text.contains("tracking"),
        "script text is not indexed: {text}"
    );
}

fn file_search(store_id: &str) -> Tool {
    Tool::FileSearch(FileSearchTool {
        vector_store_ids: vec![store_id.to_string()],
        max_num_results: Some(5),
        filters: None,
        ranking_options: None,
    })
}

fn annotations(response: &Response) -> Vec<Value> {
    let message = response
        .output
        .iter()
        .find_map(|item| match item {
            OutputItem::Message(message) => Some(message),
            _ => None,
        })
        .expect("a message item");
    let content = serde_json::to_value(&message.content).unwrap();
    content[0]["annotations"].as_array().unwrap().clone()
}

#[tokio::test]
async fn prose_quotes_retrieved_sentences_with_citations() {
    let (_emulator, openai, store_id) = indexed_store().await;
    let request = CreateResponseArgs::default()
        .model("gpt-5")
        .instructions("Describe how invoices and stock are handled. Cite every source.")
        .input("How are invoices entered and how is warehouse stock counted?")
        .tools(vec![file_search(&store_id)])
        .include(vec![IncludeEnum::FileSearchCallResults])
        .build()
        .unwrap();
    let response = openai.responses().create(request.clone()).await.unwrap();
    assert_eq!(response.status, Status::Completed);
    let text = response.output_text().unwrap();
    assert!(
        text.contains(
            "\"Invoices are typed into the ledger by two clerks every morning.\" [source: finance.md]"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!("\"{WAREHOUSE}\" [source: warehouse.pdf]")),
        "{text}"
    );

    let search = response
        .output
        .iter()
        .find_map(|item| match item {
            OutputItem::FileSearchCall(call) => Some(call),
            _ => None,
        })
        .expect("a file_search_call item");
    let results = search.results.as_ref().expect("results were included");
    assert!(!results.is_empty() && results.len() <= 5);
    assert!(results.iter().any(|hit| hit.filename == "warehouse.pdf"));
    assert!(
        results
            .windows(2)
            .all(|pair| pair[0].score >= pair[1].score)
    );

    let cited = annotations(&response);
    assert_eq!(cited.len(), text.matches("[source: ").count());
    let finance_citation = cited
        .iter()
        .find(|a| a["filename"] == "finance.md")
        .unwrap();
    assert_eq!(finance_citation["type"], "file_citation");
    let finance_id = results
        .iter()
        .find(|hit| hit.filename == "finance.md")
        .map(|hit| hit.file_id.clone())
        .unwrap();
    assert_eq!(finance_citation["file_id"], finance_id.as_str());
    let index = finance_citation["index"].as_u64().unwrap() as usize;
    let from_index: String = text.chars().skip(index).collect();
    assert!(from_index.starts_with("[source: finance.md]"));

    let usage = response.usage.as_ref().unwrap();
    assert!(usage.input_tokens > 0 && usage.output_tokens > 0);
    assert_eq!(usage.total_tokens, usage.input_tokens + usage.output_tokens);

    let again = openai.responses().create(request).await.unwrap();
    assert_eq!(again.output_text(), response.output_text(), "deterministic");
    assert_ne!(again.id, response.id);
    let stored = openai.responses().retrieve(&response.id).await.unwrap();
    assert_eq!(stored.output_text(), response.output_text());
}

#[tokio::test]
async fn strict_json_schema_output_validates_and_quotes_sources() {
    let (_emulator, openai, store_id) = indexed_store().await;
    let schema = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["use_cases", "readiness", "category", "owner"],
        "properties": {
            "use_cases": {
                "type": "array", "minItems": 4, "maxItems": 4,
                "items": {
                    "type": "object", "additionalProperties": false,
                    "required": ["title", "problem", "impact"],
                    "properties": {
                        "title": {"type": "string"},
                        "problem": {"type": "string"},
                        "impact": {"type": "integer", "minimum": 1, "maximum": 5}
                    }
                }
            },
            "readiness": {"type": "number", "minimum": 0, "maximum": 1},
            "category": {"type": "string", "enum": ["Explorer", "Adopter", "Leader"]},
            "owner": {"anyOf": [{"type": "string"}, {"type": "null"}]}
        }
    });
    let request = CreateResponseArgs::default()
        .model("gpt-5")
        .input("List four automation use cases for invoices, stock and purchasing.")
        .tools(vec![file_search(&store_id)])
        .text(ResponseTextParam {
            format: TextResponseFormatConfiguration::JsonSchema(ResponseFormatJsonSchema {
                description: None,
                name: "use_cases".into(),
                schema,
                strict: Some(true),
            }),
            verbosity: None,
        })
        .build()
        .unwrap();
    let response = openai.responses().create(request).await.unwrap();
    let text = response.output_text().unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    let object = value.as_object().unwrap();
    assert_eq!(object.len(), 4, "no additional properties: {value}");
    let cases = value["use_cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        assert_eq!(case.as_object().unwrap().len(), 3);
        let impact = case["impact"].as_i64().unwrap();
        assert!((1..=5).contains(&impact));
        let problem = case["problem"].as_str().unwrap();
        let quoted = [FINANCE, WAREHOUSE, PURCHASING].iter().any(|source| {
            problem.contains("[source: ") && source.contains(problem.split('"').nth(1).unwrap())
        });
        assert!(quoted, "{problem}");
    }
    let readiness = value["readiness"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&readiness));
    assert!(["Explorer", "Adopter", "Leader"].contains(&value["category"].as_str().unwrap()));
    assert!(value["owner"].is_string());
    assert!(!annotations(&response).is_empty());
}

#[tokio::test]
async fn a_non_strict_schema_in_strict_mode_is_rejected() {
    let (_emulator, openai, _) = indexed_store().await;
    let request = CreateResponseArgs::default()
        .model("gpt-5")
        .input("Anything")
        .text(ResponseTextParam {
            format: TextResponseFormatConfiguration::JsonSchema(ResponseFormatJsonSchema {
                description: None,
                name: "open".into(),
                schema: json!({"type": "object", "properties": {"a": {"type": "string"}}}),
                strict: Some(true),
            }),
            verbosity: None,
        })
        .build()
        .unwrap();
    match openai.responses().create(request).await {
        Err(OpenAIError::ApiError(error)) => {
            assert_eq!(error.status_code.as_u16(), 400);
            assert_eq!(error.api_error.code.as_deref(), Some("invalid_json_schema"));
        }
        other => panic!("expected 400, got {other:?}"),
    }
}

#[tokio::test]
async fn without_a_store_strings_come_from_the_input() {
    let emulator = start(Config::new()).await;
    let openai = client(&emulator, KEY);
    let schema = json!({"type": "object", "additionalProperties": false, "required": ["summary"],
        "properties": {"summary": {"type": "string"}}});
    let input: InputParam = serde_json::from_value(json!([
        {"role": "user", "content": "Acme Corp sells garden furniture through its web shop."}
    ]))
    .unwrap();
    let request = CreateResponseArgs::default()
        .model("gpt-5-nano")
        .input(input)
        .text(ResponseTextParam {
            format: TextResponseFormatConfiguration::JsonSchema(ResponseFormatJsonSchema {
                description: None,
                name: "profile".into(),
                schema,
                strict: Some(true),
            }),
            verbosity: None,
        })
        .build()
        .unwrap();
    let response = openai.responses().create(request).await.unwrap();
    let value: Value = serde_json::from_str(&response.output_text().unwrap()).unwrap();
    assert_eq!(
        value["summary"],
        "Acme Corp sells garden furniture through its web shop."
    );
    assert_eq!(response.model, "gpt-5-nano");
}

#[tokio::test]
async fn a_low_max_output_tokens_makes_the_response_incomplete() {
    let (_emulator, openai, store_id) = indexed_store().await;
    let request = CreateResponseArgs::default()
        .model("gpt-5")
        .input("Summarise the finance process.")
        .tools(vec![file_search(&store_id)])
        .max_output_tokens(20u32)
        .build()
        .unwrap();
    let response = openai.responses().create(request).await.unwrap();
    assert_eq!(response.status, Status::Incomplete);
    assert_eq!(
        response.incomplete_details.as_ref().unwrap().reason,
        "max_output_tokens"
    );
    assert_eq!(response.usage.as_ref().unwrap().output_tokens, 20);
    assert!(response.output_text().unwrap().chars().count() <= 80);
}

#[tokio::test]
async fn previous_response_id_chains_and_counts_cached_tokens() {
    let (_emulator, openai, store_id) = indexed_store().await;
    let first = openai
        .responses()
        .create(
            CreateResponseArgs::default()
                .model("gpt-5")
                .input("How does purchasing approve orders?")
                .tools(vec![file_search(&store_id)])
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        first
            .usage
            .as_ref()
            .unwrap()
            .input_tokens_details
            .cached_tokens,
        0
    );
    let second = openai
        .responses()
        .create(
            CreateResponseArgs::default()
                .model("gpt-5")
                .input("Shorten that.")
                .previous_response_id(&first.id)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        second.previous_response_id.as_deref(),
        Some(first.id.as_str())
    );
    assert!(
        second
            .usage
            .as_ref()
            .unwrap()
            .input_tokens_details
            .cached_tokens
            > 0
    );

    let missing = openai
        .responses()
        .create(
            CreateResponseArgs::default()
                .model("gpt-5")
                .input("Again.")
                .previous_response_id("resp_missing")
                .build()
                .unwrap(),
        )
        .await;
    match missing {
        Err(OpenAIError::ApiError(error)) => {
            assert_eq!(
                error.api_error.param.as_deref(),
                Some("previous_response_id")
            )
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

#[tokio::test]
async fn fabricated_citations_name_a_file_that_no_store_holds() {
    let (emulator, openai, store_id) = indexed_store().await;
    emulator.openai().set_fabricate_citations(true);
    let response = openai
        .responses()
        .create(
            CreateResponseArgs::default()
                .model("gpt-5")
                .input("How are invoices entered?")
                .tools(vec![file_search(&store_id)])
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let text = response.output_text().unwrap();
    assert!(text.contains("[source: fabricated-source.pdf]"), "{text}");
    for real in ["finance.md", "warehouse.pdf", "purchasing.docx"] {
        assert!(!text.contains(&format!("[source: {real}]")));
    }
}

#[tokio::test]
async fn an_expired_store_cannot_be_searched() {
    let (emulator, openai, store_id) = indexed_store().await;
    assert!(emulator.openai().expire_vector_store(&store_id));
    let result = openai
        .responses()
        .create(
            CreateResponseArgs::default()
                .model("gpt-5")
                .input("Anything about invoices?")
                .tools(vec![file_search(&store_id)])
                .build()
                .unwrap(),
        )
        .await;
    match result {
        Err(OpenAIError::ApiError(error)) => {
            assert_eq!(error.status_code.as_u16(), 400);
            assert!(error.api_error.message.contains("expired"));
        }
        other => panic!("expected 400, got {other:?}"),
    }
}

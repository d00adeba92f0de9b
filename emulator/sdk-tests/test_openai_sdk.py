"""The official `openai` Python SDK against the emulator: files, a vector store file batch
uploaded and polled, a response with file_search and a strict JSON schema, and an auth error.
Every response body the SDK receives is also validated against the published OpenAPI schemas."""

import json
import os
from urllib.parse import urlsplit

import httpx
import openai
import pytest

from openapi_schemas import schema_for, validate

DOCUMENTS = {
    "finance.md": "# Finance\n\nInvoices are typed into the ledger by two clerks every morning.\n",
    "warehouse.txt": "Stock levels in the warehouse are counted by hand every Friday.\n",
    "table.csv": "line,output\nA,120\n",
}


@pytest.fixture
def captured():
    """(method, path, status, body) of every response the SDK received."""
    return []


@pytest.fixture
def client(captured):
    def keep(response):
        response.read()
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else None
        captured.append((response.request.method, urlsplit(str(response.request.url)).path, response.status_code, body))

    http = httpx.Client(event_hooks={"response": [keep]}, timeout=20)
    return openai.OpenAI(http_client=http, max_retries=2)


def check_schemas(captured):
    checked = 0
    for method, path, status, body in captured:
        name = schema_for(method, path, status)
        if name and body is not None:
            validate(body, name)
            checked += 1
    assert checked, "no response was validated"


def test_files_round_trip(client, captured, tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("The plant runs two shifts every weekday.\n")
    with path.open("rb") as handle:
        created = client.files.create(file=handle, purpose="assistants")
    assert created.filename == "notes.md"
    assert created.purpose == "assistants"
    assert any(f.id == created.id for f in client.files.list())
    assert client.files.retrieve(created.id).bytes == path.stat().st_size
    assert client.files.content(created.id).read() == path.read_bytes()
    assert client.files.delete(created.id).deleted
    check_schemas(captured)


def test_batch_upload_and_poll_then_file_search_with_strict_schema(client, captured, tmp_path):
    store = client.vector_stores.create(
        name="sdk-test",
        metadata={"run_id": "sdk"},
        expires_after={"anchor": "last_active_at", "days": 2},
    )
    paths = []
    for name, text in DOCUMENTS.items():
        paths.append(tmp_path / name)
        paths[-1].write_text(text)
    handles = [path.open("rb") for path in paths]
    try:
        batch = client.vector_stores.file_batches.upload_and_poll(
            vector_store_id=store.id, files=handles, poll_interval_ms=50
        )
    finally:
        for handle in handles:
            handle.close()
    assert batch.status == "completed"
    assert batch.file_counts.completed == 2
    assert batch.file_counts.failed == 1
    files = client.vector_stores.file_batches.list_files(batch_id=batch.id, vector_store_id=store.id)
    failed = [f for f in files if f.status == "failed"]
    assert [f.last_error.code for f in failed] == ["unsupported_file"]

    schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["findings", "maturity"],
        "properties": {
            "findings": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "string"}},
            "maturity": {"type": "integer", "minimum": 1, "maximum": 5},
        },
    }
    response = client.responses.create(
        model="gpt-5",
        instructions="Report how invoices and stock are handled.",
        input="How are invoices entered and how is stock counted?",
        tools=[{"type": "file_search", "vector_store_ids": [store.id]}],
        include=["file_search_call.results"],
        text={"format": {"type": "json_schema", "name": "findings", "schema": schema, "strict": True}},
    )
    assert response.status == "completed"
    result = json.loads(response.output_text)
    assert len(result["findings"]) == 2
    assert 1 <= result["maturity"] <= 5
    assert all("[source: " in finding for finding in result["findings"])
    search = next(item for item in response.output if item.type == "file_search_call")
    assert search.results and {hit.filename for hit in search.results} <= {"finance.md", "warehouse.txt"}
    message = next(item for item in response.output if item.type == "message")
    citations = [a for a in message.content[0].annotations if a.type == "file_citation"]
    assert citations and all(c.filename in DOCUMENTS for c in citations)
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert response.usage.output_tokens_details.reasoning_tokens == 0

    prose = client.responses.create(
        model="gpt-5",
        input="Describe the warehouse stock count.",
        tools=[{"type": "file_search", "vector_store_ids": [store.id]}],
        max_output_tokens=16,
    )
    assert prose.status == "incomplete"
    assert prose.incomplete_details.reason == "max_output_tokens"

    assert client.vector_stores.delete(store.id).deleted
    check_schemas(captured)


def test_a_wrong_key_is_an_authentication_error(captured):
    def keep(response):
        response.read()
        captured.append((response.request.method, urlsplit(str(response.request.url)).path, response.status_code, response.json()))

    wrong = openai.OpenAI(
        api_key="not-the-key",
        base_url=os.environ["OPENAI_BASE_URL"],
        http_client=httpx.Client(event_hooks={"response": [keep]}),
        max_retries=0,
    )
    with pytest.raises(openai.AuthenticationError) as raised:
        wrong.files.list()
    assert raised.value.code == "invalid_api_key"
    check_schemas(captured)

"""Validation of emulator response bodies against the component schemas of OpenAI's published
OpenAPI document, so that the emulator stays faithful to the wire format, not only to one SDK."""

import functools
import os
import re

import jsonschema
import pytest
import yaml

# (method, path pattern) -> component schema of the response body.
ROUTES = [
    ("POST", r"/v1/files", "OpenAIFile"),
    ("GET", r"/v1/files", "ListFilesResponse"),
    ("GET", r"/v1/files/[^/]+", "OpenAIFile"),
    ("DELETE", r"/v1/files/[^/]+", "DeleteFileResponse"),
    ("POST", r"/v1/vector_stores", "VectorStoreObject"),
    ("GET", r"/v1/vector_stores", "ListVectorStoresResponse"),
    ("GET", r"/v1/vector_stores/[^/]+", "VectorStoreObject"),
    ("DELETE", r"/v1/vector_stores/[^/]+", "DeleteVectorStoreResponse"),
    ("POST", r"/v1/vector_stores/[^/]+/files", "VectorStoreFileObject"),
    ("GET", r"/v1/vector_stores/[^/]+/files", "ListVectorStoreFilesResponse"),
    ("GET", r"/v1/vector_stores/[^/]+/files/[^/]+", "VectorStoreFileObject"),
    ("POST", r"/v1/vector_stores/[^/]+/file_batches", "VectorStoreFileBatchObject"),
    ("GET", r"/v1/vector_stores/[^/]+/file_batches/[^/]+", "VectorStoreFileBatchObject"),
    ("GET", r"/v1/vector_stores/[^/]+/file_batches/[^/]+/files", "ListVectorStoreFilesResponse"),
    ("POST", r"/v1/responses", "Response"),
    ("GET", r"/v1/responses/[^/]+", "Response"),
]


def schema_for(method, path, status):
    """The component schema name for a response, or None when no schema applies."""
    if status >= 400:
        return "ErrorResponse"
    for route_method, pattern, name in ROUTES:
        if route_method == method and re.fullmatch(pattern, path):
            return name
    return None


def _with_nullable(node):
    """OpenAPI's `nullable: true` as JSON Schema: the type also admits null."""
    if isinstance(node, dict):
        node = {key: _with_nullable(value) for key, value in node.items()}
        if node.pop("nullable", False):
            kind = node.get("type")
            if isinstance(kind, str):
                node["type"] = [kind, "null"]
            elif isinstance(kind, list) and "null" not in kind:
                node["type"] = kind + ["null"]
            elif "type" not in node:
                node = {"anyOf": [node, {"type": "null"}]}
        return node
    if isinstance(node, list):
        return [_with_nullable(value) for value in node]
    return node


@functools.lru_cache(maxsize=1)
def _components():
    path = os.environ.get("OPENAI_OPENAPI_SPEC")
    if not path:
        return None
    with open(path, encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    return _with_nullable(spec["components"])


def validate(body, schema_name):
    """Raises jsonschema.ValidationError when `body` does not match the component schema;
    skips the calling test when the OpenAPI document is not available."""
    components = _components()
    if components is None:
        pytest.skip("OpenAPI document not available: schema validation skipped")
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": components}
    jsonschema.Draft202012Validator(root).validate(body)

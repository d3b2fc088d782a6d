"""The OpenAPI schema validates, documents every operation with its permission, errors and
examples, and the interactive docs come from the package's own files."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate

from tests.access.test_authorization_matrix_api import registered_operations

pytestmark = pytest.mark.django_db

PREFIX = "/api/v1"
NULL = {"type": "null"}
ERROR_STATUSES = {"400", "401", "403", "404", "409", "429"}


@pytest.fixture
def schema(client) -> dict[str, Any]:
    response = client.get(f"{PREFIX}/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(schema: dict[str, Any]):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path.removeprefix(PREFIX), operation


def lookup(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow ``$ref`` (and ``allOf`` or ``anyOf`` of one schema) to the schema it names."""
    while True:
        if "$ref" in node:
            target: Any = schema
            for part in node["$ref"].split("/")[1:]:
                target = target[part]
            node = target
        elif len(node.get("allOf", [])) == 1:
            node = node["allOf"][0]
        elif "anyOf" in node and len(others := [n for n in node["anyOf"] if n != NULL]) == 1:
            node = others[0]  # an optional body
        else:
            return node


def has_examples(schema: dict[str, Any], node: dict[str, Any]) -> bool:
    """The schema, or the schema of its items (a page), carries examples."""
    node = lookup(schema, node)
    if node.get("examples"):
        return True
    items = node.get("properties", {}).get("items")
    if items is not None:
        return bool(lookup(schema, lookup(schema, items).get("items", {})).get("examples"))
    return False


def test_the_schema_is_valid_openapi(schema):
    validate(schema)
    assert schema["openapi"].startswith("3.")


def test_the_schema_documents_every_registered_operation(schema):
    documented = {(method, path) for method, path, _ in operations(schema)}
    assert documented == registered_operations()


PERSON_OPERATIONS = {
    "/me/invitations",
    "/invitations/{id}/accept",
    "/invitations/{id}/decline",
}


# Operations that need no token: liveness, and leak reports (holding the token is the proof).
UNAUTHENTICATED = {"/health", "/leaked-tokens"}


def test_every_operation_has_a_summary_a_description_and_its_permission(schema):
    for method, path, operation in operations(schema):
        assert operation.get("summary"), (method, path)
        assert operation.get("description"), (method, path)
        if path in UNAUTHENTICATED:
            assert "security" not in operation, (method, path)
        else:
            assert "permission" in operation["description"] or "token" in operation["description"]
            if path in PERSON_OPERATIONS:
                # The invited person: a personal token, or the console session.
                expected = [{"PersonalTokenAuth": []}, {"PersonSessionAuth": []}]
            else:
                expected = [{"BearerTokenAuth": []}]
            assert operation["security"] == expected, (method, path)


def test_every_authenticated_operation_documents_the_error_shape(schema):
    for method, path, operation in operations(schema):
        if path == "/health":
            continue
        if path == "/leaked-tokens":  # no token: refused only for its body, signature or rate
            assert set(operation["responses"]) == {"202", "400", "401", "429"}
            error = operation["responses"]["429"]["content"]["application/json"]["schema"]
            assert lookup(schema, error)["title"] == "ErrorOut"
            continue
        assert set(operation["responses"]) >= ERROR_STATUSES, (method, path)
        error = operation["responses"]["403"]["content"]["application/json"]["schema"]
        assert lookup(schema, error)["title"] == "ErrorOut"


def test_every_operation_has_examples_for_its_body_and_its_answer(schema):
    for method, path, operation in operations(schema):
        body = operation.get("requestBody")
        if body is not None:
            assert has_examples(schema, body["content"]["application/json"]["schema"]), (
                method,
                path,
            )
        success = next(status for status in operation["responses"] if status.startswith("2"))
        content = operation["responses"][success].get("content")
        if content is not None:  # 204 has none
            assert has_examples(schema, content["application/json"]["schema"]), (method, path)


def test_the_security_scheme_is_bearer(schema):
    scheme = schema["components"]["securitySchemes"]["BearerTokenAuth"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"


def test_the_docs_are_served_from_bundled_files_not_a_cdn(client):
    response = client.get(f"{PREFIX}/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    assert "cdn" not in html and "https://" not in html

"""The schema and docs for anonymous readers: built once, cached by ETag, limited per address."""

from __future__ import annotations

import pytest

from api import docs

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh(settings):
    docs._built.clear()
    yield
    docs._built.clear()


def test_the_schema_is_built_once_per_process(client, monkeypatch):
    from config.api import api

    builds = []
    original = api.get_openapi_schema

    def counted(**kwargs):
        builds.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(api, "get_openapi_schema", counted)
    first = client.get("/api/v1/openapi.json")
    second = client.get("/api/v1/openapi.json")
    assert first.status_code == second.status_code == 200
    assert first.content == second.content and len(builds) == 1
    assert first.json()["info"]["title"] == "Keyward API"


def test_a_reader_with_the_etag_gets_not_modified(client):
    first = client.get("/api/v1/openapi.json")
    assert first.headers["Cache-Control"] == "public, max-age=300"
    again = client.get("/api/v1/openapi.json", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""


def test_anonymous_docs_requests_are_limited_per_address(client, settings):
    settings.KEYWARD_DOCS_REQUESTS_PER_MINUTE = 3
    statuses = [client.get("/api/v1/docs").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = client.get("/api/v1/openapi.json")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "60"
    other = client.get("/api/v1/openapi.json", REMOTE_ADDR="198.51.100.9")
    assert other.status_code == 200


def test_a_failing_cache_never_stops_the_docs(client, monkeypatch):
    def broken(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(docs.cache, "add", broken)
    assert client.get("/api/v1/openapi.json").status_code == 200

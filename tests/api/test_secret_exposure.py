"""A token's secret is in the response that creates or regenerates it, and nowhere else."""

from __future__ import annotations

import logging
import re

import pytest

from orgs.models import AuditEvent
from tests.access.test_authorization_matrix_api import MATRIX, Cell

pytestmark = pytest.mark.django_db

SECRET_FIELD = re.compile(r'"token":\s*"kw[ogu]_')
ISSUING = {("POST", "/api-tokens"), ("POST", "/api-tokens/{id}/regenerate")}


def test_only_create_and_regenerate_answer_a_secret(world, callers, caplog):
    caplog.set_level(logging.DEBUG)
    api = callers.api("org_admin")
    created = api.post("/api-tokens", {"name": "watched", "role": "member"}).json()
    regenerated = api.post(f"/api-tokens/{created['id']}/regenerate", {}).json()
    secrets = {*callers.secrets.values(), created["token"], regenerated["token"]}
    assert created["token"] != regenerated["token"]

    for (method, path), row in sorted(MATRIX.items()):
        call = row.build(Cell(world, "org_admin"))
        response = api.request(method, call.path, call.body, query=call.query)
        body = response.content.decode()
        if (method, path) in ISSUING:
            new_secret = response.json()["token"]
            assert new_secret not in secrets
            assert body.count(new_secret) == 1
            secrets.add(new_secret)
        else:
            assert not SECRET_FIELD.search(body), f"{method} {path}"
            leaked = [secret for secret in secrets if secret in body]
            assert leaked == [], f"{method} {path} answered a secret"

    events = list(AuditEvent.objects.values_list("changes", "object_repr", "via_token_partial"))
    assert not any(secret in str(events) for secret in secrets)
    assert not any(secret in caplog.text for secret in secrets)

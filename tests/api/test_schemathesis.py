"""Property-based tests of every operation against /api/v1/openapi.json (schemathesis).

With a valid organization-admin token, generated requests (valid and invalid) never get a
5xx, and every response matches the schema: documented status, content type and body.
Examples are bounded so that the whole run stays well under a minute.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application

pytestmark = pytest.mark.django_db

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Call the real WSGI handler without it closing the test's database connection.

    Django's test client does the same: between requests the handler closes connections it
    thinks are stale, which on PostgreSQL ends the test's transaction (SQLite's in-memory test
    database ignores the close, which hid this).
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_conforms_to_its_schema(case, callers):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {callers.secrets['org_admin']}"}, checks=CHECKS
    )

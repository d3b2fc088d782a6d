"""When the database cannot be reached, the API and the console answer 503 without details."""

import pytest
from django.db import OperationalError, connection

from tests.factories import issue

pytestmark = pytest.mark.django_db


def database_down(execute, sql, params, many, context):
    raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")


def test_the_api_answers_a_clean_503_while_the_database_is_down(client, org_admin):
    secret = issue(org_admin).secret
    with connection.execute_wrapper(database_down):
        response = client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert response["Retry-After"] == "5"
    assert "127.0.0.1" not in response.content.decode()
    assert client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 200


def test_the_console_answers_a_plain_503_page_while_the_database_is_down(client, world):
    client.force_login(world.alice)
    with connection.execute_wrapper(database_down):
        response = client.get("/o/acme/tokens/")
    assert response.status_code == 503
    body = response.content.decode()
    assert "briefly unavailable" in body and "Connection refused" not in body
    assert client.get("/o/acme/tokens/").status_code == 200

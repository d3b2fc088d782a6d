"""Brute force and abuse: a flood of guessed tokens, oversized bodies."""

import pytest
from django.db import connection

from tests.factories import issue
from tokens import token_format

pytestmark = pytest.mark.django_db
FLOOD = 10_000


def me(client, secret, address):
    response = client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {secret}", REMOTE_ADDR=address)
    return response.status_code


def test_ten_thousand_guessed_tokens_are_throttled_while_real_ones_keep_working(
    client, org_admin, settings
):
    settings.KEYWARD_AUTH_FAILURE_LIMIT = 100
    valid = issue(org_admin).secret
    queries = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    statuses = {401: 0, 429: 0}
    served = 0
    with connection.execute_wrapper(count):
        for index in range(FLOOD):
            guess = token_format.generate("organization")  # well formed, valid checksum
            status = me(client, guess, "203.0.113.66")
            statuses[status] += 1
            if index % 500 == 0:
                # Another address, and the flooding address itself: a valid token is served
                # from both (an office behind one NAT keeps its API access).
                for address in ("198.51.100.10", "203.0.113.66"):
                    assert me(client, valid, address) == 200, (index, address)
                    served += 1
    assert statuses == {401: 100, 429: FLOOD - 100}
    # A well-formed guess costs one indexed lookup, throttled or not (that is what lets a valid
    # token through); nothing else of the flood reaches the database. (The valid token's own
    # last-use writes, once a minute on a slow machine, are updates, not lookups.) How fast
    # valid tokens are served meanwhile is measured in bench/, not asserted here.
    lookups = [sql for sql in queries if sql.startswith("SELECT") and "tokens_tokensecret" in sql]
    assert len(lookups) <= FLOOD + served


def test_bad_checksums_never_reach_the_database(client, db, django_assert_num_queries):
    token = token_format.generate("organization")
    broken = token[:-1] + ("a" if token[-1] != "a" else "b")
    with django_assert_num_queries(0):
        for _ in range(200):
            response = client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {broken}")
            assert response.status_code in (401, 429)


def test_an_oversized_api_body_is_refused_before_it_is_read(client, org_admin):
    secret = issue(org_admin).secret
    body = b'{"name": "' + b"x" * (256 * 1024) + b'"}'
    response = client.post(
        "/api/v1/api-tokens",
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_an_oversized_console_form_is_refused_with_400(client, world):
    client.force_login(world.alice)
    response = client.post("/o/acme/tokens/new/", {"name": "x" * (256 * 1024)})
    assert response.status_code == 400

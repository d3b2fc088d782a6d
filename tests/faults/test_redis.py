"""Redis fails in every way it can, and the API and the console keep serving.

Keyward's cache (the bearer throttle) and usage buffer reach a real Redis through a FaultProxy
that the tests cut, hang, slow down and restore. Valid tokens and sessions are served
throughout; the throttle and the usage counts fall back to this process; one warning per
outage; the shared count resumes when Redis answers again, without a restart.
"""

import time

import pytest

from tests.factories import PASSWORD, issue
from tokens.models import TokenUsage
from tokens.outage import redis_outage

pytestmark = pytest.mark.django_db

ME = "/api/v1/me"


def me(client, secret, address="198.51.100.7"):
    return client.get(ME, HTTP_AUTHORIZATION=f"Bearer {secret}", REMOTE_ADDR=address)


def outage_warnings(caplog):
    return [
        record
        for record in caplog.records
        if record.levelname == "WARNING" and "Redis does not answer" in record.getMessage()
    ]


@pytest.fixture
def low_limit(settings):
    settings.KEYWARD_AUTH_FAILURE_LIMIT = 3


def test_with_redis_down_from_the_start_valid_tokens_are_served_and_failures_throttled_here(
    client, org_admin, redis_proxy, low_limit, caplog
):
    redis_proxy.proxy.go_down()
    valid = issue(org_admin).secret
    with caplog.at_level("INFO"):
        served = [me(client, valid).status_code for _ in range(5)]
        refused = [me(client, "kwo_garbage").status_code for _ in range(5)]
        served_while_throttled = me(client, valid).status_code
    assert served == [200] * 5
    assert refused == [401, 401, 401, 429, 429]  # the per-process throttle, as without Redis
    assert served_while_throttled == 200
    assert len(outage_warnings(caplog)) == 1


def test_redis_going_down_between_requests_fails_none_of_them(
    client, org_admin, redis_proxy, caplog
):
    valid = issue(org_admin)
    with caplog.at_level("INFO"):
        assert me(client, valid.secret).status_code == 200
        redis_proxy.proxy.go_down()
        statuses = [me(client, valid.secret).status_code for _ in range(10)]
    assert statuses == [200] * 10
    assert len(outage_warnings(caplog)) == 1
    # The uses made during the outage are counted by this process and reach the database.
    redis_proxy.buffer.flush()
    assert TokenUsage.objects.get(token=valid.token).count == 11


def test_a_hung_redis_holds_no_request_longer_than_its_timeout(
    client, org_admin, redis_proxy, caplog
):
    valid = issue(org_admin).secret
    assert me(client, valid).status_code == 200
    redis_proxy.proxy.hang()
    with caplog.at_level("INFO"):
        durations = []
        for _ in range(10):
            started = time.monotonic()
            assert me(client, valid).status_code == 200
            durations.append(time.monotonic() - started)
    # redis-py's own default (5 s per call) made every request wait; now one request waits one
    # timeout (0.5 s) and the others do not ask Redis until the backoff has passed.
    assert max(durations) < 2, durations
    assert len(outage_warnings(caplog)) == 1


def test_a_redis_answering_after_two_seconds_is_treated_as_down_not_waited_for(
    client, org_admin, redis_proxy, low_limit, caplog
):
    valid = issue(org_admin).secret
    redis_proxy.proxy.delay = 2.0
    with caplog.at_level("INFO"):
        durations = []
        statuses = []
        for secret in [valid] * 5 + ["kwo_garbage"] * 5:
            started = time.monotonic()
            statuses.append(me(client, secret).status_code)
            durations.append(time.monotonic() - started)
    assert statuses == [200] * 5 + [401, 401, 401, 429, 429]
    assert max(durations) < 2, durations
    assert len(outage_warnings(caplog)) == 1


def test_when_redis_returns_the_shared_throttle_and_usage_resume_without_a_restart(
    client, org_admin, redis_proxy, low_limit, caplog
):
    valid = issue(org_admin)
    redis_proxy.proxy.go_down()
    with caplog.at_level("INFO"):
        assert me(client, "kwo_garbage", address="198.51.100.8").status_code == 401
        assert me(client, valid.secret).status_code == 200
        redis_proxy.proxy.come_back()
        time.sleep(redis_outage.backoff_seconds + 0.1)
        assert me(client, "kwo_garbage", address="198.51.100.9").status_code == 401
        assert me(client, valid.secret).status_code == 200
    # Counted in Redis again, where every instance reads it.
    assert redis_proxy.shared_failure_count("198.51.100.9") == 1
    assert redis_proxy.shared_failure_count("198.51.100.8") == 0  # that one stayed in-process
    assert any(field.startswith("d:") for field in redis_proxy.shared_usage(valid.token.pk))
    messages = [record.getMessage() for record in caplog.records]
    assert len(outage_warnings(caplog)) == 1
    assert sum("Redis answers again" in message for message in messages) == 1


@pytest.mark.parametrize("fault", ["down", "hung"])
def test_the_console_signs_in_and_serves_pages_while_redis_is_out(
    client, world, redis_proxy, fault
):
    getattr(redis_proxy.proxy, "go_down" if fault == "down" else "hang")()
    response = client.post("/login/", {"username": "alice", "password": PASSWORD}, follow=True)
    assert response.status_code == 200
    assert response.wsgi_request.user.username == "alice"
    for path in ("/o/acme/tokens/", "/o/acme/audit/"):
        assert client.get(path).status_code == 200, path
    # Sessions live in the database: the next request is still signed in.
    assert client.get("/o/acme/tokens/").wsgi_request.user.is_authenticated

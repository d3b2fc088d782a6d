"""The usage buffer shared through Redis: one write per token per minute across instances."""

import socket
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import issue
from tokens import usage
from tokens.auth import authenticate
from tokens.models import ApiToken, TokenSecret, TokenUsage
from tokens.services import regenerate_token
from tokens.usage_redis import RedisUsageBuffer

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
REDIS_URL = "redis://127.0.0.1:6379/15"


def redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def namespace():
    if not redis_answers():
        pytest.skip("no Redis at 127.0.0.1:6379")
    return f"keyward-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def instances(namespace):
    """Two processes' buffers on one Redis, as two app servers would have them."""
    first = RedisUsageBuffer(REDIS_URL, namespace=namespace)
    second = RedisUsageBuffer(REDIS_URL, namespace=namespace)
    yield first, second
    first.clear()


def call(buffer, issued, at, address="203.0.113.5", monkeypatch=None):
    usage.use(buffer)  # the suite's fixture drops it after the test
    return authenticate(f"Bearer {issued.secret}", address, now=at)


def writes(queries):
    return [q["sql"] for q in queries if q["sql"].split()[0].upper() in {"UPDATE", "INSERT"}]


def test_requests_through_two_instances_write_once_a_minute_between_them(
    world, org_admin, instances, monkeypatch
):
    first, second = instances
    issued = issue(org_admin, name="Busy")
    assert call(first, issued, NOON, monkeypatch=monkeypatch).wrote_usage
    with CaptureQueriesContext(connection) as captured:
        for second_of_minute in range(1, 59):
            instance = (first, second)[second_of_minute % 2]
            at = NOON + timedelta(seconds=second_of_minute)
            assert not call(instance, issued, at, monkeypatch=monkeypatch).wrote_usage
    assert writes(captured.captured_queries) == []
    assert TokenUsage.objects.get(token=issued.token).count == 1
    # Either instance sees what both gathered, before anything is written.
    assert first.pending_counts(issued.token.pk) == {NOON.date(): 58}
    assert second.pending_count() == 58
    assert second.flush() == 1
    assert TokenUsage.objects.get(token=issued.token).count == 59
    token = ApiToken.objects.get(pk=issued.token.pk)
    assert token.last_used_at == NOON + timedelta(seconds=58)
    assert first.pending_count() == 0


def test_the_first_request_after_a_minute_writes_what_every_instance_gathered(
    world, org_admin, instances, monkeypatch
):
    first, second = instances
    issued = issue(org_admin, name="Steady")
    call(first, issued, NOON, monkeypatch=monkeypatch)
    for offset in (10, 20, 30, 40):
        call(second, issued, NOON + timedelta(seconds=offset), monkeypatch=monkeypatch)
    later = NOON + timedelta(seconds=61)
    assert call(first, issued, later, address="198.51.100.9", monkeypatch=monkeypatch).wrote_usage
    assert TokenUsage.objects.get(token=issued.token).count == 6
    token = ApiToken.objects.get(pk=issued.token.pk)
    assert (token.last_used_at, token.last_used_address) == (later, "198.51.100.9")
    # And the minute starts again for both instances.
    after = later + timedelta(seconds=5)
    assert not call(second, issued, after, monkeypatch=monkeypatch).wrote_usage


def test_uses_gathered_by_an_instance_that_died_are_written_by_another(
    world, org_admin, namespace, monkeypatch
):
    issued = issue(org_admin, name="Orphan")
    dying = RedisUsageBuffer(REDIS_URL, namespace=namespace)
    survivor = RedisUsageBuffer(REDIS_URL, namespace=namespace)
    try:
        call(dying, issued, NOON, monkeypatch=monkeypatch)
        for offset in (1, 2, 3):
            call(dying, issued, NOON + timedelta(seconds=offset), monkeypatch=monkeypatch)
        del dying  # never flushed
        written = survivor.flush(older_than=timedelta(minutes=1), now=NOON + timedelta(seconds=70))
        assert written == 1
        assert TokenUsage.objects.get(token=issued.token).count == 4
    finally:
        survivor.clear()


def test_the_flusher_takes_only_tokens_idle_for_a_minute(world, org_admin, instances, monkeypatch):
    first, second = instances
    idle, busy = issue(org_admin, name="Idle"), issue(org_admin, name="Busy")
    call(first, idle, NOON, monkeypatch=monkeypatch)
    call(second, idle, NOON + timedelta(seconds=5), monkeypatch=monkeypatch)
    call(first, busy, NOON + timedelta(seconds=50), monkeypatch=monkeypatch)
    call(second, busy, NOON + timedelta(seconds=55), monkeypatch=monkeypatch)
    assert first.flush(older_than=timedelta(minutes=1), now=NOON + timedelta(seconds=70)) == 1
    assert TokenUsage.objects.get(token=idle.token).count == 2
    assert TokenUsage.objects.get(token=busy.token).count == 1
    assert second.pending_counts(busy.token.pk) == {NOON.date(): 1}


def test_counts_fall_on_each_request_s_utc_day_and_secrets_keep_their_own_use(
    world, org_admin, instances, monkeypatch
):
    first, second = instances
    old = issue(org_admin, name="Rotating")
    new = regenerate_token(actor=org_admin, token=old.token, grace=timedelta(days=2))
    start = datetime.now(UTC).replace(hour=23, minute=59, second=50, microsecond=0)
    call(first, old, start, address="192.0.2.1", monkeypatch=monkeypatch)
    call(second, old, start + timedelta(seconds=5), address="192.0.2.1", monkeypatch=monkeypatch)
    call(second, new, start + timedelta(seconds=15), address="192.0.2.2", monkeypatch=monkeypatch)
    monkeypatch.setattr(usage, "_buffer", first)
    uses = {use.partial_token: use for use in usage.secret_last_uses(old.token)}
    assert uses[old.token.partial_token].last_used_address == "192.0.2.1"
    assert uses[new.token.partial_token].last_used_address == "192.0.2.2"
    first.flush()
    counts = dict(TokenUsage.objects.filter(token=old.token).values_list("day", "count"))
    assert counts == {start.date(): 2, start.date() + timedelta(days=1): 1}
    secret = TokenSecret.objects.get(token=old.token, partial_token=new.token.partial_token)
    assert secret.last_used_address == "192.0.2.2"


def test_the_console_chart_counts_requests_other_instances_have_not_written(
    world, org_admin, instances, monkeypatch
):
    first, second = instances
    issued = issue(org_admin, name="Charted")
    today = datetime.now(UTC)
    for offset in range(3):
        call(second, issued, today + timedelta(seconds=offset), monkeypatch=monkeypatch)
    monkeypatch.setattr(usage, "_buffer", first)
    assert usage.daily_counts(issued.token, days=1, today=today.date()) == [(today.date(), 3)]


def test_requests_go_on_counted_in_process_while_redis_does_not_answer(
    world, org_admin, monkeypatch, caplog
):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = RedisUsageBuffer(f"redis://127.0.0.1:{port}/0", namespace="keyward-down")
    issued = issue(org_admin, name="Outage")
    assert call(unreachable, issued, NOON, monkeypatch=monkeypatch).wrote_usage
    assert not call(
        unreachable, issued, NOON + timedelta(seconds=1), monkeypatch=monkeypatch
    ).wrote_usage
    assert unreachable.pending_counts(issued.token.pk) == {date(2026, 6, 15): 1}
    assert unreachable.flush() == 1
    assert TokenUsage.objects.get(token=issued.token).count == 2
    warnings = [r for r in caplog.records if "Redis does not answer" in r.getMessage()]
    assert len(warnings) == 1  # once per outage, not once per request


def test_the_shared_buffer_is_chosen_exactly_when_redis_is_configured(settings, namespace):
    settings.KEYWARD_USAGE_REDIS_URL = REDIS_URL
    assert isinstance(usage._make_buffer(), RedisUsageBuffer)
    settings.KEYWARD_USAGE_REDIS_URL = ""
    chosen = usage._make_buffer()
    assert type(chosen) is usage.UsageBuffer

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import issue
from tokens import usage
from tokens.auth import authenticate
from tokens.models import ApiToken, TokenSecret, TokenUsage
from tokens.services import regenerate_token

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)


def call(issued, at, address="203.0.113.5"):
    return authenticate(f"Bearer {issued.secret}", address, now=at)


def writes(queries):
    return [q["sql"] for q in queries if q["sql"].split()[0].upper() in {"UPDATE", "INSERT"}]


def test_many_requests_within_a_minute_write_once_and_count_every_one(world, org_admin):
    issued = issue(org_admin, name="Busy")
    assert call(issued, NOON).wrote_usage
    with CaptureQueriesContext(connection) as captured:
        for second in range(1, 59):
            assert not call(issued, NOON + timedelta(seconds=second)).wrote_usage
    assert writes(captured.captured_queries) == []
    assert TokenUsage.objects.get(token=issued.token).count == 1
    assert usage.current().pending_count() == 58
    usage.current().flush()
    assert TokenUsage.objects.get(token=issued.token, day=NOON.date()).count == 59
    token = ApiToken.objects.get(pk=issued.token.pk)
    assert token.last_used_at == NOON + timedelta(seconds=58)
    assert token.last_used_address == "203.0.113.5"


def test_the_first_request_after_a_minute_writes_again_with_what_was_buffered(world, org_admin):
    issued = issue(org_admin, name="Steady")
    call(issued, NOON)
    for second in range(10, 50, 10):
        call(issued, NOON + timedelta(seconds=second))
    assert call(issued, NOON + timedelta(seconds=61), address="198.51.100.9").wrote_usage
    assert TokenUsage.objects.get(token=issued.token).count == 6
    token = ApiToken.objects.get(pk=issued.token.pk)
    assert token.last_used_at == NOON + timedelta(seconds=61)
    assert token.last_used_address == "198.51.100.9"
    assert usage.current().pending_count() == 0


def test_the_flusher_writes_only_tokens_idle_for_a_minute(world, org_admin):
    idle, busy = issue(org_admin, name="Idle"), issue(org_admin, name="Busy")
    call(idle, NOON)
    call(idle, NOON + timedelta(seconds=5))
    call(busy, NOON + timedelta(seconds=50))
    call(busy, NOON + timedelta(seconds=55))
    written = usage.current().flush(
        older_than=timedelta(minutes=1), now=NOON + timedelta(seconds=70)
    )
    assert written == 1
    assert TokenUsage.objects.get(token=idle.token).count == 2
    assert TokenUsage.objects.get(token=busy.token).count == 1  # its second use still buffered


def test_counts_fall_on_the_utc_day_of_each_request(world, org_admin):
    issued = issue(org_admin, name="Night owl")
    before_midnight = datetime(2026, 6, 15, 23, 59, 50, tzinfo=UTC)
    call(issued, before_midnight)
    call(issued, before_midnight + timedelta(seconds=5))
    call(issued, before_midnight + timedelta(seconds=15))  # 00:00:05 the next day
    usage.current().flush()
    counts = dict(TokenUsage.objects.filter(token=issued.token).values_list("day", "count"))
    assert counts == {date(2026, 6, 15): 2, date(2026, 6, 16): 1}


def test_each_secret_keeps_its_own_last_use_during_a_grace_period(world, org_admin):
    old = issue(org_admin, name="Rotating")
    new = regenerate_token(actor=org_admin, token=old.token, grace=timedelta(hours=1))
    start = datetime.now(UTC)
    call(old, start, address="192.0.2.1")
    call(new, start + timedelta(seconds=1), address="192.0.2.2")
    uses = {use.partial_token: use for use in usage.secret_last_uses(old.token)}
    old_partial = old.token.partial_token
    assert uses[old_partial].last_used_address == "192.0.2.1"  # buffered, shown already
    assert uses[new.token.partial_token].last_used_address == "192.0.2.2"
    usage.current().flush()
    old_secret = TokenSecret.objects.get(token=old.token, partial_token=old_partial)
    assert old_secret.last_used_address == "192.0.2.1" and old_secret.ends_at is not None


def test_daily_counts_list_every_day_with_zeros_oldest_first(world, org_admin):
    token = issue(org_admin, name="Charted").token
    TokenUsage.objects.create(token=token, day=date(2026, 6, 10), count=7)
    TokenUsage.objects.create(token=token, day=date(2026, 6, 15), count=3)
    TokenUsage.objects.create(token=token, day=date(2026, 5, 1), count=99)  # out of range
    counts = usage.daily_counts(token, days=7, today=date(2026, 6, 15))
    assert counts[0] == (date(2026, 6, 9), 0)
    assert counts[-1] == (date(2026, 6, 15), 3)
    assert dict(counts)[date(2026, 6, 10)] == 7 and len(counts) == 7
    assert usage.total_requests(token, 7, today=date(2026, 6, 15)) == 10


def test_daily_counts_include_what_this_process_has_not_written_yet(world, org_admin):
    issued = issue(org_admin, name="Fresh")
    today = datetime.now(UTC)
    call(issued, today)
    call(issued, today + timedelta(seconds=1))
    assert usage.daily_counts(issued.token, days=1, today=today.date()) == [(today.date(), 2)]


def test_daily_counts_never_reach_back_more_than_ninety_days(world, org_admin):
    token = issue(org_admin, name="Long").token
    assert len(usage.daily_counts(token, days=400, today=date(2026, 6, 15))) == 90


def test_counts_older_than_ninety_days_are_pruned(world, org_admin):
    token = issue(org_admin, name="Old").token
    today = date(2026, 6, 15)
    for offset in (0, 89, 90, 200):
        TokenUsage.objects.create(token=token, day=today - timedelta(days=offset), count=1)
    now = datetime(2026, 6, 15, 8, tzinfo=UTC)
    assert usage.prunable(now=now).count() == 2
    assert usage.prune(now=now, batch_size=1) == 2
    kept = set(TokenUsage.objects.values_list("day", flat=True))
    assert kept == {today, today - timedelta(days=89)}


def test_requests_by_token_sums_many_tokens_in_one_query(
    world, org_admin, django_assert_num_queries
):
    first, second = issue(org_admin, name="A").token, issue(org_admin, name="B").token
    today = datetime.now(UTC).date()
    TokenUsage.objects.create(token=first, day=today, count=4)
    TokenUsage.objects.create(token=first, day=today - timedelta(days=1), count=1)
    TokenUsage.objects.create(token=second, day=today - timedelta(days=40), count=9)
    with django_assert_num_queries(1):
        totals = usage.requests_by_token([first.pk, second.pk], days=30)
    assert totals == {first.pk: 5}


def test_a_deleted_token_s_buffered_uses_are_dropped_without_error(world, org_admin):
    issued = issue(org_admin, name="Gone")
    call(issued, NOON)
    call(issued, NOON + timedelta(seconds=1))
    ApiToken.objects.filter(pk=issued.token.pk).delete()
    usage.current().flush()
    assert not TokenUsage.objects.exists()
    assert usage.current().pending_count() == 0

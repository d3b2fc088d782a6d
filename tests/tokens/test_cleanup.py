import io
import json
import os
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orgs.models import AuditEvent, User
from tests.factories import OPERATOR, bulk_tokens, issue
from tokens import cleanup
from tokens.models import ApiToken, ExpiryReminder, TokenSecret, TokenStatus, TokenUsage
from tokens.services import revoke_token

pytestmark = pytest.mark.django_db


def run(*args):
    out = io.StringIO()
    call_command("cleanup_tokens", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def ago(**kwargs):
    return timezone.now() - timedelta(**kwargs)


@pytest.fixture
def mix(world, org_admin, other_org_admin, member):
    """Tokens in every state the cleanup distinguishes."""
    return {
        "expired_long_ago": bulk_tokens(world.acme, 3, prefix="old", expires_at=ago(days=40)),
        "expired_recently": bulk_tokens(world.acme, 2, prefix="recent", expires_at=ago(days=5)),
        "revoked_long_ago": bulk_tokens(
            world.acme, 2, prefix="revoked", status="revoked", revoked_at=ago(days=100)
        ),
        "active": bulk_tokens(world.acme, 2, prefix="fine", expires_at=ago(days=-10)),
        "globex_expired": bulk_tokens(world.globex, 4, prefix="gx", expires_at=ago(days=31)),
    }


def alive(ids):
    return ApiToken.objects.filter(pk__in=ids).count()


# Deleting -------------------------------------------------------------------------------------


def test_by_default_tokens_expired_over_thirty_days_ago_are_deleted_and_nothing_else(mix):
    output = run()
    assert alive(mix["expired_long_ago"]) == 0 and alive(mix["globex_expired"]) == 0
    assert alive(mix["expired_recently"]) == 2
    assert alive(mix["revoked_long_ago"]) == 2
    assert alive(mix["active"]) == 2
    assert "Deleted 7 expired and 0 revoked tokens" in output
    assert "acme: 3 expired" in output and "globex: 4 expired" in output


def test_deleted_tokens_take_their_secrets_and_usage_and_deactivate_their_technical_users(mix):
    ids = mix["expired_long_ago"]
    users = list(ApiToken.objects.filter(pk__in=ids).values_list("user_id", flat=True))
    TokenUsage.objects.create(token_id=ids[0], day=timezone.now().date(), count=3)
    token = ApiToken.objects.get(pk=ids[1])
    ExpiryReminder.objects.create(token=token, threshold_days=1, expires_at=token.expires_at)
    kept = mix["active"][0]
    TokenUsage.objects.create(token_id=kept, day=timezone.now().date(), count=5)
    run()
    assert not TokenSecret.objects.filter(token_id__in=ids).exists()
    assert not TokenUsage.objects.filter(token_id__in=ids).exists()
    assert not ExpiryReminder.objects.filter(token_id__in=ids).exists()
    assert TokenSecret.objects.filter(token_id=kept).exists()
    assert TokenUsage.objects.get(token_id=kept).count == 5
    assert not User.objects.filter(pk__in=users, is_active=True).exists()
    assert User.objects.filter(pk__in=users).count() == 3  # kept for history


def test_a_personal_token_s_owner_stays_active(world, member):
    token = issue(member, scope="personal", role="member", name="Mine").token
    ApiToken.objects.filter(pk=token.pk).update(expires_at=ago(days=60))
    run()
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    world.carol.refresh_from_db()
    assert world.carol.is_active


def test_revoked_for_deletes_long_revoked_tokens(mix):
    output = run("--revoked-for", "90d")
    assert alive(mix["revoked_long_ago"]) == 0
    assert "Deleted 7 expired and 2 revoked tokens" in output


def test_expired_for_and_keep_expired_set_the_cut_off(mix):
    run("--expired-for", "3d", "--org", "acme")
    assert alive(mix["expired_recently"]) == 0 and alive(mix["globex_expired"]) == 4
    ApiToken.objects.filter(pk__in=mix["globex_expired"]).update(expires_at=ago(days=400))
    run("--keep-expired")
    assert alive(mix["globex_expired"]) == 4


def test_org_limits_the_cleanup_to_one_organization(mix):
    run("--org", "globex")
    assert alive(mix["globex_expired"]) == 0 and alive(mix["expired_long_ago"]) == 3


def test_each_deleted_batch_lists_its_tokens_in_one_audit_event_per_organization(mix):
    gone = mix["expired_long_ago"] + mix["globex_expired"]
    expected = {
        (token.organization.name, token.pk, token.name, token.partial_token)
        for token in ApiToken.objects.filter(pk__in=gone).select_related("organization")
    }
    run("--batch-size", "5")
    events = list(AuditEvent.objects.filter(action="tokens.deleted").order_by("id"))
    listed = [
        (event.organization_name, entry["id"], entry["name"], entry["token"])
        for event in events
        for entry in event.changes["deleted"]["before"]
    ]
    assert len(listed) == 7 and set(listed) == expected
    assert len(events) == 3  # batches of 5: acme's 3 and globex's 2, then globex's 2
    assert all(event.changes["reason"]["after"] == "expired" for event in events)
    summary = AuditEvent.objects.filter(action="tokens.cleaned_up").first()
    assert all(event.actor_name == summary.actor_name for event in events)


def test_each_run_writes_one_audit_event_per_organization_with_counts(mix):
    run("--revoked-for", "30d")
    events = AuditEvent.objects.filter(action="tokens.cleaned_up").order_by("organization_name")
    assert [event.organization_name for event in events] == ["Acme Corp", "Globex"]
    acme = events[0]
    assert acme.actor_kind == "operator" and "cleanup_tokens" in acme.actor_name
    assert acme.changes["deleted_expired"]["after"] == 3
    assert acme.changes["deleted_revoked"]["after"] == 2
    assert acme.changes["technical_users_deactivated"]["after"] == 5
    assert acme.changes["criteria"]["after"]["expired_for"] == "30d"
    run()
    assert AuditEvent.objects.filter(action="tokens.cleaned_up").count() == 2  # nothing to say


def test_old_daily_counts_are_pruned_with_the_cleanup(world, org_admin):
    token = issue(org_admin, name="Counted").token
    today = timezone.now().date()
    TokenUsage.objects.create(token=token, day=today, count=1)
    TokenUsage.objects.create(token=token, day=today - timedelta(days=120), count=1)
    output = run()
    assert list(TokenUsage.objects.values_list("day", flat=True)) == [today]
    assert "prune 1 daily usage rows" in output.lower() or "pruned 1 daily" in output


# Revoking unused ------------------------------------------------------------------------------


def test_unused_for_revokes_not_deletes_each_with_its_own_audit_event(world, org_admin):
    stale = bulk_tokens(world.acme, 2, prefix="stale", created_at=ago(days=200))
    used = bulk_tokens(
        world.acme, 1, prefix="used", created_at=ago(days=200), last_used_at=ago(days=1)
    )
    fresh = issue(org_admin, name="Brand new").token
    output = run("--unused-for", "90d")
    assert "revoked 2 unused tokens" in output
    assert ApiToken.objects.filter(pk__in=stale, status=TokenStatus.REVOKED).count() == 2
    assert ApiToken.objects.get(pk=used[0]).status == TokenStatus.ACTIVE
    assert ApiToken.objects.get(pk=fresh.pk).status == TokenStatus.ACTIVE
    events = AuditEvent.objects.filter(action="token.revoked")
    assert events.count() == 2
    assert "Unused for 90 days" in events[0].changes["revoked_reason"]["after"]
    summary = AuditEvent.objects.get(action="tokens.cleaned_up")
    assert summary.changes["revoked_unused"]["after"] == 2


def test_an_unused_token_revoked_meanwhile_is_skipped_not_an_error(world, org_admin):
    token = issue(org_admin, name="Racing").token
    revoke_token(actor=org_admin, token=token)  # by someone else, after the run selected it
    criteria = cleanup.Criteria(unused_for=timedelta(days=90))
    report = cleanup.CleanupReport(dry_run=False, criteria=criteria)
    selected_before = ApiToken.objects.filter(pk=token.pk)
    cleanup._revoke_phase(
        report, selected_before, OPERATOR, timedelta(days=90), 10, timezone.now(), None
    )
    assert report.skipped == 1 and report.total("revoked_unused") == 0
    assert AuditEvent.objects.filter(action="token.revoked").count() == 1


# Dry run and output ---------------------------------------------------------------------------


def test_dry_run_prints_exactly_what_would_happen_and_changes_nothing(mix):
    before_tokens = ApiToken.objects.count()
    output = run("--dry-run", "--revoked-for", "90d")
    lines = [line for line in output.splitlines() if line.startswith("would ")]
    assert len(lines) == 9
    token = ApiToken.objects.get(pk=mix["expired_long_ago"][0])
    assert any(
        f"#{token.pk} {token.name!r} ({token.partial_token}), expired" in line
        and "deactivate its technical user" in line
        and line.startswith("would delete acme organization token")
        for line in lines
    )
    assert "Would delete 7 expired and 2 revoked tokens" in output
    assert ApiToken.objects.count() == before_tokens
    assert not AuditEvent.objects.filter(action="tokens.cleaned_up").exists()
    assert User.objects.filter(kind="technical", is_active=False).count() == 0


def test_dry_run_and_real_run_agree(mix):
    planned = json.loads(run("--dry-run", "--json").splitlines()[-1])
    done = json.loads(run("--json"))
    for key in ("deleted_expired", "deleted_revoked", "technical_users_deactivated"):
        assert planned[key] == done[key], key
    assert planned["organizations"] == done["organizations"]
    assert planned["dry_run"] and not done["dry_run"]


def test_json_prints_one_machine_readable_summary(mix):
    summary = json.loads(run("--json", "--revoked-for", "90d"))
    assert summary["deleted_expired"] == 7 and summary["deleted_revoked"] == 2
    assert summary["organizations"]["globex"]["deleted_expired"] == 4
    assert summary["criteria"] == {
        "expired_for": "30d",
        "revoked_for": "90d",
        "unused_for": None,
        "organization": None,
    }


def test_no_progress_bar_when_output_is_not_a_terminal(mix, capsys):
    call_command("cleanup_tokens")
    assert "[" not in capsys.readouterr().err


def test_the_progress_bar_draws_on_a_terminal():
    from tokens.management.commands.cleanup_tokens import ProgressBar

    stream = io.StringIO()
    bar = ProgressBar(stream, {"expired": 4})
    bar("expired", 2)
    bar("expired", 4)
    assert "2/4" in stream.getvalue() and "[" + "#" * 30 + "] 4/4\n" in stream.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--expired-for", "soon"], "not a duration"),
        (["--unused-for", "0d"], "not a duration"),
        (["--batch-size", "0"], "--batch-size must be between 1 and 10000"),
        (["--org", "nope"], "No organization 'nope'"),
    ],
)
def test_bad_options_fail_with_a_clear_error_and_change_nothing(mix, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert alive(mix["expired_long_ago"]) == 3


def test_help_explains_the_command():
    from tokens.management.commands.cleanup_tokens import Command

    parser = Command().create_parser("manage.py", "cleanup_tokens")
    text = parser.format_help()
    for option in ("--expired-for", "--revoked-for", "--unused-for", "--org", "--dry-run"):
        assert option in text
    assert "Exit codes" in text


# Scale, interruption, concurrency -------------------------------------------------------------


@pytest.mark.slow
def test_tens_of_thousands_of_tokens_are_deleted_in_bounded_batches(world):
    expired = bulk_tokens(world.acme, 15_000, prefix="x", expires_at=ago(days=60))
    expired += bulk_tokens(world.globex, 5_000, prefix="y", expires_at=ago(days=60))
    keep = bulk_tokens(world.acme, 500, prefix="keep", expires_at=ago(days=-30))
    with CaptureQueriesContext(connection) as captured:
        report = cleanup.run_cleanup(actor=OPERATOR, criteria=cleanup.Criteria(), batch_size=2000)
    assert report.total("deleted_expired") == 20_000
    assert report.total("technical_users_deactivated") == 20_000
    assert ApiToken.objects.count() == 500 and alive(keep) == 500
    assert not TokenSecret.objects.filter(token_id__in=expired[:1000]).exists()
    # Memory stays flat: every read of tokens is limited to one batch of ids, never whole rows.
    token_reads = [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].startswith("SELECT") and 'FROM "tokens_apitoken"' in q["sql"]
    ]
    assert token_reads
    for sql in token_reads:
        assert "LIMIT 2000" in sql or "IN (" in sql, sql
    assert len(token_reads) <= 2 * (20_000 // 2000) + 6  # a few per batch, whatever the rows
    # The log still says which tokens went: one event per batch and organization lists them.
    listed = AuditEvent.objects.filter(action="tokens.deleted")
    assert len(listed) <= 20_000 // 2000 + 1
    assert sorted(
        entry["id"] for event in listed for entry in event.changes["deleted"]["before"]
    ) == sorted(expired)


def test_an_interrupted_cleanup_leaves_no_batch_half_done(world, monkeypatch):
    ids = bulk_tokens(world.acme, 25, prefix="cut", expires_at=ago(days=60))
    calls = {"count": 0}
    real = cleanup._deactivate_technical_users

    def flaky(users):
        calls["count"] += 1
        result = real(users)  # the batch's users are deactivated inside its transaction...
        if calls["count"] == 2:
            raise KeyboardInterrupt  # ...and then Ctrl-C arrives before the commit
        return result

    monkeypatch.setattr(cleanup, "_deactivate_technical_users", flaky)
    with pytest.raises(KeyboardInterrupt):
        cleanup.run_cleanup(actor=OPERATOR, criteria=cleanup.Criteria(), batch_size=10)

    remaining = ApiToken.objects.filter(pk__in=ids)
    assert remaining.count() == 15  # the first batch entirely, the second not at all
    remaining_users = remaining.values_list("user_id", flat=True)
    assert not User.objects.filter(pk__in=remaining_users, is_active=False).exists()
    assert User.objects.filter(kind="technical", is_active=False).count() == 10
    event = AuditEvent.objects.get(action="tokens.cleaned_up")
    assert event.changes["deleted_expired"]["after"] == 10
    assert event.changes["interrupted"]["after"] is True

    monkeypatch.setattr(cleanup, "_deactivate_technical_users", real)
    cleanup.run_cleanup(actor=OPERATOR, criteria=cleanup.Criteria(), batch_size=10)
    assert not ApiToken.objects.filter(pk__in=ids).exists()
    assert User.objects.filter(kind="technical", is_active=False).count() == 25


def test_ctrl_c_exits_with_130_and_says_what_was_kept(world, monkeypatch):
    bulk_tokens(world.acme, 3, prefix="cut", expires_at=ago(days=60))

    def interrupted(token_ids):
        raise KeyboardInterrupt

    monkeypatch.setattr(cleanup, "_delete_tokens", interrupted)
    errors = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("cleanup_tokens", stdout=io.StringIO(), stderr=errors)
    assert exit_info.value.code == 130
    assert "Interrupted" in errors.getvalue()
    assert ApiToken.objects.count() == 3


def test_running_twice_in_a_row_changes_nothing_the_second_time(mix):
    first = json.loads(run("--json", "--revoked-for", "90d"))
    second = json.loads(run("--json", "--revoked-for", "90d"))
    assert first["deleted_expired"] == 7
    assert second["deleted_expired"] == second["deleted_revoked"] == 0
    assert AuditEvent.objects.filter(action="tokens.cleaned_up").count() == 2


postgres_only = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
    reason="concurrent transactions need PostgreSQL",
)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_delete_each_token_once_on_postgres(world):
    ids = bulk_tokens(world.acme, 3000, prefix="race", expires_at=ago(days=60))
    reports, errors = [], []

    def worker():
        try:
            reports.append(
                cleanup.run_cleanup(actor=OPERATOR, criteria=cleanup.Criteria(), batch_size=100)
            )
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert alive(ids) == 0
    assert sum(report.total("deleted_expired") for report in reports) == 3000
    assert User.objects.filter(kind="technical", is_active=False).count() == 3000


def test_a_small_batch_size_still_deletes_everything_in_several_batches(mix, monkeypatch):
    batches = []
    real = cleanup._delete_tokens

    def counting(token_ids):
        batches.append(len(token_ids))
        return real(token_ids)

    monkeypatch.setattr(cleanup, "_delete_tokens", counting)
    run("--batch-size", "2")
    assert batches == [2, 2, 2, 1]
    assert alive(mix["expired_long_ago"] + mix["globex_expired"]) == 0


def test_dry_run_lists_unused_tokens_as_revocations(world):
    ids = bulk_tokens(world.acme, 1, prefix="dusty", created_at=ago(days=120))
    output = run("--dry-run", "--unused-for", "90d")
    assert f"would revoke acme organization token #{ids[0]}" in output
    assert "last used never" in output
    assert ApiToken.objects.get(pk=ids[0]).status == TokenStatus.ACTIVE

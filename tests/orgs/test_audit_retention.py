"""Audit retention: KEYWARD_AUDIT_RETENTION_DAYS and prune_audit_events remove old events in
short batches, the only way events are ever deleted, and say what they removed."""

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import connection

from orgs import audit, retention
from orgs.models import AppendOnlyError, AuditEvent
from orgs.principals import Principal
from tests.config.test_settings import PRODUCTION, manage

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 3, 15, 12, 0, tzinfo=UTC)


def record_at(moment, organization, label="op"):
    with time_machine.travel(moment, tick=False):
        return audit.record(
            actor=Principal.operator(label=label),
            action="retention.test",
            organization=organization,
            object_type="thing",
        )


def prune(*args):
    out = io.StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("prune_audit_events", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def history(world):
    """Ten events 400 days old (two sharing an instant), five 100 days old, in two orgs."""
    old = [record_at(NOW - timedelta(days=400, hours=i // 2), world.acme) for i in range(8)]
    old += [record_at(NOW - timedelta(days=390), world.globex) for _ in range(2)]
    recent = [record_at(NOW - timedelta(days=100, hours=i), world.acme) for i in range(5)]
    return old, recent


def test_old_events_go_in_batches_and_one_event_says_what_went(history, world):
    old, recent = history
    before = AuditEvent.objects.count()
    summary = json.loads(prune("--older-than", "365d", "--batch-size", "3", "--json"))
    assert summary["removed"] == 10 and summary["batches"] == 4
    assert not AuditEvent.objects.filter(pk__in=[event.pk for event in old]).exists()
    assert AuditEvent.objects.filter(pk__in=[event.pk for event in recent]).count() == 5
    assert AuditEvent.objects.count() == before - 10 + 1
    event = AuditEvent.objects.get(action="audit_events.pruned")
    assert event.actor_kind == "operator" and event.organization is None
    assert event.changes["removed"]["after"] == 10
    oldest = min(e.occurred_at for e in old).isoformat()
    newest = max(e.occurred_at for e in old).isoformat()
    assert event.changes["oldest_removed"]["after"] == oldest == summary["oldest_removed"]
    assert event.changes["newest_removed"]["after"] == newest == summary["newest_removed"]


def test_the_retention_setting_is_the_default_cut_off(history, settings):
    settings.KEYWARD_AUDIT_RETENTION_DAYS = 200
    assert "Removed 10 audit events older than 200d" in prune()
    assert AuditEvent.objects.filter(action="retention.test").count() == 5
    settings.KEYWARD_AUDIT_RETENTION_DAYS = 30
    assert "older than 30d" in prune()
    assert not AuditEvent.objects.filter(action="retention.test").exists()


def test_without_a_setting_or_a_flag_events_are_kept_forever(history, settings):
    settings.KEYWARD_AUDIT_RETENTION_DAYS = None
    count = AuditEvent.objects.count()
    assert "kept forever" in prune()
    assert AuditEvent.objects.count() == count


def test_a_dry_run_counts_and_removes_nothing(history):
    count = AuditEvent.objects.count()
    output = prune("--older-than", "365d", "--dry-run")
    assert output.startswith("Would remove 10 audit events older than 365d")
    assert AuditEvent.objects.count() == count
    summary = json.loads(prune("--older-than", "365d", "--dry-run", "--json"))
    assert summary["removed"] == 10 and summary["dry_run"] is True


def test_nothing_old_means_nothing_removed_and_no_event(world):
    record_at(NOW - timedelta(days=2), world.acme)
    assert "Removed 0 audit events" in prune("--older-than", "365d")
    assert not AuditEvent.objects.filter(action="audit_events.pruned").exists()


def test_a_retention_under_a_day_or_a_bad_batch_is_refused(history):
    count = AuditEvent.objects.count()
    with pytest.raises(CommandError, match="at least one day"):
        prune("--older-than", "90m")
    with pytest.raises(CommandError, match="Between 1 and"):
        prune("--older-than", "365d", "--batch-size", "0")
    with pytest.raises(CommandError, match="not a duration"):
        prune("--older-than", "soon")
    assert AuditEvent.objects.count() == count


def test_an_interrupted_run_keeps_finished_batches_and_records_them(history, monkeypatch):
    calls = []
    original = retention._remove

    def remove_then_fail(event_ids, cutoff):
        calls.append(len(event_ids))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(event_ids, cutoff)

    monkeypatch.setattr(retention, "_remove", remove_then_fail)
    with time_machine.travel(NOW, tick=False), pytest.raises(KeyboardInterrupt):
        retention.prune_audit_events(
            actor=Principal.operator(), older_than=timedelta(days=365), batch_size=4
        )
    event = AuditEvent.objects.get(action="audit_events.pruned")
    assert event.changes["removed"]["after"] == 4
    assert event.changes["interrupted"]["after"] is True


def test_the_narrow_path_never_removes_a_younger_event(history):
    _old, recent = history
    cutoff = NOW - timedelta(days=365)
    assert retention._remove([event.pk for event in recent], cutoff) == 0
    assert AuditEvent.objects.filter(pk__in=[event.pk for event in recent]).count() == 5


def test_every_other_path_still_refuses_to_change_or_delete_events(history):
    prune("--older-than", "365d")
    event = AuditEvent.objects.filter(action="retention.test").first()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action="changed")
    with pytest.raises(AppendOnlyError):
        event.delete()
    event.action = "changed"
    with pytest.raises(AppendOnlyError):
        event.save()
    assert AuditEvent.objects.filter(pk=event.pk, action="retention.test").exists()


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5", "99999999"])
def test_a_bad_retention_setting_stops_the_start_naming_the_variable(value):
    result = manage("check", env={**PRODUCTION, "KEYWARD_AUDIT_RETENTION_DAYS": value})
    assert result.returncode != 0
    assert "KEYWARD_AUDIT_RETENTION_DAYS" in result.stderr


def test_a_good_retention_setting_is_read_as_days():
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.KEYWARD_AUDIT_RETENTION_DAYS)",
        env={**PRODUCTION, "KEYWARD_AUDIT_RETENTION_DAYS": "400"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "400"


# Monthly partitions on PostgreSQL --------------------------------------------------------------


def _partition_the_audit_table():
    """The conversion of docs/deploy.md, on the (empty) test table: the same table name,
    partitioned by month on occurred_at, with the months the test needs."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE orgs_auditevent RENAME TO orgs_auditevent_unpartitioned")
        cursor.execute(
            "CREATE TABLE orgs_auditevent (LIKE orgs_auditevent_unpartitioned "
            "INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS) "
            "PARTITION BY RANGE (occurred_at)"
        )
        cursor.execute("ALTER TABLE orgs_auditevent ADD PRIMARY KEY (id, occurred_at)")
        cursor.execute("CREATE INDEX ON orgs_auditevent (occurred_at)")
        for month in range(1, 13):
            start = datetime(2026, month, 1, tzinfo=UTC)
            end = datetime(2026 + month // 12, month % 12 + 1, 1, tzinfo=UTC)
            cursor.execute(
                f"CREATE TABLE orgs_auditevent_p2026{month:02d} PARTITION OF orgs_auditevent "
                f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
            )


def _tables(prefix):
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relname LIKE %s", [prefix + "%"])
        return {name for (name,) in cursor.fetchall()}


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="declarative partitioning is PostgreSQL's"
)
def test_on_a_partitioned_table_old_months_are_dropped_not_deleted_row_by_row(world, monkeypatch):
    _partition_the_audit_table()
    assert retention.is_partitioned()
    for month in (1, 2, 3, 4):
        for day in (3, 17):
            record_at(datetime(2026, month, day, 8, tzinfo=UTC), world.acme, f"m{month}")
    removed_rows = []
    original = retention._remove
    monkeypatch.setattr(
        retention, "_remove", lambda ids, cutoff: removed_rows.extend(ids) or original(ids, cutoff)
    )
    now = datetime(2026, 4, 10, tzinfo=UTC)
    report = retention.prune_audit_events(
        actor=Principal.operator(), older_than=timedelta(days=60), now=now
    )
    # Cut-off 2026-02-09: January goes as a whole partition, February's 3rd row by row.
    assert report.partitions_dropped == ["orgs_auditevent_p202601"]
    assert "orgs_auditevent_p202601" not in _tables("orgs_auditevent_p")
    assert report.removed == 3 and len(removed_rows) == 1
    assert report.oldest == datetime(2026, 1, 3, 8, tzinfo=UTC)
    assert report.newest == datetime(2026, 2, 3, 8, tzinfo=UTC)
    left = sorted(AuditEvent.objects.filter(action="retention.test").values_list("actor_name"))
    assert left == [("m2",), ("m3",), ("m3",), ("m4",), ("m4",)]
    pruned = AuditEvent.objects.get(action="audit_events.pruned")
    assert pruned.changes["partitions_dropped"]["after"] == ["orgs_auditevent_p202601"]
    # The months ahead are kept ready: 2026-04 existed; May to July were created.
    assert report.partitions_created == []
    later = retention.prune_audit_events(
        actor=Principal.operator(),
        older_than=timedelta(days=60),
        now=datetime(2026, 12, 5, tzinfo=UTC),
    )
    assert later.partitions_created == [
        "orgs_auditevent_p202701",
        "orgs_auditevent_p202702",
        "orgs_auditevent_p202703",
    ]
    assert {"orgs_auditevent_p202602", "orgs_auditevent_p202603"} <= set(later.partitions_dropped)

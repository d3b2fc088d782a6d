"""Audit retention: removing events older than the retention period, for
``prune_audit_events`` and cron.

The audit log is append-only: its queryset refuses ``update()`` and ``delete()`` and an event
refuses ``save()`` and ``delete()``. This module is the one place that removes events, and only
those older than a cut-off at least MINIMUM_RETENTION in the past, checked again in the very
statement that deletes them.

Events go in short batches, oldest first, each batch its own transaction, so no lock is held for
long and an interrupted run leaves whole batches done. On PostgreSQL, when the table is
partitioned by month (docs/deploy.md), months wholly older than the cut-off are detached and
dropped instead (no row is deleted one by one), and the month that straddles the cut-off is
pruned in batches. Every run that removed something writes one audit event saying what.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.db.models import Count, Max, Min, QuerySet
from django.utils import timezone

from orgs import audit
from orgs.audit_log import AuditLog, Position
from orgs.durations import to_text
from orgs.models import AuditEvent, Organization
from orgs.principals import Principal

DEFAULT_BATCH_SIZE = 5000
MAX_BATCH_SIZE = 50_000
MINIMUM_RETENTION = timedelta(days=1)
# Monthly partitions kept ready ahead of time, so an insert never finds no partition.
MONTHS_AHEAD = 3

# Called with the number of events removed so far, after each batch or partition.
Progress = Callable[[int], None]


def retention_period() -> timedelta | None:
    """The operator's retention (``KEYWARD_AUDIT_RETENTION_DAYS``); None keeps events forever."""
    days = settings.KEYWARD_AUDIT_RETENTION_DAYS
    return None if days is None else timedelta(days=days)


@dataclass
class PruneReport:
    """What a run removed (or, for a dry run, would remove)."""

    dry_run: bool
    older_than: timedelta
    cutoff: datetime
    removed: int = 0
    oldest: datetime | None = None
    newest: datetime | None = None
    batches: int = 0
    partitions_dropped: list[str] = field(default_factory=list)
    partitions_created: list[str] = field(default_factory=list)
    interrupted: bool = False

    def add(self, count: int, oldest: datetime | None, newest: datetime | None) -> None:
        self.removed += count
        if count and oldest is not None:
            self.oldest = oldest if self.oldest is None else min(self.oldest, oldest)
        if count and newest is not None:
            self.newest = newest if self.newest is None else max(self.newest, newest)

    def as_dict(self) -> dict:
        def text(moment: datetime | None) -> str | None:
            return None if moment is None else moment.astimezone(UTC).isoformat()

        return {
            "dry_run": self.dry_run,
            "interrupted": self.interrupted,
            "older_than": to_text(self.older_than),
            "cutoff": text(self.cutoff),
            "removed": self.removed,
            "oldest_removed": text(self.oldest),
            "newest_removed": text(self.newest),
            "batches": self.batches,
            "partitions_dropped": self.partitions_dropped,
            "partitions_created": self.partitions_created,
        }


def _remove(event_ids: list[int], cutoff: datetime) -> int:
    """Delete these events if they are older than the cut-off; return how many went.

    The only deletion of audit events anywhere: it bypasses the queryset's refusal on purpose
    and repeats the age condition in its own statement, so no caller can widen it.
    """
    doomed = AuditEvent.objects.filter(pk__in=event_ids, occurred_at__lt=cutoff)
    return models.QuerySet.delete(doomed)[0]


def _scopes() -> list[QuerySet[AuditEvent]]:
    """The log, one organization at a time (and the events of none), so that every read walks
    an index that starts with the organization: the table has no index on time alone."""
    organizations = Organization.objects.order_by("pk").values_list("pk", flat=True)
    scopes: list[QuerySet[AuditEvent]] = [AuditEvent.objects.filter(organization__isnull=True)]
    scopes.extend(
        AuditEvent.objects.filter(organization_id=organization_id)
        for organization_id in organizations.iterator()
    )
    return scopes


def _prune_rows(
    report: PruneReport, cutoff: datetime, batch_size: int, progress: Progress | None
) -> None:
    for scope in _scopes():
        position: Position | None = None
        while True:
            with transaction.atomic():
                # Walk forward from the last batch: restarting at the oldest row each time
                # would make PostgreSQL step over every index entry deleted so far (dead until
                # vacuum).
                older = AuditLog._from(scope.filter(occurred_at__lt=cutoff), position, True)
                keys = list(
                    older.order_by("occurred_at", "id").values_list("occurred_at", "id")[
                        :batch_size
                    ]
                )
                if not keys:
                    break
                removed = _remove([event_id for _moment, event_id in keys], cutoff)
            report.batches += 1
            report.add(removed, keys[0][0], keys[-1][0])
            position = Position(*keys[-1])
            if progress is not None:
                progress(report.removed)


# Partitions (PostgreSQL) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Partition:
    name: str
    starts: datetime | None  # None: MINVALUE, or the DEFAULT partition
    ends: datetime | None  # None: MAXVALUE, or the DEFAULT partition


def is_partitioned() -> bool:
    """Whether the audit table is a partitioned table (PostgreSQL declarative partitioning)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [AuditEvent._meta.db_table]
        )
        row = cursor.fetchone()
    return row is not None and row[0] == "p"


def partitions() -> list[Partition]:
    """The audit table's partitions with their ranges, oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT child.relname,
                   (regexp_match(pg_get_expr(child.relpartbound, child.oid),
                                 'FROM \\(''([^'']+)''\\)'))[1]::timestamptz,
                   (regexp_match(pg_get_expr(child.relpartbound, child.oid),
                                 'TO \\(''([^'']+)''\\)'))[1]::timestamptz
            FROM pg_inherits
            JOIN pg_class AS child ON child.oid = pg_inherits.inhrelid
            WHERE pg_inherits.inhparent = to_regclass(%s)
            ORDER BY 2 NULLS FIRST, 1
            """,
            [AuditEvent._meta.db_table],
        )
        return [Partition(*row) for row in cursor.fetchall()]


def _month_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(month: datetime) -> datetime:
    return (month + timedelta(days=32)).replace(day=1)


def ensure_partitions(*, now: datetime, months_ahead: int = MONTHS_AHEAD) -> list[str]:
    """Create the monthly partitions from this month to ``months_ahead`` months on that are
    missing; return their names."""
    existing = partitions()
    created = []
    month = _month_start(now)
    table = AuditEvent._meta.db_table
    for _ in range(months_ahead + 1):
        ends = _next_month(month)
        covered = any(
            p.starts is not None and p.ends is not None and p.starts <= month and ends <= p.ends
            for p in existing
        )
        if not covered:
            name = f"{table}_p{month:%Y%m}"
            with transaction.atomic(), connection.cursor() as cursor:
                # Names and bounds are made here from dates, never from input; DDL takes no
                # bound parameters.
                cursor.execute(
                    f"CREATE TABLE {connection.ops.quote_name(name)} PARTITION OF "
                    f"{connection.ops.quote_name(table)} FOR VALUES "
                    f"FROM ('{month.isoformat()}') TO ('{ends.isoformat()}')"
                )
            created.append(name)
        month = ends
    return created


def _drop_partitions(report: PruneReport, cutoff: datetime, progress: Progress | None) -> None:
    """Detach and drop each partition that holds only events older than the cut-off."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    for partition in partitions():
        if partition.ends is None or partition.ends > cutoff:
            continue
        name = connection.ops.quote_name(partition.name)
        with transaction.atomic(), connection.cursor() as cursor:
            # Identifiers come from the catalogue (pg_class), quoted; nothing from input.
            cursor.execute(f"SELECT count(*), min(occurred_at), max(occurred_at) FROM {name}")  # noqa: S608
            count, oldest, newest = cursor.fetchone()
            cursor.execute(f"ALTER TABLE {table} DETACH PARTITION {name}")
            cursor.execute(f"DROP TABLE {name}")
        report.partitions_dropped.append(partition.name)
        report.add(count, oldest, newest)
        if progress is not None:
            progress(report.removed)


# The service ----------------------------------------------------------------------------------


def prune_audit_events(
    *,
    actor: Principal,
    older_than: timedelta,
    now: datetime | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> PruneReport:
    """Remove audit events older than ``older_than`` (whole partitions first where the table is
    partitioned, then rows in short batches) and record one event saying what went.

    Interrupted, it still records what the finished batches removed, then re-raises.
    """
    if older_than < MINIMUM_RETENTION:
        raise ValidationError({"older_than": ["Keep audit events for at least one day."]})
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValidationError({"batch_size": [f"Between 1 and {MAX_BATCH_SIZE}."]})
    now = now or timezone.now()
    report = PruneReport(dry_run=dry_run, older_than=older_than, cutoff=now - older_than)
    if dry_run:
        for scope in _scopes():
            found = scope.filter(occurred_at__lt=report.cutoff).aggregate(
                count=Count("id"), oldest=Min("occurred_at"), newest=Max("occurred_at")
            )
            report.add(found["count"], found["oldest"], found["newest"])
        return report
    try:
        if is_partitioned():
            report.partitions_created = ensure_partitions(now=now)
            _drop_partitions(report, report.cutoff, progress)
        _prune_rows(report, report.cutoff, batch_size, progress)
    except BaseException:
        report.interrupted = True
        raise
    finally:
        if report.removed:
            _record(actor, report)
    return report


def _record(actor: Principal, report: PruneReport) -> None:
    summary = report.as_dict()
    after = {
        "removed": report.removed,
        "oldest_removed": summary["oldest_removed"],
        "newest_removed": summary["newest_removed"],
        "older_than": summary["older_than"],
        "cutoff": summary["cutoff"],
    }
    if report.partitions_dropped:
        after["partitions_dropped"] = report.partitions_dropped
    if report.interrupted:
        after["interrupted"] = True
    audit.record(
        actor=actor,
        action="audit_events.pruned",
        organization=None,
        object_type="audit_log",
        object_repr=f"{report.removed} audit events older than {summary['cutoff']}",
        changes=audit.diff({}, after),
    )

"""Bulk cleanup of old tokens, for ``cleanup_tokens`` and cron.

Deletes tokens expired (or revoked) longer than a cut-off in short transactions of at most
``batch_size`` ids: each batch selects ids only, deletes their rows and deactivates their
technical users, then commits, so memory stays flat and no batch holds locks for long. A batch
either happens entirely or not at all; Ctrl-C or an error stops between or inside a batch and
leaves nothing half done. Two runs at once take disjoint batches (``SKIP LOCKED`` on PostgreSQL;
SQLite serializes writers). Each batch writes one audit event per organization listing the
tokens it deleted (``tokens.deleted``), and each run one per organization with its counts.

Tokens unused for a while (``--unused-for``, and each scope's security policy setting "Revoke
tokens unused for", see ``tokens/unused.py``) are revoked, not deleted, one by one through
``revoke_token`` so each gets its own audit event and can be restored.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from access.errors import DomainError
from orgs import audit
from orgs.batches import no_wait_for_disk
from orgs.columns import concrete_field
from orgs.durations import format_duration, to_text
from orgs.models import AuditEvent, Organization, User, UserKind
from orgs.principals import Principal
from tokens import unused, usage
from tokens.models import ApiToken, TokenStatus
from tokens.services import revoke_token

# Bigger batches share the index pages they touch: on SQLite, 20,000 tokens took 0.67-0.72 s
# of CPU in batches of 1,000, 0.45 s in batches of 2,000 and 0.42-0.44 s in batches of 5,000
# (bench/RESULTS.md, round two); 2,000 keeps nearly all of that with batches well under 1 s.
DEFAULT_BATCH_SIZE = 2000
MAX_BATCH_SIZE = 10_000
EXPIRED = "expired"
REVOKED = "revoked"
UNUSED = "unused"

# Called with (reason, done so far in this phase) after each batch; for progress bars.
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class Criteria:
    """Which tokens a cleanup touches. ``None`` leaves that kind alone."""

    expired_for: timedelta | None = timedelta(days=30)
    revoked_for: timedelta | None = None
    unused_for: timedelta | None = None
    organization: Organization | None = None

    def describe(self) -> dict[str, str | None]:
        def text(value: timedelta | None) -> str | None:
            return None if value is None else to_text(value)

        return {
            "expired_for": text(self.expired_for),
            "revoked_for": text(self.revoked_for),
            "unused_for": text(self.unused_for),
            "organization": self.organization.slug if self.organization else None,
        }


@dataclass(frozen=True)
class PlannedChange:
    """One token a cleanup deletes or revokes, as ``--dry-run`` prints it."""

    action: str  # "delete" or "revoke"
    reason: str  # EXPIRED, REVOKED or UNUSED
    token_id: int
    organization_id: int
    organization_slug: str
    scope: str
    name: str
    partial_token: str
    since: datetime | None  # expired at, revoked at, or last used at
    deactivates_user: bool  # a technical user left without a token is deactivated


@dataclass
class OrganizationCounts:
    deleted_expired: int = 0
    deleted_revoked: int = 0
    revoked_unused: int = 0
    technical_users_deactivated: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.deleted_expired or self.deleted_revoked or self.revoked_unused)


@dataclass
class CleanupReport:
    """What a run did (or, for a dry run, would do), per organization id."""

    dry_run: bool
    criteria: Criteria
    by_organization: dict[int, OrganizationCounts] = field(
        default_factory=lambda: defaultdict(OrganizationCounts)
    )
    organization_slugs: dict[int, str] = field(default_factory=dict)
    usage_rows_pruned: int = 0
    skipped: int = 0  # unused tokens another run or person changed first
    interrupted: bool = False

    def total(self, name: str) -> int:
        return sum(getattr(counts, name) for counts in self.by_organization.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "interrupted": self.interrupted,
            "criteria": self.criteria.describe(),
            "deleted_expired": self.total("deleted_expired"),
            "deleted_revoked": self.total("deleted_revoked"),
            "revoked_unused": self.total("revoked_unused"),
            "technical_users_deactivated": self.total("technical_users_deactivated"),
            "usage_rows_pruned": self.usage_rows_pruned,
            "skipped": self.skipped,
            "organizations": {
                self.organization_slugs.get(org_id, str(org_id)): {
                    "deleted_expired": counts.deleted_expired,
                    "deleted_revoked": counts.deleted_revoked,
                    "revoked_unused": counts.revoked_unused,
                    "technical_users_deactivated": counts.technical_users_deactivated,
                }
                for org_id, counts in sorted(self.by_organization.items())
                if counts.changed
            },
        }


# Selecting ------------------------------------------------------------------------------------


def _scoped(queryset: QuerySet[ApiToken], criteria: Criteria) -> QuerySet[ApiToken]:
    if criteria.organization is not None:
        queryset = queryset.filter(organization=criteria.organization)
    return queryset.order_by()


def expired_tokens(criteria: Criteria, now: datetime) -> QuerySet[ApiToken]:
    """Tokens (active or revoked) that expired longer than ``expired_for`` ago."""
    if criteria.expired_for is None:
        return ApiToken.objects.none()
    return _scoped(ApiToken.objects.filter(expires_at__lte=now - criteria.expired_for), criteria)


def revoked_tokens(criteria: Criteria, now: datetime) -> QuerySet[ApiToken]:
    """Tokens revoked longer than ``revoked_for`` ago (and not already counted as expired)."""
    if criteria.revoked_for is None:
        return ApiToken.objects.none()
    queryset = ApiToken.objects.filter(
        status=TokenStatus.REVOKED, revoked_at__lte=now - criteria.revoked_for
    )
    if criteria.expired_for is not None:
        queryset = queryset.exclude(expires_at__lte=now - criteria.expired_for)
    return _scoped(queryset, criteria)


def unused_tokens(criteria: Criteria, now: datetime) -> QuerySet[ApiToken]:
    """Active, unexpired tokens not used (nor created) within ``unused_for``."""
    if criteria.unused_for is None:
        return ApiToken.objects.none()
    return _scoped(
        ApiToken.objects.active(now).filter(unused.unused_before(now - criteria.unused_for)),
        criteria,
    )


def plan(
    criteria: Criteria, *, now: datetime, chunk_size: int = DEFAULT_BATCH_SIZE
) -> Iterator[PlannedChange]:
    """Every change a run with these criteria would make now, streamed (for ``--dry-run``)."""
    phases = [
        ("delete", EXPIRED, expired_tokens(criteria, now), "expires_at"),
        ("delete", REVOKED, revoked_tokens(criteria, now), "revoked_at"),
        ("revoke", UNUSED, unused_tokens(criteria, now), "last_used_at"),
    ]
    for action, reason, queryset, since_field in phases:
        rows = queryset.order_by("pk").values_list(
            "pk",
            "organization_id",
            "organization__slug",
            "scope",
            "name",
            "partial_token",
            since_field,
            "user__kind",
            "user__is_active",
        )
        for row in rows.iterator(chunk_size=chunk_size):
            token_id, organization_id, slug, scope, name, partial, since, kind, is_active = row
            yield PlannedChange(
                action,
                reason,
                token_id,
                organization_id,
                slug,
                scope,
                name,
                partial,
                since,
                deactivates_user=action == "delete" and kind == UserKind.TECHNICAL and is_active,
            )
    yield from _policy_plan(criteria, now)


def _policy_plan(criteria: Criteria, now: datetime) -> Iterator[PlannedChange]:
    """What the security policies' "Revoke tokens unused for" would revoke in this run."""
    already = unused_tokens(criteria, now) if criteria.unused_for is not None else None
    for token, _days in unused.planned(
        now=now, organization=criteria.organization, exclude=already
    ):
        yield PlannedChange(
            "revoke",
            UNUSED,
            token.pk,
            token.organization_id,
            token.organization.slug,
            token.scope,
            token.name,
            token.partial_token,
            token.last_used_at,
            deactivates_user=False,
        )


# Changing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claimed:
    """One token of a batch: what deleting it needs, and what its batch's audit event lists."""

    token_id: int
    organization_id: int
    user_id: int
    user_kind: str
    group_id: int | None
    scope: str
    name: str
    partial_token: str


def _claim_batch(queryset: QuerySet[ApiToken], batch_size: int) -> list[_Claimed]:
    """One batch of tokens, locked for this transaction."""
    if connection.features.has_select_for_update_skip_locked:
        # Concurrent runs skip each other's rows instead of waiting or deleting them twice.
        queryset = queryset.select_for_update(skip_locked=True, of=("self",))
    return [
        _Claimed(*row)
        for row in queryset.values_list(
            "pk",
            "organization_id",
            "user_id",
            "user__kind",
            "group_id",
            "scope",
            "name",
            "partial_token",
        )[:batch_size]
    ]


def _quoted(model: type[models.Model], field: str | None = None) -> str:
    """A table's (or one of its columns') quoted name, from the model's own metadata."""
    quote = connection.ops.quote_name
    if field is None:
        return quote(model._meta.db_table)
    return quote(concrete_field(model, field).column)


def _id_list(ids: list[int]) -> tuple[str, list[Any]]:
    """``column <this>`` matching any of ``ids``: one array parameter on PostgreSQL (one plan
    whatever the batch size), a list of parameters elsewhere."""
    if connection.vendor == "postgresql":
        return "= ANY(%s)", [list(ids)]
    return f"IN ({', '.join(['%s'] * len(ids))})", list(ids)


_cascades: dict[str, frozenset[str]] = {}


def _cascaded_by_database() -> frozenset[str]:
    """Tables whose rows PostgreSQL itself deletes with their token (``ON DELETE CASCADE``,
    migration tokens.0007); elsewhere, none. Read once per database and process: if a later
    migration took a cascade away, the rows left behind would fail the batch's commit on
    their foreign key, never stay orphaned."""
    if connection.vendor != "postgresql":
        return frozenset()
    name = connection.settings_dict["NAME"]
    if name not in _cascades:
        _cascades[name] = _read_cascades()
    return _cascades[name]


def _read_cascades() -> frozenset[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text FROM pg_constraint "
            "WHERE contype = 'f' AND confrelid = %s::regclass AND confdeltype = 'c'",
            [ApiToken._meta.db_table],
        )
        return frozenset(table.strip('"') for (table,) in cursor.fetchall())


def _delete_tokens(token_ids: list[int]) -> int:
    """Delete the tokens and what cascades from them in one statement per table.

    ``QuerySet.delete()`` would load every token and delete them a hundred at a time, and even
    a filter on a thousand ids costs more in Python than the statement does in the database:
    the statements are written here from the models' metadata, the ids bound as parameters.
    The rows that depend on a token (secrets, usage, reminders: whatever relation cascades) go
    first by token id, unless PostgreSQL cascades them itself; a relation that does not simply
    cascade falls back to Django's collector, so a model added later is never skipped.
    """
    relations = ApiToken._meta.related_objects
    if any(relation.on_delete is not models.CASCADE for relation in relations):
        deleted = ApiToken.objects.filter(pk__in=token_ids).only("pk").delete()[1]
        return deleted.get(ApiToken._meta.label, 0)
    matching, parameters = _id_list(token_ids)
    cascaded = _cascaded_by_database()
    with connection.cursor() as cursor:
        for relation in relations:
            model = relation.related_model
            assert not isinstance(model, str)  # "self" is resolved once the apps are loaded
            if model._meta.db_table in cascaded:
                continue
            cursor.execute(
                f"DELETE FROM {_quoted(model)} "  # noqa: S608 (names from metadata)
                f"WHERE {_quoted(model, relation.field.name)} {matching}",
                parameters,
            )
        cursor.execute(
            f"DELETE FROM {_quoted(ApiToken)} WHERE {_quoted(ApiToken, 'id')} {matching}",  # noqa: S608
            parameters,
        )
        deleted_tokens: int = cursor.rowcount
        return deleted_tokens


def _deactivate_technical_users(users: dict[int, int]) -> Counter[int]:
    """Deactivate the given technical users ({user: organization}) left without a token;
    return how many per organization."""
    if not users:
        return Counter()
    matching, parameters = _id_list(list(users))
    user_table, token_table = _quoted(User), _quoted(ApiToken)
    # One statement: the users of the batch that are technical, active and left without any
    # token (a technical user has one token, but nothing here relies on it).
    statement = (
        f"UPDATE {user_table} SET {_quoted(User, 'is_active')} = %s "  # noqa: S608
        f"WHERE {_quoted(User, 'id')} {matching} AND {_quoted(User, 'kind')} = %s "
        f"AND {_quoted(User, 'is_active')} = %s AND NOT EXISTS (SELECT 1 FROM {token_table} "
        f"WHERE {token_table}.{_quoted(ApiToken, 'user')} = {user_table}.{_quoted(User, 'id')}) "
        f"RETURNING {_quoted(User, 'id')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [False, *parameters, UserKind.TECHNICAL, True])
        deactivated = [user_id for (user_id,) in cursor.fetchall()]
    return Counter(users[user_id] for user_id in deactivated)


def _record_batch(actor: Principal, reason: str, batch: list[_Claimed]) -> None:
    """One audit event per organization in a deleted batch, listing its tokens: the log says
    what went without an event per token."""
    by_organization: dict[int, list[_Claimed]] = defaultdict(list)
    for claimed in batch:
        by_organization[claimed.organization_id].append(claimed)
    organizations = Organization.objects.in_bulk(list(by_organization))
    for org_id, tokens in sorted(by_organization.items()):
        organization = organizations.get(org_id)
        if organization is None:  # deleted meanwhile; its tokens went with it
            continue
        audit.record(
            actor=actor,
            action="tokens.deleted",
            organization=organization,
            object_type="organization",
            object_id=organization.pk,
            object_repr=f"{len(tokens)} {reason} tokens",
            changes={
                "deleted": {
                    "before": [
                        {
                            "id": token.token_id,
                            "name": token.name,
                            "token": token.partial_token,
                            "scope": token.scope,
                            "group_id": token.group_id,
                        }
                        for token in tokens
                    ],
                    "after": None,
                },
                "reason": {"before": None, "after": reason},
            },
        )


def _delete_phase(
    report: CleanupReport,
    reason: str,
    queryset: QuerySet[ApiToken],
    batch_size: int,
    progress: Progress | None,
    actor: Principal,
) -> None:
    counter = f"deleted_{reason}"
    done = 0
    last_id = 0
    while True:
        with transaction.atomic():
            # A crash may lose this batch whole (its deletions and its audit event): the
            # tokens are still there, still matching, for the next run.
            no_wait_for_disk()
            # Walk the ids forward: restarting from the front each batch would make PostgreSQL
            # step over every index entry deleted so far (dead until vacuumed), so each batch
            # would cost more than the last.
            batch = _claim_batch(queryset.filter(pk__gt=last_id).order_by("pk"), batch_size)
            if not batch:
                return
            _delete_tokens([claimed.token_id for claimed in batch])
            deactivated = _deactivate_technical_users(
                {
                    claimed.user_id: claimed.organization_id
                    for claimed in batch
                    if claimed.user_kind == UserKind.TECHNICAL
                }
            )
            _record_batch(actor, reason, batch)
        last_id = batch[-1].token_id
        # Counted after the commit, so an interrupted batch counts for nothing.
        for org_id, count in Counter(claimed.organization_id for claimed in batch).items():
            counts = report.by_organization[org_id]
            setattr(counts, counter, getattr(counts, counter) + count)
        for org_id, count in deactivated.items():
            report.by_organization[org_id].technical_users_deactivated += count
        done += len(batch)
        if progress is not None:
            progress(reason, done)


def _revoke_phase(
    report: CleanupReport,
    queryset: QuerySet[ApiToken],
    actor: Principal,
    unused_for: timedelta,
    batch_size: int,
    now: datetime,
    progress: Progress | None,
) -> None:
    reason = f"Unused for {format_duration(unused_for)} (cleanup_tokens)."
    done = 0
    last_id = 0
    while True:
        batch = list(
            queryset.filter(pk__gt=last_id)
            .order_by("pk")
            .only("pk", "scope", "group_id", "organization_id")[:batch_size]
        )
        if not batch:
            return
        for token in batch:
            try:
                revoke_token(actor=actor, token=token, reason=reason, now=now)
            except (ValidationError, DomainError):
                report.skipped += 1  # revoked or deleted meanwhile by someone else
            else:
                report.by_organization[token.organization_id].revoked_unused += 1
        last_id = batch[-1].pk
        done += len(batch)
        if progress is not None:
            progress(UNUSED, done)


def _policy_revoke_phase(
    report: CleanupReport, actor: Principal, criteria: Criteria, now: datetime
) -> None:
    """The security policies' "Revoke tokens unused for", applied daily by this run
    (tokens/unused.py); counted with the other unused tokens revoked."""

    def counted(token: ApiToken) -> None:
        report.by_organization[token.organization_id].revoked_unused += 1

    _revoked, skipped = unused.revoke_unused_by_policy(
        actor=actor, now=now, organization=criteria.organization, on_revoked=counted
    )
    report.skipped += skipped


def _record_summaries(report: CleanupReport, actor: Principal) -> None:
    """One audit event per organization that changed, with the run's counts."""
    changed = {
        org_id: counts for org_id, counts in report.by_organization.items() if counts.changed
    }
    organizations = Organization.objects.in_bulk(list(changed))
    for org_id, counts in sorted(changed.items()):
        organization = organizations.get(org_id)
        if organization is None:  # deleted meanwhile; its tokens went with it
            continue
        report.organization_slugs[org_id] = organization.slug
        after = {
            "deleted_expired": counts.deleted_expired,
            "deleted_revoked": counts.deleted_revoked,
            "revoked_unused": counts.revoked_unused,
            "technical_users_deactivated": counts.technical_users_deactivated,
            "criteria": {
                k: v for k, v in report.criteria.describe().items() if k != "organization"
            },
        }
        if report.interrupted:
            after["interrupted"] = True
        audit.record(
            actor=actor,
            action="tokens.cleaned_up",
            organization=organization,
            object_type="organization",
            object_id=organization.pk,
            object_repr=organization.name,
            changes=audit.diff({}, after),
        )


def total_to_change(criteria: Criteria, *, now: datetime) -> dict[str, int]:
    """How many tokens each phase would touch now (for a progress bar's totals)."""
    return {
        EXPIRED: expired_tokens(criteria, now).count(),
        REVOKED: revoked_tokens(criteria, now).count(),
        UNUSED: unused_tokens(criteria, now).count(),
    }


def run_cleanup(
    *,
    actor: Principal,
    criteria: Criteria,
    batch_size: int = DEFAULT_BATCH_SIZE,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> CleanupReport:
    """Delete expired and long-revoked tokens, revoke unused ones, prune old usage counts.

    Interrupted (Ctrl-C, an error), it still records what the finished batches did, then
    re-raises; the batch in progress is rolled back whole.
    """
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValidationError({"batch_size": [f"Between 1 and {MAX_BATCH_SIZE}."]})
    now = now or timezone.now()
    report = CleanupReport(dry_run=False, criteria=criteria)
    try:
        _delete_phase(report, EXPIRED, expired_tokens(criteria, now), batch_size, progress, actor)
        _delete_phase(report, REVOKED, revoked_tokens(criteria, now), batch_size, progress, actor)
        if criteria.unused_for is not None:
            _revoke_phase(
                report,
                unused_tokens(criteria, now),
                actor,
                criteria.unused_for,
                batch_size,
                now,
                progress,
            )
        _policy_revoke_phase(report, actor, criteria, now)
        if criteria.organization is None:
            report.usage_rows_pruned = usage.prune(now=now, batch_size=batch_size)
    except BaseException:
        report.interrupted = True
        raise
    finally:
        _record_summaries(report, actor)
    return report


def dry_run_report(
    criteria: Criteria,
    *,
    now: datetime | None = None,
    changes: Iterable[PlannedChange] | None = None,
) -> CleanupReport:
    """The counts a run would produce now (from ``changes`` if already planned), changing
    nothing."""
    now = now or timezone.now()
    report = CleanupReport(dry_run=True, criteria=criteria)
    for change in changes if changes is not None else plan(criteria, now=now):
        counts = report.by_organization[change.organization_id]
        report.organization_slugs[change.organization_id] = change.organization_slug
        counts.technical_users_deactivated += change.deactivates_user
        if change.reason == EXPIRED:
            counts.deleted_expired += 1
        elif change.reason == REVOKED:
            counts.deleted_revoked += 1
        else:
            counts.revoked_unused += 1
    if criteria.organization is None:
        report.usage_rows_pruned = usage.prunable(now=now).count()
    return report


# Technical users ------------------------------------------------------------------------------


def purgeable_technical_users(*, older_than: timedelta, now: datetime) -> QuerySet[User]:
    """Technical users whose token is gone: inactive, without a token, created before the
    cut-off and with nothing in the audit log as actor since then."""
    cutoff = now - older_than
    recent_actors = AuditEvent.objects.filter(
        actor_id=OuterRef("pk"), occurred_at__gt=cutoff
    ).order_by()
    return (
        User.objects.filter(
            kind=UserKind.TECHNICAL,
            is_active=False,
            date_joined__lte=cutoff,
            api_tokens__isnull=True,
        )
        .exclude(Exists(recent_actors))
        .order_by()
    )


PURGED = "purged"


@dataclass
class PurgeReport:
    dry_run: bool
    purged: int = 0
    usernames: list[str] = field(default_factory=list)  # a dry run's list
    interrupted: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "purged": self.purged,
            **({"usernames": self.usernames} if self.dry_run else {}),
        }


def purge_technical_users(
    *,
    actor: Principal,
    older_than: timedelta,
    now: datetime | None = None,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
) -> PurgeReport:
    """Delete technical users whose tokens are long gone, in short batches. Their audit events
    stay, with the names they were written with; one event records the purge."""
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValidationError({"batch_size": [f"Between 1 and {MAX_BATCH_SIZE}."]})
    now = now or timezone.now()
    report = PurgeReport(dry_run=dry_run)
    candidates = purgeable_technical_users(older_than=older_than, now=now)
    if dry_run:
        report.usernames = list(
            candidates.order_by("pk").values_list("username", flat=True).iterator()
        )
        report.purged = len(report.usernames)
        return report
    try:
        while True:
            with transaction.atomic():
                ids = list(candidates.values_list("pk", flat=True)[:batch_size])
                if not ids:
                    break
                # Re-checked inside the transaction: a user given a token meanwhile stays.
                deleted = (
                    purgeable_technical_users(older_than=older_than, now=now)
                    .filter(pk__in=ids)
                    .delete()[1]
                )
            report.purged += deleted.get(User._meta.label, 0)
            if progress is not None:
                progress(PURGED, report.purged)
    except BaseException:
        report.interrupted = True
        raise
    finally:
        if report.purged:
            audit.record(
                actor=actor,
                action="technical_users.purged",
                organization=None,
                object_type="user",
                object_repr=f"{report.purged} technical users",
                changes=audit.diff(
                    {},
                    {
                        "purged": report.purged,
                        "older_than": to_text(older_than),
                        **({"interrupted": True} if report.interrupted else {}),
                    },
                ),
            )
    return report

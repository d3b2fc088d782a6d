"""Writing audit events. Services call ``record`` inside their transaction."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone

from access.principal import Principal as AccessPrincipal
from orgs.models import AuditEvent, Organization, User


def describe(value: Any) -> Any:
    """Make a value JSON-friendly for the before/after of an event."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [describe(item) for item in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, dict):
        return {str(key): describe(item) for key, item in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "total_seconds"):
        return int(value.total_seconds())
    if isinstance(value, models.Model):
        return str(value)
    return str(value)


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{field: {"before": old, "after": new}}`` for the fields that changed."""
    changes = {}
    for key in sorted(set(before) | set(after)):
        old, new = describe(before.get(key)), describe(after.get(key))
        if old != new:
            changes[key] = {"before": old, "after": new}
    return changes


def record(
    *,
    actor: AccessPrincipal,
    action: str,
    organization: Organization | None,
    object_type: str,
    object_id: Any = "",
    object_repr: str = "",
    group_id: int | None = None,
    changes: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event naming the actor (and the token it acted through), and queue it for
    the organization's webhook endpoints in the same transaction (the outbox)."""
    token = actor.token
    # The event and its deliveries commit together even for a caller without a transaction;
    # inside a service's transaction this adds no savepoint and no query.
    with transaction.atomic(savepoint=False):
        event = AuditEvent(
            organization=organization,
            organization_name=organization.name if organization else "",
            group_id=group_id,
            actor=actor.user,
            actor_name=actor.name[:150],
            actor_kind=actor.kind,
            via_token_id=token.pk if token is not None else None,
            via_token_name=token.name if token is not None else "",
            via_token_partial=token.partial_token if token is not None else "",
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            object_repr=object_repr[:200],
            address=actor.address,
            changes=changes or {},
        )
        # webhooks builds on orgs, not the reverse
        from webhooks.outbox import enqueue_events, read_endpoints

        if organization is not None and connection.vendor == "postgresql":
            endpoints = _insert_reading_endpoints(event, organization)
            enqueue_events([event], organization, endpoints=endpoints)
        else:
            event.save(force_insert=True)
            if organization is not None:
                enqueue_events([event], organization, endpoints=read_endpoints(organization))
    return event


def _insert_reading_endpoints(event: AuditEvent, organization: Organization) -> list[tuple]:
    """PostgreSQL: insert the event and read the organization's active webhook endpoints in
    one statement (one round trip fewer for every change; the endpoints are read in the same
    transaction, as the outbox needs). Returns the endpoints' rows as ``read_endpoints``."""
    values = [
        _field(name).get_db_prep_save(getattr(event, _field(name).attname), connection)
        for name in _ROW_FIELDS
    ]
    with connection.cursor() as cursor:
        cursor.execute(_insert_reading_endpoints_sql(), [*values, organization.pk, True])
        rows = cursor.fetchall()
    event.pk = rows[0][0]
    event._state.adding = False
    event._state.db = connection.alias
    return [(endpoint_id, patterns) for _event_id, endpoint_id, patterns in rows if endpoint_id]


@cache
def _insert_reading_endpoints_sql() -> str:
    from webhooks.outbox import endpoints_sql

    quote = connection.ops.quote_name
    insert = _insert_sql("postgresql", 1)
    endpoints = endpoints_sql()
    # Both statements are written from models' metadata; every value is bound.
    return (
        f"WITH event AS ({insert} RETURNING {quote(AuditEvent._meta.pk.column)}) "  # noqa: S608
        f"SELECT event.*, endpoint.* FROM event LEFT JOIN ({endpoints}) AS endpoint ON TRUE"
    )


@dataclass(frozen=True)
class Actor:
    """Who an event names, as ``record`` copies it from a principal: kept by work that a worker
    may finish later on the principal's behalf (a policy change over many tokens)."""

    user: User | None
    name: str
    kind: str
    via_token_id: int | None = None
    via_token_name: str = ""
    via_token_partial: str = ""
    address: str | None = None

    @classmethod
    def of(cls, principal: AccessPrincipal) -> Actor:
        token = principal.token
        return cls(
            user=principal.user,
            name=principal.name[:150],
            kind=principal.kind,
            via_token_id=token.pk if token is not None else None,
            via_token_name=token.name if token is not None else "",
            via_token_partial=token.partial_token if token is not None else "",
            address=principal.address,
        )


@dataclass(frozen=True)
class Entry:
    """One event of a ``record_many`` call: what happened to which object."""

    action: str
    object_type: str
    object_id: Any
    object_repr: str = ""
    group_id: int | None = None
    changes: dict[str, Any] | None = None


_ROW_FIELDS = (
    "occurred_at",
    "organization",
    "organization_name",
    "group_id",
    "actor",
    "actor_name",
    "actor_kind",
    "via_token_id",
    "via_token_name",
    "via_token_partial",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "address",
    "changes",
)


def record_many(*, actor: Actor, organization: Organization, entries: Iterable[Entry]) -> int:
    """Append one event per entry, all by one actor at one moment, and queue them for the
    organization's webhook endpoints in the same transaction: ``record`` for thousands of
    objects changed by one decision (a policy change). Returns how many were written.

    Without webhook endpoints (nothing needs the events' ids) the rows go in plain INSERTs of
    500 rows each: building a model instance per row and preparing each of
    its sixteen values through the ORM cost most of a large policy change's time
    (bench/RESULTS.md, section 9). Values go through each field's own preparation all the same.
    """
    from webhooks.outbox import enqueue_events, has_endpoints  # webhooks builds on orgs

    entries = list(entries)
    if not entries:
        return 0
    now = timezone.now()
    common = {
        "occurred_at": now,
        "organization": organization,
        "organization_name": organization.name,
        "actor": actor.user,
        "actor_name": actor.name[:150],
        "actor_kind": actor.kind,
        "via_token_id": actor.via_token_id,
        "via_token_name": actor.via_token_name,
        "via_token_partial": actor.via_token_partial,
        "address": actor.address,
    }
    with transaction.atomic(savepoint=False):
        if has_endpoints(organization):
            events = AuditEvent.objects.bulk_create(
                [
                    AuditEvent(
                        **common,
                        group_id=entry.group_id,
                        action=entry.action,
                        object_type=entry.object_type,
                        object_id=str(entry.object_id),
                        object_repr=entry.object_repr[:200],
                        changes=entry.changes or {},
                    )
                    for entry in entries
                ]
            )
            enqueue_events(events, organization)
            return len(events)
        prepared = {
            name: _field(name).get_db_prep_save(
                value.pk if isinstance(value, models.Model) else value, connection
            )
            for name, value in common.items()
        }
        if connection.vendor == "postgresql":
            _insert_unnested(prepared, entries)
            return len(entries)
        head = tuple(prepared[name] for name in _ROW_FIELDS[:3])
        actor_values = tuple(prepared[name] for name in _ROW_FIELDS[4:10])
        address = prepared["address"]
        prepare_changes = _field("changes").get_db_prep_save
        rows = [
            (
                *head,
                entry.group_id,
                *actor_values,
                entry.action,
                entry.object_type,
                str(entry.object_id),
                entry.object_repr[:200],
                address,
                prepare_changes(entry.changes or {}, connection),
            )
            for entry in entries
        ]
        with connection.cursor() as cursor:
            limit = connection.features.max_query_params or len(_ROW_FIELDS) * _ROWS_PER_INSERT
            per_insert = max(1, min(_ROWS_PER_INSERT, limit // len(_ROW_FIELDS)))
            for start in range(0, len(rows), per_insert):
                chunk = rows[start : start + per_insert]
                cursor.execute(
                    _insert_sql(connection.vendor, len(chunk)),
                    [value for row in chunk for value in row],
                )
    return len(entries)


# The columns that differ from one event to the next; the others are the same for all.
_ENTRY_FIELDS = ("group_id", "action", "object_type", "object_id", "object_repr", "changes")


def _insert_unnested(prepared: dict[str, Any], entries: list[Entry]) -> None:
    """PostgreSQL: every event in one INSERT whose varying columns come as six arrays.

    A VALUES list binds sixteen values a row, and psycopg scans the statement's text for its
    placeholders on every execution (it caches only short statements): for a batch of 1,000
    events that scan cost more of the client's time than everything else the batch did. Here
    the statement is the same short text whatever the number of events, and its values are
    the common ones once and one array per varying column."""
    changes_field = _field("changes")
    assert isinstance(changes_field, models.JSONField)
    encoder = changes_field.encoder
    columns = {
        "group_id": [entry.group_id for entry in entries],
        "action": [entry.action for entry in entries],
        "object_type": [entry.object_type for entry in entries],
        "object_id": [str(entry.object_id) for entry in entries],
        "object_repr": [entry.object_repr[:200] for entry in entries],
        "changes": [json.dumps(entry.changes or {}, cls=encoder) for entry in entries],
    }
    # In the statement's order: the common values (in the SELECT list), then the arrays.
    values = [prepared[name] for name in _ROW_FIELDS if name not in columns]
    values += [columns[name] for name in _ENTRY_FIELDS]
    with connection.cursor() as cursor:
        cursor.execute(_unnest_sql(), values)


@cache
def _unnest_sql() -> str:
    """INSERT ... SELECT over ``unnest`` of the varying columns; names from the model's
    metadata, values bound."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(_field(name).column)) for name in _ROW_FIELDS)
    casts = {
        "group_id": "bigint[]",
        "action": "text[]",
        "object_type": "text[]",
        "object_id": "text[]",
        "object_repr": "text[]",
        "changes": "text[]",
    }
    assert tuple(casts) == _ENTRY_FIELDS
    selected = ", ".join(
        (f"u.{name}::jsonb" if name == "changes" else f"u.{name}")
        if name in casts
        else f"%s::{_field(name).db_type(connection)}"
        for name in _ROW_FIELDS
    )
    arrays = ", ".join(f"%b::{casts[name]}" for name in _ROW_FIELDS if name in casts)
    return (
        f"INSERT INTO {quote(AuditEvent._meta.db_table)} ({columns}) "  # noqa: S608
        f"SELECT {selected} FROM unnest({arrays}) AS u({', '.join(_ENTRY_FIELDS)})"
    )


def _field(name: str) -> models.Field:
    field = AuditEvent._meta.get_field(name)
    assert isinstance(field, models.Field)  # a concrete column, not a reverse relation
    return field


_ROWS_PER_INSERT = 500  # fewer where the backend binds fewer values


@cache
def _insert_sql(vendor: str, rows: int) -> str:
    """The INSERT of ``rows`` events; every name comes from the model's metadata, values are
    bound."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(_field(name).column)) for name in _ROW_FIELDS)
    row = "(" + ", ".join(["%s"] * len(_ROW_FIELDS)) + ")"
    values = ", ".join([row] * rows)
    return f"INSERT INTO {quote(AuditEvent._meta.db_table)} ({columns}) VALUES {values}"  # noqa: S608

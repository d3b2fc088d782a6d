"""Reading the audit log at any size: filters, keyset pages, cursors, counts and export chunks.

A page is found by position, never by counting: the log is ordered by ``(occurred_at, id)``
and each page starts strictly after (or before) the last row seen, so its cost is one page of
index entries whether the log holds a thousand events or ten million.

Every filter is made of *alternatives* (the actions of a family, the tokens a name matched, an
actor's id). One dimension drives the query: each of its alternatives is an equality that an
index starting with the organization and ending with ``(occurred_at, id)`` serves in order
(``AuditEvent.Meta.indexes``); the other dimensions narrow each branch. With several
alternatives the branches are read separately, each stopping after one page, and merged, so
an ``IN`` list or an ``OR`` never makes the database sort everything that matches.

Visibility is the caller's: every branch starts from ``AuditEvent.objects.visible_to(...)``.
A cursor only says where to start; whatever it holds, rows outside that queryset never appear.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core import signing
from django.db import connection
from django.db.models import Q, QuerySet

from orgs.models import AuditEvent

MAX_ID = 2**63 - 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)
CURSOR_SALT = "keyward.audit-log.cursor"
MAX_CURSOR_LENGTH = 200
# How far behind "now" a forward (oldest first) read stops. An event is written with the time
# its service recorded it and becomes visible when that transaction commits; an event recorded
# before, but committed after, a later one would land behind a reader's cursor. Services record
# their event last and commit at once, so waiting a few seconds lets every such event appear
# before a forward reader moves past its time.
SETTLE = timedelta(seconds=5)
EXPORT_CHUNK = 2000
NEWEST_FIRST = ("-occurred_at", "-id")
OLDEST_FIRST = ("occurred_at", "id")


# Positions and cursors ------------------------------------------------------------------------


class InvalidCursor(ValueError):
    """A cursor that was not made here, was changed, or was cut."""


@dataclass(frozen=True, order=True)
class Position:
    """Where an event sits in the log's order."""

    occurred_at: datetime
    id: int

    @classmethod
    def of(cls, event: AuditEvent) -> Position:
        return cls(event.occurred_at, event.pk)


_signer = signing.Signer(salt=CURSOR_SALT, sep=".", algorithm="sha256")


def encode_cursor(position: Position) -> str:
    """An opaque, signed, URL-safe cursor for ``position``; the same position always gives the
    same cursor (for a given SECRET_KEY)."""
    microseconds = (position.occurred_at - EPOCH) // ONE_MICROSECOND
    payload = base64.urlsafe_b64encode(f"{microseconds}:{position.id}".encode()).rstrip(b"=")
    return _signer.sign(payload.decode())


def decode_cursor(cursor: str) -> Position:
    """The position a cursor names; InvalidCursor if it was not made by encode_cursor."""
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidCursor("This cursor is empty or too long.")
    try:
        payload = _signer.unsign(cursor)
    except signing.BadSignature:
        raise InvalidCursor("This cursor was not made by Keyward, or was changed.") from None
    try:
        text = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
        microseconds_text, _, id_text = text.partition(":")
        position = Position(EPOCH + int(microseconds_text) * ONE_MICROSECOND, int(id_text))
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise InvalidCursor("This cursor is damaged.") from None
    if not 0 < position.id <= MAX_ID:
        raise InvalidCursor("This cursor is damaged.")
    return position


# Filters ---------------------------------------------------------------------------------------


Alternatives = tuple[Q, ...]


@dataclass(frozen=True)
class EventFilter:
    """What to narrow the log to. Each dimension is a tuple of alternatives (an event matches
    the dimension if it matches any of them); ``None`` leaves the dimension free, and an empty
    tuple matches nothing (a name that resolved to no token, say)."""

    objects: Alternatives | None = None
    tokens: Alternatives | None = None
    actors: Alternatives | None = None
    groups: Alternatives | None = None
    actions: Alternatives | None = None
    actor_kinds: Alternatives | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    notes: tuple[str, ...] = field(default=(), compare=False)  # said to the reader beside results

    # The order in which a dimension is chosen to drive the query: the most selective first.
    DRIVING_ORDER = ("objects", "tokens", "actors", "groups", "actions", "actor_kinds")

    def dimensions(self) -> list[tuple[str, Alternatives]]:
        return [
            (name, getattr(self, name))
            for name in self.DRIVING_ORDER
            if getattr(self, name) is not None
        ]

    @property
    def matches_nothing(self) -> bool:
        if self.since is not None and self.until is not None and self.since >= self.until:
            return True
        return any(not alternatives for _name, alternatives in self.dimensions())

    def with_notes(self, *notes: str) -> EventFilter:
        return replace(self, notes=self.notes + notes)


def by_actor_ids(ids: Sequence[int]) -> Alternatives:
    return tuple(Q(actor_id=actor_id) for actor_id in sorted(set(ids)))


def by_token_ids(ids: Sequence[int]) -> Alternatives:
    """Events done through the token, and events about it."""
    alternatives: list[Q] = []
    for token_id in sorted(set(ids)):
        alternatives += [
            Q(via_token_id=token_id),
            Q(object_type="api_token", object_id=str(token_id)),
        ]
    return tuple(alternatives)


def by_actions(actions: Sequence[str]) -> Alternatives:
    return tuple(Q(action=action) for action in sorted(set(actions)))


def by_objects(objects: Sequence[tuple[str, str]]) -> Alternatives:
    return tuple(
        Q(object_type=object_type, object_id=object_id)
        for object_type, object_id in sorted(set(objects))
    )


def by_group_ids(ids: Sequence[int]) -> Alternatives:
    return tuple(Q(group_id=group_id) for group_id in sorted(set(ids)))


def by_actor_kind(kind: str) -> Alternatives:
    return (Q(actor_kind=kind),)


def _any_of(alternatives: Alternatives) -> Q:
    combined = Q()
    for alternative in alternatives:
        combined |= alternative
    return combined


def action_vocabulary() -> list[str]:
    """Every action name in the log, in order, in one index probe per name.

    A loose index scan over the ``action`` index: each step asks for the first name after the
    previous one, so thirty names cost thirty probes, not a walk over every event. The names
    are those of the whole installation (the product's vocabulary), so listing them tells
    nobody what happened in any one organization.
    """
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    column = connection.ops.quote_name("action")
    # Identifiers from the model's own metadata; nothing from a request reaches this SQL.
    statement = f"""
        WITH RECURSIVE names(name) AS (
            SELECT (SELECT {column} FROM {table} ORDER BY {column} LIMIT 1)
            UNION ALL
            SELECT (SELECT {column} FROM {table} WHERE {column} > names.name
                    ORDER BY {column} LIMIT 1)
            FROM names WHERE names.name IS NOT NULL
        )
        SELECT name FROM names WHERE name IS NOT NULL
    """  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(statement)
        return [name for (name,) in cursor.fetchall()]


def actions_matching(action: str) -> list[str]:
    """The action itself, or for a prefix ending in a dot (``token.``) every action of it."""
    if not action.endswith("."):
        return [action]
    return [name for name in action_vocabulary() if name.startswith(action)]


# Pages ----------------------------------------------------------------------------------------


@dataclass
class EventPage:
    """One page of events, newest first, and where the pages beside it start."""

    events: list[AuditEvent]
    has_newer: bool
    has_older: bool
    newer_cursor: str | None  # for ?after=: the events just newer than this page
    older_cursor: str | None  # for ?before=: the events just older than this page


class AuditLog:
    """The events of one visible queryset narrowed by one filter, read by position."""

    def __init__(self, visible: QuerySet[AuditEvent], event_filter: EventFilter) -> None:
        self.visible = visible
        self.filter = event_filter

    # Building -----------------------------------------------------------------------------

    def branches(self, *, settled_before: datetime | None = None) -> list[QuerySet[AuditEvent]]:
        """One queryset per alternative of the driving dimension, each narrowed by the rest."""
        if self.filter.matches_nothing:
            return []
        narrowed = self.visible.order_by()
        if self.filter.since is not None:
            narrowed = narrowed.filter(occurred_at__gte=self.filter.since)
        if self.filter.until is not None:
            narrowed = narrowed.filter(occurred_at__lt=self.filter.until)
        if settled_before is not None:
            narrowed = narrowed.filter(occurred_at__lt=settled_before)
        dimensions = self.filter.dimensions()
        if not dimensions:
            return [narrowed]
        (_driver, driving), *others = dimensions
        for _name, alternatives in others:
            narrowed = narrowed.filter(_any_of(alternatives))
        return [narrowed.filter(alternative) for alternative in driving]

    @staticmethod
    def _from(queryset: QuerySet[AuditEvent], position: Position | None, newer: bool) -> QuerySet:
        """Rows strictly newer (or older) than ``position``. The plain range on occurred_at
        lets the index start at the position; the rest settles ties on the id."""
        if position is None:
            return queryset
        moment, event_id = position.occurred_at, position.id
        if newer:
            return queryset.filter(occurred_at__gte=moment).filter(
                Q(occurred_at__gt=moment) | Q(id__gt=event_id)
            )
        return queryset.filter(occurred_at__lte=moment).filter(
            Q(occurred_at__lt=moment) | Q(id__lt=event_id)
        )

    def _read(
        self,
        *,
        position: Position | None,
        newer: bool,
        limit: int,
        offset: int = 0,
        settled_before: datetime | None = None,
        fields: tuple[str, ...] | None = None,
    ) -> list[Any]:
        """Up to ``limit`` events after ``offset`` from ``position``, in reading order (oldest
        first when reading newer events, newest first otherwise): model instances, or tuples
        of ``fields`` (which start with occurred_at and id) for reading in bulk."""
        branches = self.branches(settled_before=settled_before)
        if not branches:
            return []
        ordering = OLDEST_FIRST if newer else NEWEST_FIRST
        reached = [self._from(branch, position, newer).order_by(*ordering) for branch in branches]
        if len(reached) == 1:
            chosen = reached[0] if fields is None else reached[0].values_list(*fields)
            return list(chosen[offset : offset + limit])
        keys = _merge_keys(reached, offset + limit, newer)[offset:]
        ids = [event_id for _moment, event_id in keys]
        if fields is None:
            by_id = self.visible.order_by().in_bulk(ids)
            events = [by_id[event_id] for _moment, event_id in keys if event_id in by_id]
            events.sort(key=Position.of, reverse=not newer)
            return events
        rows = list(self.visible.order_by().filter(pk__in=ids).values_list(*fields))
        rows.sort(key=lambda row: (row[0], row[1]), reverse=not newer)
        return rows

    # Reading ------------------------------------------------------------------------------

    def page(
        self, *, before: Position | None = None, after: Position | None = None, size: int
    ) -> EventPage:
        """A page of ``size`` events, newest first: the newest, those just older than
        ``before``, or those just newer than ``after``."""
        reference: Position | None
        if after is not None:
            rows = self._read(position=after, newer=True, limit=size + 1)
            if len(rows) <= size:
                # Back at the top: show the newest full page rather than a short one.
                return self.page(size=size)
            has_newer = True
            events = list(reversed(rows[:size]))
            has_older = bool(self._read(position=Position.of(events[-1]), newer=False, limit=1))
            reference = after
        else:
            rows = self._read(position=before, newer=False, limit=size + 1)
            has_older = len(rows) > size
            events = rows[:size]
            has_newer = before is not None and bool(
                self._read(
                    position=Position.of(events[0]) if events else before, newer=True, limit=1
                )
            )
            reference = before
        newer_at = Position.of(events[0]) if events else reference
        older_at = Position.of(events[-1]) if events else reference
        return EventPage(
            events=events,
            has_newer=has_newer,
            has_older=has_older,
            newer_cursor=encode_cursor(newer_at) if has_newer and newer_at else None,
            older_cursor=encode_cursor(older_at) if has_older and older_at else None,
        )

    def newest_first(
        self, *, before: Position | None = None, limit: int, offset: int = 0
    ) -> tuple[list[AuditEvent], bool]:
        """Events newest first from ``before`` (skipping ``offset``), and whether more follow."""
        rows = self._read(position=before, newer=False, limit=limit + 1, offset=offset)
        return rows[:limit], len(rows) > limit

    def oldest_first(
        self, *, after: Position | None = None, limit: int, now: datetime
    ) -> tuple[list[AuditEvent], bool]:
        """Events oldest first from ``after``, leaving out the last SETTLE before ``now`` (see
        SETTLE), and whether more are ready now."""
        rows = self._read(position=after, newer=True, limit=limit + 1, settled_before=now - SETTLE)
        return rows[:limit], len(rows) > limit

    def capped_count(self, cap: int) -> int:
        """How many events match, counted up to ``cap + 1`` (more than ``cap`` reads as
        ``cap + 1``), so counting never walks the whole log."""
        branches = self.branches()
        if not branches:
            return 0
        if len(branches) == 1:
            return branches[0][: cap + 1].count()
        sql, params = _merged_sql([b.order_by(*NEWEST_FIRST) for b in branches], cap + 1, False)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM ({sql}) AS merged", params)  # noqa: S608
            return cursor.fetchone()[0]

    def chunks(
        self, size: int = EXPORT_CHUNK, fields: tuple[str, ...] = ("occurred_at", "id")
    ) -> Iterator[list[tuple]]:
        """Every matching event as a tuple of ``fields`` (occurred_at and id first), newest
        first, ``size`` at a time: each chunk one short query that starts where the last ended
        (no offset, no open transaction, flat memory)."""
        position = None
        while True:
            rows = self._read(position=position, newer=False, limit=size, fields=fields)
            if rows:
                yield rows
            if len(rows) < size:
                return
            position = Position(rows[-1][0], rows[-1][1])


def _merge_keys(
    branches: list[QuerySet[AuditEvent]], limit: int, newer: bool
) -> list[tuple[Any, int]]:
    """The first ``limit`` (occurred_at, id) keys over several ordered branches, duplicates
    removed: each branch stops after ``limit`` rows in its own index, then one UNION merges."""
    sql, params = _merged_sql(branches, limit, newer)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(moment, event_id) for moment, event_id in cursor.fetchall()]


def _merged_sql(
    branches: list[QuerySet[AuditEvent]], limit: int, newer: bool
) -> tuple[str, list[Any]]:
    """The SQL of _merge_keys. Written by hand because Django refuses LIMIT inside the parts
    of a UNION on SQLite; each part is the branch's own compiled query, so its parameters
    stay bound."""
    parts: list[str] = []
    params: list[Any] = []
    for index, branch in enumerate(branches):
        sql, part_params = branch.values_list("occurred_at", "id")[:limit].query.sql_with_params()
        parts.append(f"SELECT * FROM ({sql}) AS part_{index}")  # noqa: S608
        params.extend(part_params)
    direction = "ASC" if newer else "DESC"
    # Every part selects (occurred_at, id) in that order; SQL from compiled querysets only.
    statement = " UNION ".join(parts) + f" ORDER BY 1 {direction}, 2 {direction} LIMIT {int(limit)}"
    return statement, params

"""Last use and daily request counts, buffered so that requests do not write.

A token's first request in a minute writes its last use and the counts gathered since the
previous write; the others only add to this process's buffer. A background thread flushes
what idle tokens left behind, so a crash loses at most a minute of counts.

Reading: ``counts_between``, ``daily_counts``, ``secret_last_uses`` and ``last_use``, for the
token detail, its grace banner and the API's usage endpoint (never the tables directly, which
miss what is still buffered); daily
counts are kept ``RETENTION_DAYS`` (``prune`` runs from ``cleanup_tokens``).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import F, Q, QuerySet, Sum
from django.utils import timezone

from tokens.models import ApiToken, TokenSecret, TokenUsage

logger = logging.getLogger(__name__)

RETENTION_DAYS = 90


@dataclass
class _Pending:
    written_at: datetime | None
    last_used_at: datetime | None = None
    last_used_address: str | None = None
    secrets: dict[int, tuple[datetime, str | None]] = field(default_factory=dict)
    counts: dict[date, int] = field(default_factory=dict)

    @property
    def has_data(self) -> bool:
        return bool(self.counts)


def write_interval() -> timedelta:
    """A token's uses are written at most once in this time (the others are buffered)."""
    return timedelta(seconds=settings.KEYWARD_LAST_USE_INTERVAL_SECONDS)


class Buffer(Protocol):
    """What authentication and the readers ask of a usage buffer: this process's own
    (``UsageBuffer``) or the one shared through Redis (``usage_redis.RedisUsageBuffer``)."""

    def record(
        self, *, token: ApiToken, secret_id: int, address: str | None, now: datetime
    ) -> bool: ...

    def flush(self, *, older_than: timedelta | None = None, now: datetime | None = None) -> int: ...

    def pending_count(self) -> int: ...

    def pending_counts(self, token_id: int) -> dict[date, int]: ...

    def pending_secret_uses(self, token_id: int) -> dict[int, tuple[datetime, str | None]]: ...

    def clear(self) -> None: ...


class Flusher:
    """A background thread that writes, once a minute, what a buffer gathered for tokens that
    went idle (so a crash loses at most a minute of counts). Started on a buffer's first use
    unless ``KEYWARD_USAGE_FLUSH_THREAD`` is off."""

    def __init__(self, flush: Callable[..., int]) -> None:
        self._flush = flush
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def ensure_running(self) -> None:
        if not settings.KEYWARD_USAGE_FLUSH_THREAD:
            return
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(
                target=self._flush_forever, name="keyward-usage-flush", daemon=True
            )
            self._thread.start()

    def _flush_forever(self) -> None:
        while True:
            time.sleep(settings.KEYWARD_LAST_USE_INTERVAL_SECONDS)
            try:
                close_old_connections()
                self._flush(older_than=write_interval())
            finally:
                connection.close()


class UsageBuffer:
    """This process's own buffer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._flusher = Flusher(self.flush)

    def record(
        self, *, token: ApiToken, secret_id: int, address: str | None, now: datetime
    ) -> bool:
        """Count one request; write now if the token's last write is a minute old.

        Returns whether this request wrote to the database.
        """
        with self._lock:
            entry = self._pending.get(token.pk)
            if entry is None:
                entry = _Pending(written_at=token.last_used_at)
                self._pending[token.pk] = entry
            entry.last_used_at = now
            entry.last_used_address = address
            entry.secrets[secret_id] = (now, address)
            day = _utc_day(now)
            entry.counts[day] = entry.counts.get(day, 0) + 1
            due = entry.written_at is None or now - entry.written_at >= write_interval()
            if due:
                del self._pending[token.pk]
                entry.written_at = now
        self._flusher.ensure_running()
        if due:
            self._write(token.pk, entry)
        return due

    def flush(self, *, older_than: timedelta | None = None, now: datetime | None = None) -> int:
        """Write every buffered entry (or those not written for ``older_than``)."""
        now = now or timezone.now()
        with self._lock:
            taken = {
                token_id: entry
                for token_id, entry in self._pending.items()
                if entry.has_data
                and (
                    older_than is None
                    or entry.written_at is None
                    or now - entry.written_at >= older_than
                )
            }
            for token_id in taken:
                del self._pending[token_id]
        for token_id, entry in taken.items():
            self._write(token_id, entry)
        return len(taken)

    def pending_count(self) -> int:
        with self._lock:
            return sum(sum(entry.counts.values()) for entry in self._pending.values())

    def pending_counts(self, token_id: int) -> dict[date, int]:
        """Counts of this token buffered in this process and not yet written."""
        with self._lock:
            entry = self._pending.get(token_id)
            return dict(entry.counts) if entry is not None else {}

    def pending_secret_uses(self, token_id: int) -> dict[int, tuple[datetime, str | None]]:
        with self._lock:
            entry = self._pending.get(token_id)
            return dict(entry.secrets) if entry is not None else {}

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()

    def _write(self, token_id: int, entry: _Pending) -> None:
        write_entry(token_id, entry)


def write_entry(token_id: int, entry: _Pending) -> None:
    """Write one token's gathered use; never fails (a lost minute of counts must not fail a
    request), and never moves a last use backwards when another process wrote a later one."""
    try:
        with transaction.atomic():
            if entry.last_used_at is not None:
                ApiToken.objects.filter(pk=token_id).filter(
                    Q(last_used_at__isnull=True) | Q(last_used_at__lte=entry.last_used_at)
                ).update(last_used_at=entry.last_used_at, last_used_address=entry.last_used_address)
            for secret_id, (used_at, address) in entry.secrets.items():
                TokenSecret.objects.filter(pk=secret_id).filter(
                    Q(last_used_at__isnull=True) | Q(last_used_at__lte=used_at)
                ).update(last_used_at=used_at, last_used_address=address)
            for day, count in entry.counts.items():
                _add_count(token_id, day, count)
    except Exception:
        logger.exception("Could not write usage of token %s", token_id)


def _utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date() if moment.tzinfo else moment.date()


def _add_count(token_id: int, day: date, count: int) -> None:
    updated = TokenUsage.objects.filter(token_id=token_id, day=day).update(count=F("count") + count)
    if updated:
        return
    try:
        with transaction.atomic():
            if ApiToken.objects.filter(pk=token_id).exists():
                TokenUsage.objects.create(token_id=token_id, day=day, count=count)
    except IntegrityError:  # another process created the row first
        TokenUsage.objects.filter(token_id=token_id, day=day).update(count=F("count") + count)


def _make_buffer() -> Buffer:
    """The shared Redis buffer where one is configured, else this process's own."""
    url = settings.KEYWARD_USAGE_REDIS_URL
    if url:
        from tokens.usage_redis import RedisUsageBuffer

        return RedisUsageBuffer(url)
    return UsageBuffer()


_buffer: Buffer | None = None
_buffer_lock = threading.Lock()


def current() -> Buffer:
    """This process's buffer, built from the settings on first use (not at import, so that a
    test or a benchmark can set the settings first, or swap it with ``use``)."""
    global _buffer
    if _buffer is None:
        with _buffer_lock:
            if _buffer is None:
                _buffer = _make_buffer()
    return _buffer


def use(replacement: Buffer | None) -> Buffer | None:
    """Make ``replacement`` this process's buffer (None: build it again from the settings on
    next use); return the one it replaces, to put back afterwards."""
    global _buffer
    with _buffer_lock:
        previous, _buffer = _buffer, replacement
    return previous


@atexit.register
def _flush_at_exit() -> None:
    if _buffer is not None:
        _buffer.flush()


# Reading ------------------------------------------------------------------------------------


def counts_between(token: ApiToken | int, since: date, until: date) -> dict[date, int]:
    """Requests per UTC day from ``since`` to ``until`` (both included; days without requests
    are absent). What is buffered but not yet written is added, so a page shows its own
    requests at once."""
    token_id = token if isinstance(token, int) else token.pk
    stored = dict(
        TokenUsage.objects.filter(token_id=token_id, day__gte=since, day__lte=until)
        .order_by()
        .values_list("day", "count")
    )
    for day, count in current().pending_counts(token_id).items():
        if since <= day <= until:
            stored[day] = stored.get(day, 0) + count
    return stored


def daily_counts(
    token: ApiToken | int, days: int = 30, *, today: date | None = None
) -> list[tuple[date, int]]:
    """Requests per UTC day for the last ``days`` days (at most 90), oldest first, zeros
    included, buffered requests included."""
    days = max(1, min(days, RETENTION_DAYS))
    today = today or _utc_day(timezone.now())
    first = today - timedelta(days=days - 1)
    stored = counts_between(token, first, today)
    return [
        (first + timedelta(days=offset), stored.get(first + timedelta(days=offset), 0))
        for offset in range(days)
    ]


def total_requests(token: ApiToken | int, days: int = 30, *, today: date | None = None) -> int:
    """Requests in the last ``days`` days (at most 90)."""
    return sum(count for _day, count in daily_counts(token, days, today=today))


@dataclass(frozen=True)
class SecretUse:
    secret_id: int
    partial_token: str
    created_at: datetime
    ends_at: datetime | None
    last_used_at: datetime | None
    last_used_address: str | None


def secret_last_uses(token: ApiToken | int) -> list[SecretUse]:
    """Each secret of the token with its last use (newest secret first), buffered uses included,
    so the console can tell whether an old secret in its grace period is still used."""
    token_id = token if isinstance(token, int) else token.pk
    pending = current().pending_secret_uses(token_id)
    uses = []
    secrets = TokenSecret.objects.filter(token_id=token_id).order_by("-created_at", "-id")
    for secret in secrets.only(
        "pk", "partial_token", "created_at", "ends_at", "last_used_at", "last_used_address"
    ):
        last_used_at, address = secret.last_used_at, secret.last_used_address
        if secret.pk in pending and (last_used_at is None or pending[secret.pk][0] > last_used_at):
            last_used_at, address = pending[secret.pk]
        uses.append(
            SecretUse(
                secret_id=secret.pk,
                partial_token=secret.partial_token,
                created_at=secret.created_at,
                ends_at=secret.ends_at,
                last_used_at=last_used_at,
                last_used_address=address,
            )
        )
    return uses


def last_use(token: ApiToken) -> tuple[datetime | None, str | None]:
    """When the token was last used and from where, buffered uses included."""
    at, address = token.last_used_at, token.last_used_address
    for used_at, used_from in current().pending_secret_uses(token.pk).values():
        if at is None or used_at > at:
            at, address = used_at, used_from
    return at, address


def prunable(*, now: datetime | None = None) -> QuerySet[TokenUsage]:
    """Daily counts older than ``RETENTION_DAYS``."""
    oldest_kept = _utc_day(now or timezone.now()) - timedelta(days=RETENTION_DAYS - 1)
    return TokenUsage.objects.filter(day__lt=oldest_kept).order_by()


def prune(*, now: datetime | None = None, batch_size: int = 5000) -> int:
    """Delete daily counts older than ``RETENTION_DAYS``, in short batches; return how many."""
    old_rows = prunable(now=now)
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(old_rows.values_list("pk", flat=True)[:batch_size])
            if not ids:
                return deleted
            deleted += TokenUsage.objects.filter(pk__in=ids).delete()[0]


def requests_by_token(token_ids: list[int], days: int = 30) -> dict[int, int]:
    """Requests in the last ``days`` days for many tokens at once (one query), for lists."""
    first = _utc_day(timezone.now()) - timedelta(days=max(1, min(days, RETENTION_DAYS)) - 1)
    return dict(
        TokenUsage.objects.filter(token_id__in=token_ids, day__gte=first)
        .order_by()
        .values("token_id")
        .annotate(total=Sum("count"))
        .values_list("token_id", "total")
    )

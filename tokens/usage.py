"""Last use and daily request counts, buffered so that requests do not write.

A token's first request in a minute writes its last use and the counts gathered since the
previous write; the others only add to this process's buffer. A background thread flushes
what idle tokens left behind, so a crash loses at most a minute of counts.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import F

from tokens.models import ApiToken, TokenSecret, TokenUsage

logger = logging.getLogger(__name__)


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


class UsageBuffer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._thread: threading.Thread | None = None

    @property
    def interval(self) -> timedelta:
        return timedelta(seconds=settings.KEYWARD_LAST_USE_INTERVAL_SECONDS)

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
            entry.counts[now.date()] = entry.counts.get(now.date(), 0) + 1
            due = entry.written_at is None or now - entry.written_at >= self.interval
            if due:
                del self._pending[token.pk]
                entry.written_at = now
        self._ensure_flusher()
        if due:
            self._write(token.pk, entry)
        return due

    def flush(self, *, older_than: timedelta | None = None, now: datetime | None = None) -> int:
        """Write every buffered entry (or those not written for ``older_than``)."""
        from django.utils import timezone

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

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()

    def _write(self, token_id: int, entry: _Pending) -> None:
        try:
            with transaction.atomic():
                ApiToken.objects.filter(pk=token_id).update(
                    last_used_at=entry.last_used_at, last_used_address=entry.last_used_address
                )
                for secret_id, (used_at, address) in entry.secrets.items():
                    TokenSecret.objects.filter(pk=secret_id).update(
                        last_used_at=used_at, last_used_address=address
                    )
                for day, count in entry.counts.items():
                    _add_count(token_id, day, count)
        except Exception:  # a lost minute of counts must never fail a request
            logger.exception("Could not write usage of token %s", token_id)

    def _ensure_flusher(self) -> None:
        if not getattr(settings, "KEYWARD_USAGE_FLUSH_THREAD", True):
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
        seconds = settings.KEYWARD_LAST_USE_INTERVAL_SECONDS
        while True:
            time.sleep(seconds)
            try:
                close_old_connections()
                self.flush(older_than=self.interval)
            finally:
                connection.close()


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


buffer = UsageBuffer()
atexit.register(lambda: buffer.flush())

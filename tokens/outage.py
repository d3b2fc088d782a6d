"""Redis's state as one process sees it: whether to ask it now, and one warning per outage.

The bearer throttle and the usage buffer both ask Redis on every request. When it stops
answering, the first call that fails opens an outage: for ``BACKOFF_SECONDS`` nobody in this
process asks Redis (so no request waits for its timeout), then one request tries it again.
Both fall back to this process's own counting meanwhile. The outage's start is logged once as
a warning and its end once, whatever the number of requests in between.
"""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger("keyward.redis")

# After a failure, leave Redis alone this long before one request tries it again.
BACKOFF_SECONDS = 5.0


class Outage:
    def __init__(self, part: str, *, backoff_seconds: float = BACKOFF_SECONDS) -> None:
        self.part = part
        self.backoff_seconds = backoff_seconds
        self._lock = threading.Lock()
        self._down = False
        self._retry_at = 0.0

    @property
    def down(self) -> bool:
        return self._down

    def available(self) -> bool:
        """Whether to ask the part now: it answered last time, or the backoff has passed."""
        return time.monotonic() >= self._retry_at

    def failed(self, error: Exception) -> None:
        """Record a call that failed: open the outage (warning once) and back off."""
        with self._lock:
            self._retry_at = time.monotonic() + self.backoff_seconds
            if self._down:
                return
            self._down = True
        logger.warning(
            "%s does not answer; the bearer throttle and usage counts work in each process "
            "until it does: %s",
            self.part,
            error,
        )

    def answered(self) -> None:
        """Record a call that succeeded: close the outage if one was open."""
        if not self._down:  # the common case, without the lock
            return
        with self._lock:
            if not self._down:
                return
            self._down = False
            self._retry_at = 0.0
        logger.info("%s answers again; the throttle and usage counts are shared again.", self.part)

    def reset(self) -> None:
        """Forget any outage (for tests that play one after another)."""
        with self._lock:
            self._down = False
            self._retry_at = 0.0


redis_outage = Outage("Redis")

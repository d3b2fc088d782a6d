"""Failed console sign-ins, counted per account and per address in the cache.

Too many failures for one account (from anywhere) or from one address (for any account)
blocks further attempts until the window has passed; a correct password during a block is
refused too, so guessing cannot continue by luck.
"""

from __future__ import annotations

from django.conf import settings
from django.core.cache import cache


def _keys(username: str, address: str | None) -> list[str]:
    return [
        f"keyward:signin-failures:user:{username.strip().lower()}",
        f"keyward:signin-failures:address:{address or 'unknown'}",
    ]


def _limits() -> list[int]:
    return [
        settings.KEYWARD_SIGNIN_FAILURES_PER_ACCOUNT,
        settings.KEYWARD_SIGNIN_FAILURES_PER_ADDRESS,
    ]


def is_blocked(username: str, address: str | None) -> bool:
    counts = cache.get_many(_keys(username, address))
    return any(
        counts.get(key, 0) >= limit
        for key, limit in zip(_keys(username, address), _limits(), strict=True)
    )


def record_failure(username: str, address: str | None) -> None:
    window = settings.KEYWARD_SIGNIN_WINDOW_SECONDS
    for key in _keys(username, address):
        if not cache.add(key, 1, timeout=window):
            try:
                cache.incr(key)
            except ValueError:
                cache.add(key, 1, timeout=window)


def clear(username: str) -> None:
    """Forget an account's failures after a successful sign-in (the address keeps its count)."""
    cache.delete(_keys(username, None)[0])


def retry_after_minutes() -> int:
    return max(1, settings.KEYWARD_SIGNIN_WINDOW_SECONDS // 60)

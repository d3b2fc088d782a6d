"""A cache backend whose every read and write fails, as Redis does while it is down."""

from django.core.cache.backends.base import BaseCache


class CacheDown(ConnectionError):
    pass


class BrokenCache(BaseCache):
    def __init__(self, location: str = "", params: dict | None = None) -> None:
        super().__init__(params or {})

    def _down(self, *args: object, **kwargs: object):
        raise CacheDown("cache unavailable")

    add = get = set = delete = incr = touch = has_key = _down

    def get_many(self, keys, version=None):
        raise CacheDown("cache unavailable")

    def clear(self) -> None:  # the test harness clears caches between tests
        return None

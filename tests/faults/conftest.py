import os
import socket
import uuid

import pytest
import redis

from bench.faultproxy import FaultProxy
from tokens import usage
from tokens.outage import redis_outage
from tokens.usage_redis import RedisUsageBuffer

# A database of Redis of its own, so parallel suites never see each other's keys.
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_DB = int(os.environ.get("KEYWARD_TEST_REDIS_DB", "7"))


def redis_answers() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def fault_database():
    configured = os.environ["DATABASE_URL"]
    admin_url = configured.replace("postgres://", "postgresql://", 1)
    name = f"keyward_fault_{uuid.uuid4().hex[:8]}"
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    host_port = configured.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":") if ":" in host_port else (host_port, "5432")
    proxy = FaultProxy(host, int(port)).start()
    user = configured.split("://", 1)[1].split("@", 1)[0]
    direct = f"postgres://{user}@{host}:{port}/{name}"
    through_proxy = f"postgres://{user}@127.0.0.1:{proxy.port}/{name}?connect_timeout=2"
    yield direct, through_proxy, proxy
    proxy.stop()
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class RedisThroughProxy:
    """Keyward's cache and usage buffer on a real Redis reached through a FaultProxy."""

    def __init__(self, proxy: FaultProxy, buffer: RedisUsageBuffer, namespace: str) -> None:
        self.proxy = proxy
        self.buffer = buffer
        self.namespace = namespace
        self.direct = redis.Redis(
            host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, decode_responses=True
        )

    def shared_failure_count(self, address: str) -> int:
        """What every instance reads as the address's failures (straight from Redis)."""
        keys = self.direct.keys(f"keyward:*:keyward:auth-failures:{address}")
        if not keys:
            return 0
        value = self.direct.get(keys[0])
        assert value is not None, "the counter expired between reading its key and its value"
        return int(value)

    def shared_usage(self, token_id: int) -> dict:
        return self.direct.hgetall(f"{self.namespace}:{{usage}}:t:{token_id}")


@pytest.fixture
def redis_proxy(settings, monkeypatch):
    if not redis_answers():
        pytest.skip(f"no Redis at {REDIS_HOST}:{REDIS_PORT}")
    proxy = FaultProxy(REDIS_HOST, REDIS_PORT).start()
    url = f"redis://127.0.0.1:{proxy.port}/{REDIS_DB}"
    timeout = settings.KEYWARD_REDIS_TIMEOUT_SECONDS
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "keyward",
            "OPTIONS": {"socket_timeout": timeout, "socket_connect_timeout": timeout},
        }
    }
    namespace = f"keyward-faults-{uuid.uuid4().hex[:12]}"
    buffer = RedisUsageBuffer(url, namespace=namespace)
    previous = usage.use(buffer)
    # Short enough for a test to see Redis come back, long enough to span a burst of requests.
    monkeypatch.setattr(redis_outage, "backoff_seconds", 1.0)
    through = RedisThroughProxy(proxy, buffer, namespace)
    yield through
    proxy.come_back()
    buffer.clear()
    usage.use(previous)
    through.direct.flushdb()
    # The suite's own teardown clears the cache: let it clear one that is there.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    proxy.stop()

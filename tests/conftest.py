import pytest
from django.core.cache import cache

from tests.factories import World, build_world
from tests.webhooks.receiver import FakeDns
from tokens.auth import failures
from tokens.outage import redis_outage
from tokens.usage import buffer


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    """No background flusher, no throttle counters or usage left over between tests."""
    settings.KEYWARD_USAGE_FLUSH_THREAD = False
    # E-mail queued by a change goes out in the test's own thread, where the test can see it.
    settings.KEYWARD_EMAIL_SEND_AFTER_COMMIT = "inline"
    settings.KEYWARD_EXPORT_DIR = str(tmp_path / "exports")
    # Argon2 is deliberately slow; tests create hundreds of users. tests/test_settings.py
    # checks the production list from the settings module itself.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    buffer.clear()
    failures.clear()
    redis_outage.reset()
    yield
    buffer.clear()
    cache.clear()
    failures.clear()
    redis_outage.reset()


@pytest.fixture(autouse=True)
def dns(monkeypatch) -> FakeDns:
    """Webhook host names resolve from a table, never from the network (see FakeDns)."""
    table = FakeDns()
    monkeypatch.setattr("webhooks.addresses.resolve_host", table.resolve)
    return table


@pytest.fixture
def world(db) -> World:
    return build_world()


@pytest.fixture
def org_admin(world):
    return world.principal(world.alice)


@pytest.fixture
def group_admin(world):
    return world.principal(world.bob)


@pytest.fixture
def member(world):
    return world.principal(world.carol)


@pytest.fixture
def other_org_admin(world):
    return world.principal(world.dave, world.globex)

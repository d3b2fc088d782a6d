import pytest
from django.core.cache import cache

from orgs.models import User
from tests.factories import (
    CUSTOM_PERMISSIONS,
    Api,
    Callers,
    World,
    allow_permission_edits,
    build_world,
    issue,
)
from tests.webhooks.receiver import FakeDns
from tokens import usage
from tokens.auth import failures
from tokens.outage import redis_outage


@pytest.fixture(autouse=True)
def _isolated(settings, tmp_path):
    """No background flusher, no throttle counters or usage left over between tests."""
    settings.KEYWARD_USAGE_FLUSH_THREAD = False
    # E-mail queued by a change goes out in the test's own thread, where the test can see it.
    settings.KEYWARD_EMAIL_SEND_AFTER_COMMIT = "inline"
    settings.KEYWARD_EXPORT_DIR = str(tmp_path / "exports")
    # Argon2 is deliberately slow; tests create hundreds of users. tests/config/test_settings.py
    # checks the production list from the settings module itself.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    # Each test's usage buffer is built from its own settings, on first use; one a test swaps
    # in with usage.use() is gone afterwards.
    usage.use(None)
    failures.clear()
    redis_outage.reset()
    yield
    usage.current().clear()
    usage.use(None)
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
def permission_edits_allowed(world) -> None:
    """Acme lets its tokens' permissions be edited (off in a new organization)."""
    allow_permission_edits(world.acme)


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


@pytest.fixture
def as_alice(client, world):
    """Organization admin of acme."""
    client.force_login(world.alice)
    return client


@pytest.fixture
def as_bob(client, world):
    """Member of acme, admin of group platform."""
    client.force_login(world.bob)
    return client


@pytest.fixture
def as_carol(client, world):
    """Member of acme and of group platform (not its admin)."""
    client.force_login(world.carol)
    return client


@pytest.fixture
def callers(world, org_admin, member, other_org_admin, client) -> Callers:
    issued = {
        "org_admin": issue(org_admin, name="org admin", role="admin"),
        "member_role": issue(org_admin, name="org member", role="member"),
        "custom": issue(org_admin, name="custom", role="custom", permissions=CUSTOM_PERMISSIONS),
        "group": issue(org_admin, name="platform", scope="group", group=world.platform),
        "personal_admin": issue(org_admin, name="alice's", scope="personal", role="admin"),
        "personal_member": issue(member, name="carol's", scope="personal", role="admin"),
        "other_org": issue(other_org_admin, name="globex admin", role="admin"),
    }
    return Callers(
        client=client,
        secrets={name: token.secret for name, token in issued.items()},
        tokens={name: token.token for name, token in issued.items()},
    )


@pytest.fixture
def admin_api(callers) -> Api:
    return callers.api("org_admin")


@pytest.fixture
def staff(db):
    return User.objects.create_superuser("operator", "operator@example.com", "operator-password")


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client

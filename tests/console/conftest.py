import pytest

HTMX = {"HTTP_HX_REQUEST": "true"}


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

import pytest

from tests.webhooks.receiver import Receiver
from webhooks import services


@pytest.fixture
def receiver(settings):
    """A receiver on a loopback port, allowed through KEYWARD_WEBHOOK_ALLOWED_HOSTS."""
    settings.KEYWARD_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.KEYWARD_WEBHOOK_TIMEOUT_SECONDS = 2.0
    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture
def hook(receiver, org_admin, world):
    """An endpoint of acme subscribed to every event, pointing at the receiver."""
    return services.create_endpoint(
        actor=org_admin,
        organization=world.acme,
        url=receiver.url(),
        events=["*"],
        description="Receiver",
    )

"""Webhook receivers that are down, hung, or whose name stops resolving: the delivery waits for
its next attempt on the schedule, nothing is lost, nothing is sent twice, and no attempt holds
the worker past its timeout.

Receivers answering 500, redirecting, or answering slowly (an HTTP-level stall or a trickle of
bytes) are played in tests/webhooks/test_delivery.py; here the faults are below HTTP, played by
the TCP fault proxy in front of a real receiver.
"""

import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from bench.faultproxy import FaultProxy
from tests.factories import issue
from tests.webhooks.receiver import Receiver
from webhooks import services, worker
from webhooks.models import DeliveryStatus, WebhookDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver(settings):
    settings.KEYWARD_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1", "hooks.internal"]
    settings.KEYWARD_WEBHOOK_TIMEOUT_SECONDS = 1.0
    running = Receiver().start()
    proxy = FaultProxy("127.0.0.1", running.port).start()
    running.proxy = proxy
    yield running
    proxy.stop()
    running.stop()


def endpoint(receiver, world, org_admin, host="127.0.0.1"):
    created = services.create_endpoint(
        actor=org_admin,
        organization=world.acme,
        url=f"http://{host}:{receiver.proxy.port}/hook",
        events=["token.created"],
        description="Behind a fault proxy",
    )
    return created.endpoint


def delivery_of(hook):
    return WebhookDelivery.objects.get(endpoint=hook, event_type="token.created")


def retry_then_deliver_once(receiver, delivery):
    """Past the delivery's next attempt, with the fault gone: it is sent exactly once."""
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1
    waited = delivery.next_attempt_at - delivery.last_attempt_at
    assert timedelta(seconds=4) <= waited <= timedelta(seconds=6)  # the schedule's first step
    with time_machine.travel(delivery.next_attempt_at - timedelta(seconds=1)):
        assert worker.deliver_due() == 0  # nothing before its time
    receiver.proxy.come_back()
    with time_machine.travel(delivery.next_attempt_at + timedelta(seconds=1)):
        assert worker.deliver_due() == 1
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        assert worker.deliver_due() == 0
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 2
    assert receiver.ids() == [delivery.message_id]


def test_a_receiver_that_is_down_gets_the_event_once_it_is_back(receiver, world, org_admin):
    hook = endpoint(receiver, world, org_admin)
    receiver.proxy.go_down()
    issue(org_admin, name="while down")
    assert worker.deliver_due() == 1
    delivery = delivery_of(hook)
    assert delivery.last_status_code is None and delivery.last_error
    assert receiver.received == []
    retry_then_deliver_once(receiver, delivery)


def test_a_receiver_that_accepts_and_never_answers_holds_the_worker_one_timeout(
    receiver, world, org_admin
):
    hook = endpoint(receiver, world, org_admin)
    receiver.proxy.hang()
    issue(org_admin, name="while hung")
    started = time.monotonic()
    worker.deliver_due()
    took = time.monotonic() - started
    assert took < 3  # the timeout is 1 s; a hung receiver used to be waited for
    delivery = delivery_of(hook)
    assert "No answer within 1" in delivery.last_error
    receiver.received.clear()  # what the hung connection swallowed never reached it whole
    retry_then_deliver_once(receiver, delivery)


def test_a_name_that_stops_resolving_waits_for_its_next_attempt(receiver, world, org_admin, dns):
    dns["hooks.internal"] = ["127.0.0.1"]
    hook = endpoint(receiver, world, org_admin, host="hooks.internal")
    del dns.table["hooks.internal"]  # the receiver's DNS record is gone
    issue(org_admin, name="while unresolvable")
    worker.deliver_due()
    delivery = delivery_of(hook)
    assert "does not resolve" in delivery.last_error
    assert receiver.received == []
    dns["hooks.internal"] = ["127.0.0.1"]
    retry_then_deliver_once(receiver, delivery)

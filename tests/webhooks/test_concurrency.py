"""Several workers at once on PostgreSQL: each delivery is sent exactly once."""

import threading

import pytest
from django.db import connection, connections

from tests.factories import issue
from tests.webhooks.receiver import Answer
from webhooks import worker
from webhooks.models import DeliveryStatus, WebhookDelivery

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="SKIP LOCKED needs PostgreSQL; on SQLite one worker runs (docs/webhooks.md)",
    ),
]


def test_two_workers_deliver_each_event_exactly_once(hook, receiver, org_admin):
    receiver.default = Answer(200, delay=0.01)  # long enough for the workers to overlap
    for number in range(40):
        issue(org_admin, name=f"token {number}")
    queued = set(WebhookDelivery.objects.values_list("message_id", flat=True))
    assert len(queued) == 41  # 40 token.created and the endpoint's own webhook.created
    barrier = threading.Barrier(2)
    made = []

    def run():
        barrier.wait()
        try:
            made.append(worker.deliver_due())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(receiver.ids()) == sorted(queued)  # each once, none twice, none missing
    assert sum(made) == 41 and min(made) > 0  # both workers took a share
    assert not WebhookDelivery.objects.exclude(status=DeliveryStatus.SUCCEEDED).exists()

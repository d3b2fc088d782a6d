"""manage.py deliver_webhooks: --once delivers what is due and exits; without it the worker
runs until SIGTERM or SIGINT, finishes the delivery in hand, and exits cleanly."""

import os
import signal
import threading
from io import StringIO

import pytest
from django.core.management import call_command

from tests.factories import issue
from tests.webhooks.receiver import Answer
from webhooks.models import DeliveryStatus, WebhookDelivery

pytestmark = pytest.mark.django_db


def test_once_delivers_what_is_due_and_exits(hook, receiver, org_admin):
    issue(org_admin)
    output = StringIO()
    call_command("deliver_webhooks", "--once", stdout=output)
    assert "2 delivery attempts" in output.getvalue()
    assert len(receiver.received) == 2
    call_command("deliver_webhooks", "--once", stdout=output)
    assert len(receiver.received) == 2


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_finishes_the_delivery_in_hand_then_stops(hook, receiver, org_admin, signum):
    receiver.answer(Answer(200, delay=0.4))
    issue(org_admin)
    handler_before = signal.getsignal(signum)
    # The signal arrives while the first delivery is being received.
    watcher = threading.Thread(
        target=lambda: receiver.got_one.wait(10) and os.kill(os.getpid(), signum)
    )
    watcher.start()
    output = StringIO()
    call_command("deliver_webhooks", "--poll", "0.05", stdout=output)  # returns: exit 0
    watcher.join()
    assert "Stopped after 1 delivery attempts" in output.getvalue()
    first = WebhookDelivery.objects.order_by("created_at", "pk").first()
    assert first.status == DeliveryStatus.SUCCEEDED
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).count() == 1
    assert signal.getsignal(signum) == handler_before  # the previous handler is back


def test_secrets_survive_a_key_rotation_and_reencryption_retires_the_old_key(
    org_admin, world, settings
):
    from webhooks import services, signing
    from webhooks.models import WebhookEndpoint

    old_key, new_key = (
        "o" * 8 + "ldKeyOldKeyOldKeyOldKey1234",
        "n" * 8 + "ewKeyNewKeyNewKeyNewKey5678",
    )
    settings.KEYWARD_WEBHOOK_SECRET_KEYS = [old_key]
    issued = services.create_endpoint(
        actor=org_admin, organization=world.acme, url="https://siem.example.com/", events=["*"]
    )
    settings.KEYWARD_WEBHOOK_SECRET_KEYS = [old_key, new_key]  # appended: the newest encrypts
    endpoint = WebhookEndpoint.objects.get(pk=issued.endpoint.pk)
    assert services.secrets_in_use(endpoint, endpoint.created_at) == [issued.secret]
    output = StringIO()
    call_command("reencrypt_webhook_secrets", stdout=output)
    assert "1 endpoints re-encrypted" in output.getvalue()
    settings.KEYWARD_WEBHOOK_SECRET_KEYS = [new_key]  # the old key is gone
    endpoint.refresh_from_db()
    assert signing.decrypt(endpoint.secret_ciphertext) == issued.secret
    settings.KEYWARD_WEBHOOK_SECRET_KEYS = ["x" * 40]
    with pytest.raises(signing.UnreadableSecret):
        signing.decrypt(endpoint.secret_ciphertext)


def test_prune_deletes_finished_deliveries_older_than_asked_and_never_queued_ones(
    hook, receiver, org_admin
):
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    from webhooks.models import WebhookAttempt

    issue(org_admin)
    call_command("deliver_webhooks", "--once", stdout=StringIO())
    issue(org_admin)  # queued, not sent
    with time_machine.travel(timezone.now() + timedelta(days=31)):
        output = StringIO()
        call_command("prune_webhook_deliveries", stdout=output)
    assert "2 finished deliveries deleted" in output.getvalue()
    assert list(WebhookDelivery.objects.values_list("status", flat=True)) == ["pending"]
    assert not WebhookAttempt.objects.exists()

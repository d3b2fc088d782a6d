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
    # The signal arrives while the first delivery is being sent.
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signum))
    timer.start()
    output = StringIO()
    call_command("deliver_webhooks", "--poll", "0.05", stdout=output)  # returns: exit 0
    timer.join()
    assert "Stopped after 1 delivery attempts" in output.getvalue()
    first = WebhookDelivery.objects.order_by("created_at", "pk").first()
    assert first.status == DeliveryStatus.SUCCEEDED
    assert WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).count() == 1
    assert signal.getsignal(signum) == handler_before  # the previous handler is back

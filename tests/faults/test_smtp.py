"""The mail server is down, hung, or answers too slowly while reminders go out: the commands
exit non-zero, nothing is marked sent, and the next run sends each message exactly once.

A real (minimal) SMTP server sits behind the TCP fault proxy; Keyward uses Django's SMTP
backend against it, as in production.
"""

import io
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from bench.faultproxy import FaultProxy
from mail.models import OutgoingEmail
from orgs.models import User
from tests.factories import issue
from tests.faults.smtp import SmtpServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp(settings):
    server = SmtpServer().start()
    proxy = FaultProxy("127.0.0.1", server.port).start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = proxy.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 1
    server.proxy = proxy
    yield server
    proxy.stop()
    server.stop()


@pytest.fixture
def expiring(world, org_admin):
    User.objects.filter(pk=world.alice.pk).update(email="alice@example.com")
    return issue(org_admin, name="expiring", expires_in=timedelta(days=2)).token


def play(proxy, fault):
    if fault == "down":
        proxy.go_down()
    elif fault == "hung":
        proxy.hang()
    else:  # answers, but each line 2 s late with a 1 s timeout
        proxy.delay = 2.0


@pytest.mark.parametrize("fault", ["down", "hung", "slow"])
def test_reminders_during_a_mail_fault_exit_non_zero_and_go_out_once_on_the_next_run(
    smtp, expiring, fault
):
    play(smtp.proxy, fault)
    with pytest.raises(CommandError, match="kept queued for the next run"):
        call_command("notify_expiring_tokens", stdout=io.StringIO())
    email = OutgoingEmail.objects.get()
    assert email.status == "pending" and email.sent_at is None and email.attempts == 1
    assert smtp.messages == []
    # Still failing: the retry run exits non-zero too and marks nothing sent.
    with (
        time_machine.travel(email.next_attempt_at + timedelta(seconds=1)),
        pytest.raises(CommandError, match="kept for the next run"),
    ):
        call_command("send_email", "--once", stdout=io.StringIO())
    email.refresh_from_db()
    assert email.status == "pending" and email.attempts == 2
    smtp.proxy.come_back()
    # The next daily run queues nothing new (the reminder is recorded), and sends nothing early.
    call_command("notify_expiring_tokens", stdout=io.StringIO())
    assert OutgoingEmail.objects.count() == 1 and smtp.messages == []
    with time_machine.travel(email.next_attempt_at + timedelta(seconds=1)):
        call_command("send_email", "--once", stdout=io.StringIO())
    email.refresh_from_db()
    assert email.status == "sent" and email.sent_at is not None
    assert len(smtp.messages) == 1 and "expir" in smtp.subjects()[0].lower()
    with time_machine.travel(timezone.now() + timedelta(days=1)):
        call_command("send_email", "--once", stdout=io.StringIO())
    assert len(smtp.messages) == 1

"""The e-mail outbox: queued with the change, sent after it, never under a database lock."""

from __future__ import annotations

import io
import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from mail import outbox
from mail.models import OutgoingEmail
from tests.factories import issue
from tokens.models import ApiToken
from tokens.services import revoke_token

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _locmem(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def test_a_message_queued_in_a_change_that_rolls_back_is_never_sent(
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                outbox.queue(to=["a@example.com"], subject="Hi", body="x", purpose="test")
                raise RuntimeError("the change failed")
        except RuntimeError:
            pass
    assert not OutgoingEmail.objects.exists() and mail.outbox == []


def test_a_message_goes_out_once_its_change_commits(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        outbox.queue(to=["a@example.com"], subject="Hi", body="Hello", purpose="test")
    assert [message.to for message in mail.outbox] == [["a@example.com"]]
    assert OutgoingEmail.objects.get().status == "sent"


def test_a_name_carrying_header_lines_stays_one_harmless_subject_line():
    email = outbox.queue(
        to=["a@example.com"],
        subject="Platform\r\nBcc: attacker@evil.test\r\n\r\nclick \u202egnp.exe",
        body="x",
        purpose="test",
    )
    assert "\n" not in email.subject and "\r" not in email.subject
    assert "\u202e" not in email.subject
    outbox.deliver_due()
    (message,) = mail.outbox
    assert message.to == ["a@example.com"] and message.bcc == []


def test_invalid_recipients_are_dropped_and_no_recipient_queues_nothing():
    assert (
        outbox.queue(
            to=["", "not an address", "a@b.test\r\nBcc: x@y"], subject="s", body="b", purpose="test"
        )
        is None
    )
    email = outbox.queue(to=["ok@example.com", "nope"], subject="s", body="b", purpose="test")
    assert email.recipients == ["ok@example.com"]


def test_a_failed_send_waits_and_is_retried_then_given_up(monkeypatch):
    email = outbox.queue(to=["a@example.com"], subject="s", body="b", purpose="test")

    def broken(self, fail_silently=False):
        raise ConnectionRefusedError("down")

    monkeypatch.setattr("django.core.mail.EmailMessage.send", broken)
    now = timezone.now()
    for attempt in range(1, outbox.MAX_ATTEMPTS + 1):
        delivery = outbox.deliver_due(now=now)
        assert len(delivery.failures) == 1
        email.refresh_from_db()
        assert email.attempts == attempt
        assert outbox.deliver_due(now=now).failures == []  # not due again yet
        now = email.next_attempt_at + timedelta(seconds=1)
    assert email.status == "failed" and "down" in email.last_error


def test_a_sender_that_died_mid_send_leaves_the_message_to_the_next_one_after_its_claim():
    email = outbox.queue(to=["a@example.com"], subject="s", body="b", purpose="test")
    now = timezone.now()
    assert [claimed.pk for claimed in outbox._claim(now, 10, None)] == [email.pk]
    assert outbox.deliver_due(now=now).sent == 0  # claimed by the dead sender
    assert outbox.deliver_due(now=now + outbox.CLAIM + timedelta(seconds=1)).sent == 1


def test_send_email_once_exits_non_zero_when_something_stays_queued(monkeypatch):
    outbox.queue(to=["a@example.com"], subject="s", body="b", purpose="test")
    monkeypatch.setattr(
        "django.core.mail.EmailMessage.send",
        lambda self, fail_silently=False: (_ for _ in ()).throw(OSError("timed out")),
    )
    with pytest.raises(CommandError, match="kept for the next run"):
        call_command("send_email", "--once", stdout=io.StringIO())


class StallingBackend(BaseEmailBackend):
    """A mail server that accepts the connection and then stalls until released."""

    entered = threading.Event()
    release = threading.Event()

    def send_messages(self, messages):
        StallingBackend.entered.set()
        StallingBackend.release.wait(timeout=20)
        return len(messages)


@pytest.mark.django_db(transaction=True)
def test_a_stalled_mail_server_never_blocks_a_change_of_the_token_being_reminded(
    settings, world, org_admin
):
    """The expiry reminder of a token is being sent while the mail server stalls; revoking
    that very token meanwhile commits at once, on both databases: no transaction is held across
    SMTP (on SQLite the reminder's open transaction held the database's write lock)."""
    from orgs.models import User
    from tokens.notifications import send_reminders

    settings.EMAIL_BACKEND = "tests.mail.test_outbox.StallingBackend"
    StallingBackend.entered.clear()
    StallingBackend.release.clear()
    User.objects.filter(pk=world.alice.pk).update(email="alice@example.com")
    token = issue(org_admin, name="expiring", expires_in=timedelta(days=2)).token
    sender = threading.Thread(target=send_reminders)
    sender.start()
    try:
        assert StallingBackend.entered.wait(timeout=10), "the reminder was never sent"
        done = threading.Event()

        def change():
            from django.db import connection

            try:
                revoke_token(actor=org_admin, token=token, reason="while mail stalls")
                done.set()
            finally:
                connection.close()

        changer = threading.Thread(target=change)
        changer.start()
        changer.join(timeout=8)
        assert done.is_set(), "the token change waited for the mail server"
        assert ApiToken.objects.get(pk=token.pk).status == "revoked"
    finally:
        StallingBackend.release.set()
        sender.join(timeout=20)
    assert OutgoingEmail.objects.get().status == "sent"

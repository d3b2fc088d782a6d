"""The worker against a real receiver on a loopback port: signatures, retries, timeouts,
redirects, address checks at delivery time, leases, and turning off a failing endpoint."""

import logging
import threading
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from mail.models import OutgoingEmail
from orgs.models import AuditEvent
from tests.factories import issue
from tests.webhooks.receiver import Answer
from tests.webhooks.test_addresses import REFUSED
from tokens.services import revoke_token
from webhooks import addresses, services, transport, worker
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


def deliveries(endpoint, **filters):
    return WebhookDelivery.objects.filter(endpoint=endpoint.endpoint, **filters)


def only_event(hook, event_type):
    """Deliveries of one type (an endpoint subscribed to * also gets webhook.* events)."""
    return deliveries(hook, event_type=event_type)


def test_a_token_event_arrives_signed_and_verifies_with_the_endpoint_secret(
    hook, receiver, org_admin
):
    token = issue(org_admin, name="deploy").token
    made = worker.deliver_due()
    assert made == 2  # webhook.created (it subscribes to *) and token.created
    request = next(r for r in receiver.received if b'"token.created"' in r.body)
    payload = Webhook(hook.secret).verify(request.body, request.headers)
    assert payload["type"] == "token.created"
    assert payload["data"]["object"] == {
        "type": "api_token",
        "id": str(token.pk),
        "name": str(token),
    }
    assert payload["data"]["actor"]["name"] == "alice"
    assert payload["data"]["organization"]["slug"] == "acme"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"].startswith("msg_")
    assert request.path == "/hook"
    delivery = only_event(hook, "token.created").get()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 1
    assert delivery.last_status_code == 200


def test_a_signature_made_with_another_secret_does_not_verify(hook, receiver, org_admin):
    issue(org_admin)
    worker.deliver_due()
    other = services.create_endpoint(
        actor=org_admin,
        organization=org_admin.organization,
        url=receiver.url("/b"),
        events=["token.*"],
    )
    request = receiver.received[-1]
    with pytest.raises(WebhookVerificationError):
        Webhook(other.secret).verify(request.body, request.headers)


def test_a_receiver_that_answers_500_then_200_gets_the_event_exactly_once(
    hook, receiver, org_admin
):
    worker.deliver_due()  # webhook.created
    receiver.received.clear()
    receiver.answer(Answer(500), Answer(200))
    issue(org_admin, name="flaky")
    worker.deliver_due()
    delivery = only_event(hook, "token.created").get()
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1
    assert delivery.last_status_code == 500
    with time_machine.travel(delivery.next_attempt_at + timedelta(seconds=1)):
        worker.deliver_due()
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        assert worker.deliver_due() == 0
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 2
    assert [r.headers["webhook-id"] for r in receiver.received] == [delivery.message_id] * 2
    assert [a.status_code for a in delivery.attempt_log.all()] == [500, 200]


def test_retries_follow_the_schedule_with_jitter_then_the_delivery_fails(hook, receiver, org_admin):
    worker.deliver_due()
    receiver.default = Answer(503)
    issue(org_admin)
    delivery = only_event(hook, "token.created").get()
    expected = [
        timedelta(seconds=5),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=5),
        timedelta(hours=10),
    ]
    moment = timezone.now()
    for number, wait in enumerate(expected, start=1):
        with time_machine.travel(moment, tick=False):
            worker.deliver_due()
        delivery.refresh_from_db()
        assert delivery.attempts == number and delivery.status == DeliveryStatus.PENDING
        waited = delivery.next_attempt_at - delivery.last_attempt_at
        assert wait * 0.9 <= waited <= wait * 1.1, (number, waited)
        # Nothing is sent before its time.
        with time_machine.travel(delivery.next_attempt_at - timedelta(seconds=1), tick=False):
            assert worker.deliver_due() == 0
        moment = delivery.next_attempt_at
    with time_machine.travel(moment, tick=False):
        worker.deliver_due()
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == worker.MAX_ATTEMPTS
    assert delivery.completed_at is not None
    with time_machine.travel(moment + timedelta(days=3)):
        assert worker.deliver_due() == 0
    sent = [r for r in receiver.received if r.headers["webhook-id"] == delivery.message_id]
    assert len(sent) == 7


def test_redirects_are_not_followed(hook, receiver, org_admin):
    worker.deliver_due()
    receiver.received.clear()
    receiver.answer(Answer(302, location=receiver.url("/elsewhere")))
    issue(org_admin)
    worker.deliver_due()
    assert [r.path for r in receiver.received] == ["/hook"]
    delivery = only_event(hook, "token.created").get()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_status_code == 302 and "not followed" in delivery.last_error


@pytest.mark.parametrize(
    "answer", [Answer(delay=5), Answer(trickle=0.2)], ids=["silent", "trickle"]
)
def test_a_slow_receiver_times_out_without_holding_the_worker_past_the_timeout(
    hook, receiver, org_admin, settings, answer
):
    worker.deliver_due()
    settings.KEYWARD_WEBHOOK_TIMEOUT_SECONDS = 0.5
    receiver.answer(answer)
    issue(org_admin)
    started = timezone.now()
    worker.deliver_due()
    took = (timezone.now() - started).total_seconds()
    delivery = only_event(hook, "token.created").get()
    assert delivery.status == DeliveryStatus.PENDING and delivery.last_status_code is None
    assert "No answer within 0.5 seconds" in delivery.last_error
    assert 0.45 <= delivery.last_duration_ms / 1000 < 1.5  # the receiver would take 5 s
    assert took < 2.5


def test_an_endpoint_whose_name_now_resolves_to_a_private_address_gets_nothing(
    receiver, org_admin, world, dns
):
    dns["hooks.example.com"] = ["93.184.215.14"]
    issued = services.create_endpoint(
        actor=org_admin,
        organization=world.acme,
        url="https://hooks.example.com/in",
        events=["token.*"],
    )
    dns["hooks.example.com"] = ["127.0.0.1"]  # DNS rebinding after registration
    issue(org_admin)
    worker.deliver_due()
    delivery = WebhookDelivery.objects.get(endpoint=issued.endpoint)
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1
    assert delivery.last_error.startswith("Refused: hooks.example.com resolves to 127.0.0.1")
    assert receiver.received == []


@pytest.mark.parametrize("address", sorted(REFUSED))
def test_every_refused_address_class_is_refused_again_at_delivery(
    receiver, org_admin, world, dns, address
):
    dns["moving.example.com"] = ["93.184.215.14"]
    issued = services.create_endpoint(
        actor=org_admin,
        organization=world.acme,
        url="https://moving.example.com/",
        events=["token.created"],
    )
    dns["moving.example.com"] = [address]
    issue(org_admin)
    worker.deliver_due()
    delivery = WebhookDelivery.objects.get(endpoint=issued.endpoint)
    assert delivery.last_error.startswith("Refused:") and REFUSED[address] in delivery.last_error
    assert receiver.received == []


def test_the_transport_connects_to_the_checked_address_never_resolving_the_name_again(receiver):
    destination = addresses.Destination(
        url=f"http://pinned.example.invalid:{receiver.port}/hook",
        scheme="http",
        host="pinned.example.invalid",
        port=receiver.port,
        addresses=("127.0.0.1",),
        allowed_host=False,
    )
    outcome = transport.post(destination, b"{}", {"webhook-id": "msg_x"}, timeout=2)
    assert outcome.succeeded, outcome
    assert receiver.received[0].headers["host"] == f"pinned.example.invalid:{receiver.port}"


def test_a_killed_worker_loses_nothing_its_delivery_is_sent_after_the_lease(
    hook, receiver, org_admin
):
    worker.deliver_due()
    receiver.received.clear()
    issue(org_admin)
    claim = worker.claim_next()  # ...and the worker dies before sending
    assert claim is not None and worker.claim_next() is None
    assert worker.deliver_due() == 0  # leased: nobody else takes it
    with time_machine.travel(timezone.now() + worker.lease_duration() + timedelta(seconds=1)):
        assert worker.deliver_due() == 1
    delivery = WebhookDelivery.objects.get(pk=claim.delivery.pk)
    assert delivery.status == DeliveryStatus.SUCCEEDED and delivery.attempts == 2
    assert len(receiver.received) == 1
    # The dead worker's late result is not recorded over the one that counted.
    assert not worker.record(claim, transport.Outcome(500, "late", 1), timezone.now())


def test_a_change_that_rolls_back_sends_nothing(hook, receiver, org_admin):
    from django.db import transaction

    worker.deliver_due()
    receiver.received.clear()
    token = issue(org_admin).token
    worker.deliver_due()
    receiver.received.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        revoke_token(actor=org_admin, token=token, reason="oops")
        assert only_event(hook, "token.revoked").exists()  # written in the same transaction
        raise RuntimeError("the change fails after its audit event")
    assert not only_event(hook, "token.revoked").exists()
    assert worker.deliver_due() == 0 and receiver.received == []


def test_delivering_writes_no_audit_event_so_events_never_loop(hook, receiver, org_admin):
    issue(org_admin)
    receiver.default = Answer(500)
    before = AuditEvent.objects.count()
    worker.deliver_due()
    assert AuditEvent.objects.count() == before


def test_an_endpoint_failing_for_24_hours_is_turned_off_and_its_admins_emailed(
    hook, receiver, org_admin, world, django_capture_on_commit_callbacks
):
    world.alice.email = "alice@acme.example.com"
    world.alice.save()
    receiver.default = Answer(500)
    start = timezone.now()
    issue(org_admin)
    with time_machine.travel(start, tick=False):
        worker.deliver_due()
    endpoint = WebhookEndpoint.objects.get(pk=hook.endpoint.pk)
    assert endpoint.failing_since is not None and endpoint.active
    with time_machine.travel(start + timedelta(hours=23), tick=False):
        issue(org_admin)
        worker.deliver_due()
    assert WebhookEndpoint.objects.get(pk=hook.endpoint.pk).active
    with time_machine.travel(start + timedelta(hours=24, minutes=1), tick=False):
        issue(org_admin)
        with django_capture_on_commit_callbacks(execute=True):
            worker.deliver_due()
    endpoint.refresh_from_db()
    assert not endpoint.active and "24 hours" in endpoint.deactivated_reason
    event = AuditEvent.objects.filter(action="webhook.deactivated").get()
    assert event.object_id == str(endpoint.pk) and event.actor_name == "webhook worker"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["alice@acme.example.com"]
    assert "turned off" in mail.outbox[0].subject
    assert OutgoingEmail.objects.get(purpose="webhook_endpoint_disabled").status == "sent"
    # Its queued deliveries end, and nothing more is sent to it.
    assert not deliveries(hook, status__in=["pending", "delivering"]).exists()
    received = len(receiver.received)
    with time_machine.travel(start + timedelta(days=3)):
        issue(org_admin)
        worker.deliver_due()
    assert len(receiver.received) == received


class FailingMail:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("mail server down")


def test_a_notice_that_cannot_be_sent_stays_queued_and_is_sent_later(
    hook, org_admin, world, settings, django_capture_on_commit_callbacks, receiver
):
    world.alice.email = "alice@acme.example.com"
    world.alice.save()
    settings.EMAIL_BACKEND = "tests.webhooks.test_delivery.FailingMail"
    endpoint = WebhookEndpoint.objects.get(pk=hook.endpoint.pk)
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        failing_since=timezone.now() - timedelta(hours=25)
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert services.deactivate_if_failing(endpoint_id=endpoint.pk, now=timezone.now())
    notice = OutgoingEmail.objects.get()
    assert notice.status == "pending" and "mail server down" in notice.last_error
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with time_machine.travel(notice.next_attempt_at + timedelta(seconds=1)):
        worker.run(stop=_stop_after_one_cycle(), poll_seconds=0)
    assert len(mail.outbox) == 1


def _stop_after_one_cycle():
    import threading

    class OneCycle(threading.Event):
        def is_set(self) -> bool:
            done, self.done = getattr(self, "done", False), True
            return done

    return OneCycle()


def test_during_a_rotation_both_secrets_sign_and_each_verifies(hook, receiver, org_admin):
    worker.deliver_due()
    rotated = services.rotate_secret(actor=org_admin, endpoint=hook.endpoint)
    receiver.received.clear()
    issue(org_admin)
    worker.deliver_due()
    request = next(r for r in receiver.received if b'"token.created"' in r.body)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(hook.secret).verify(request.body, request.headers)
    Webhook(rotated.secret).verify(request.body, request.headers)
    receiver.received.clear()
    with time_machine.travel(timezone.now() + timedelta(hours=25)):
        issue(org_admin)
        worker.deliver_due()
        request = next(r for r in receiver.received if b'"token.created"' in r.body)
        assert len(request.headers["webhook-signature"].split(" ")) == 1
        Webhook(rotated.secret).verify(request.body, request.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(hook.secret).verify(request.body, request.headers)


def test_a_test_event_and_a_redelivery_are_sent_by_the_worker(hook, receiver, org_admin):
    worker.deliver_due()
    receiver.received.clear()
    test = services.send_test_event(actor=org_admin, endpoint=hook.endpoint)
    worker.deliver_due()
    ping = next(r for r in receiver.received if r.headers["webhook-id"] == test.message_id)
    body = Webhook(hook.secret).verify(ping.body, ping.headers)
    assert body["type"] == "webhook.test" and body["data"]["requestedBy"] == "alice"
    test.refresh_from_db()
    again = services.redeliver(actor=org_admin, delivery=test)
    worker.deliver_due()
    again.refresh_from_db()
    assert again.status == DeliveryStatus.SUCCEEDED and again.redelivery_of_id == test.pk
    resent = [r for r in receiver.received if r.headers["webhook-id"] == test.message_id]
    assert len(resent) == 2 and resent[0].body == resent[1].body


def test_turning_an_endpoint_off_cancels_its_queue_and_sends_nothing(hook, receiver, org_admin):
    issue(org_admin)
    services.update_endpoint(actor=org_admin, endpoint=hook.endpoint, active=False)
    assert worker.deliver_due() == 0 and receiver.received == []
    cancelled = deliveries(hook, status=DeliveryStatus.FAILED)
    assert cancelled.exists() and all("turned off" in d.last_error for d in cancelled)


def test_the_worker_runs_until_told_to_stop_and_finishes_the_delivery_in_hand(
    hook, receiver, org_admin
):
    receiver.answer(Answer(delay=0.3))
    stop = threading.Event()
    # Told to stop while the first delivery is being received.
    watcher = threading.Thread(target=lambda: receiver.got_one.wait(10) and stop.set())
    watcher.start()
    made = worker.run(stop=stop, poll_seconds=0.05)
    watcher.join()
    assert made == 1  # stopped while sending the first: it was finished, the rest waits
    first = deliveries(hook).order_by("created_at", "pk").first()
    assert first.status == DeliveryStatus.SUCCEEDED


def test_no_log_line_holds_the_signing_secret(hook, receiver, org_admin, caplog):
    caplog.set_level(logging.DEBUG)
    receiver.answer(Answer(500))
    issue(org_admin)
    worker.deliver_due()
    logging.getLogger("keyward").info("echo %s", hook.secret)  # even if someone logs it
    body = hook.secret.removeprefix("whsec_")
    for record in caplog.records:
        assert body not in record.getMessage()


def test_no_log_line_holds_an_endpoint_path_which_may_be_the_receivers_own_secret(
    receiver, org_admin, world, caplog
):
    caplog.set_level(logging.DEBUG)
    services.create_endpoint(
        actor=org_admin,
        organization=world.acme,
        url=receiver.url("/services/T0/B0/SecretPathPart"),
        events=["token.*"],
    )
    receiver.answer(Answer(500))
    issue(org_admin)
    worker.deliver_due()
    assert receiver.received and "SecretPathPart" not in caplog.text

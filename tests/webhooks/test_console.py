"""The Webhooks pages: register an endpoint (its secret shown once), its deliveries with
status, attempts, answer and time, Send test event, Redeliver, edit, rotate, delete."""

import re

import pytest

from orgs.models import AuditEvent
from tests.factories import HTMX
from tests.webhooks.receiver import Answer, Receiver
from webhooks import services, worker
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

SECRET = re.compile(r"whsec_[A-Za-z0-9+/]{20,}=*")


@pytest.fixture
def receiver(settings):
    settings.KEYWARD_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture
def endpoint(org_admin, world, receiver):
    return services.create_endpoint(
        actor=org_admin,
        organization=world.acme,
        url=receiver.url(),
        events=["token.*"],
        description="Security channel",
    ).endpoint


def test_the_sidebar_links_the_webhooks_page_for_organization_admins(as_alice):
    content = as_alice.get("/o/acme/webhooks/").content.decode()
    assert 'href="/o/acme/webhooks/" aria-current="page">Webhooks</a>' in content
    assert "No endpoints yet" in content


def test_members_see_no_link_and_get_403(as_carol):
    assert "/o/acme/webhooks/" not in as_carol.get("/o/acme/me/tokens/").content.decode()
    assert as_carol.get("/o/acme/webhooks/").status_code == 403


def test_registering_shows_the_secret_once_uncached_and_never_again(as_alice, client):
    response = as_alice.post(
        "/o/acme/webhooks/new/",
        {
            "url": "https://siem.example.com/in",
            "description": "SIEM",
            "events": ["token.*", "security_policy.changed"],
            "active": "on",
        },
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    content = response.content.decode()
    (secret,) = set(SECRET.findall(content))
    assert "only time Keyward shows this secret" in content
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.events == ["security_policy.changed", "token.*"]
    for page in (
        "/o/acme/webhooks/",
        f"/o/acme/webhooks/{endpoint.pk}/",
        f"/o/acme/webhooks/{endpoint.pk}/edit/",
        f"/o/acme/webhooks/{endpoint.pk}/rotate/",
    ):
        assert secret not in as_alice.get(page).content.decode(), page
    assert secret not in str(dict(as_alice.session))


def test_a_private_address_is_refused_beside_the_url_field(as_alice, dns):
    dns["intranet.example.com"] = ["192.168.0.10"]
    response = as_alice.post(
        "/o/acme/webhooks/new/",
        {"url": "https://intranet.example.com/", "events": ["*"], "active": "on"},
    )
    content = response.content.decode()
    assert 'id="url-error"' in content and "192.168.0.10, a private address" in content
    assert 'value="https://intranet.example.com/"' in content  # what was typed stays
    assert not WebhookEndpoint.objects.exists()


def test_the_detail_lists_deliveries_with_status_attempts_answer_and_time(
    as_alice, endpoint, org_admin, receiver
):
    from tests.factories import issue

    receiver.answer(Answer(500))
    issue(org_admin, name="deploy")
    worker.deliver_due()
    content = as_alice.get(f"/o/acme/webhooks/{endpoint.pk}/").content.decode()
    assert "<code>token.created</code>" in content
    assert "Retrying" in content and "<td>500 <small" in content
    assert " ms</small>" in content
    assert "Every attempt has failed since" in content
    fragment = as_alice.get(f"/o/acme/webhooks/{endpoint.pk}/?status=failed", **HTMX)
    assert "<html" not in fragment.content.decode()
    assert "No failed deliveries." in fragment.content.decode()


def test_send_test_event_queues_one_and_the_worker_sends_it(as_alice, endpoint, receiver):
    response = as_alice.post(f"/o/acme/webhooks/{endpoint.pk}/test/", follow=True)
    assert "Test event queued" in response.content.decode()
    worker.deliver_due()
    assert [r.headers["webhook-id"] for r in receiver.received] == [
        WebhookDelivery.objects.get(event_type="webhook.test").message_id
    ]
    content = as_alice.get(f"/o/acme/webhooks/{endpoint.pk}/").content.decode()
    assert "<code>webhook.test</code>" in content and "Succeeded" in content


def test_redeliver_sends_a_finished_delivery_again(as_alice, endpoint, org_admin, receiver):
    delivery = services.send_test_event(actor=org_admin, endpoint=endpoint)
    worker.deliver_due()
    response = as_alice.post(
        f"/o/acme/webhooks/{endpoint.pk}/deliveries/{delivery.pk}/redeliver/", follow=True
    )
    assert "Queued again" in response.content.decode()
    worker.deliver_due()
    assert receiver.ids() == [delivery.message_id, delivery.message_id]
    detail = as_alice.get(f"/o/acme/webhooks/{endpoint.pk}/deliveries/{delivery.pk}/")
    content = detail.content.decode()
    assert delivery.message_id in content and "Sent again" in content
    assert "&quot;type&quot;: &quot;webhook.test&quot;" in content


def test_editing_with_a_stale_version_changes_nothing(as_alice, endpoint, org_admin):
    services.update_endpoint(actor=org_admin, endpoint=endpoint, description="Changed meanwhile")
    response = as_alice.post(
        f"/o/acme/webhooks/{endpoint.pk}/edit/",
        {"url": endpoint.url, "events": ["*"], "description": "Mine", "expected_version": 1},
    )
    assert "changed by someone else" in response.content.decode()
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).description == "Changed meanwhile"


def test_editing_can_turn_an_endpoint_off(as_alice, endpoint):
    response = as_alice.post(
        f"/o/acme/webhooks/{endpoint.pk}/edit/",
        {
            "url": endpoint.url,
            "events": ["token.*"],
            "description": "Paused",
            "expected_version": 1,
        },
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert not endpoint.active and endpoint.description == "Paused"
    assert AuditEvent.objects.filter(action="webhook.updated").exists()


def test_rotating_reveals_a_new_secret_and_says_how_long_the_old_one_signs(as_alice, endpoint):
    old_hint = endpoint.secret_partial
    response = as_alice.post(
        f"/o/acme/webhooks/{endpoint.pk}/rotate/", {"overlap": "24h", "expected_version": 1}
    )
    content = response.content.decode()
    (secret,) = set(SECRET.findall(content))
    assert "both secrets" in content
    endpoint.refresh_from_db()
    assert endpoint.secret_partial != old_hint
    assert secret.rstrip("=").endswith(endpoint.secret_partial[-4:])


def test_deleting_asks_first_then_deletes(as_alice, endpoint):
    confirm = as_alice.get(f"/o/acme/webhooks/{endpoint.pk}/delete/").content.decode()
    assert "cannot be undone" in confirm
    response = as_alice.post(f"/o/acme/webhooks/{endpoint.pk}/delete/", {"expected_version": 1})
    assert response.status_code == 302 and not WebhookEndpoint.objects.exists()


def test_another_organizations_endpoint_is_not_found(client, world, endpoint):
    client.force_login(world.dave)
    assert client.get(f"/o/globex/webhooks/{endpoint.pk}/").status_code == 404
    assert client.post(f"/o/globex/webhooks/{endpoint.pk}/test/").status_code == 404
    assert not WebhookDelivery.objects.filter(event_type="webhook.test").exists()


def test_a_queued_delivery_offers_no_redeliver(as_alice, endpoint, org_admin):
    delivery = services.send_test_event(actor=org_admin, endpoint=endpoint)
    assert delivery.status == DeliveryStatus.PENDING
    content = as_alice.get(f"/o/acme/webhooks/{endpoint.pk}/").content.decode()
    assert f"deliveries/{delivery.pk}/redeliver/" not in content
    assert 'hx-trigger="every 5s"' in content  # the list refreshes while something is queued

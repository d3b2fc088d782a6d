"""Contract of /webhooks: endpoints, the secret answered once, versions, field errors,
deliveries with their payload and attempts, test events and redelivery."""

from __future__ import annotations

import logging

import pytest

from orgs.models import AuditEvent
from tests.access.test_authorization_matrix_api import MATRIX, Cell
from webhooks import worker
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db

SIEM = {"url": "https://siem.example.com/keyward", "events": ["token.*"], "description": "SIEM"}
ENDPOINT_FIELDS = {
    "id",
    "url",
    "description",
    "events",
    "active",
    "secretHint",
    "previousSecretValidUntil",
    "failingSince",
    "deactivatedAt",
    "deactivatedReason",
    "version",
    "createdAt",
    "updatedAt",
}


def fields_of(response) -> dict:
    assert response.status_code == 400, response.content
    return response.json()["error"]["fields"]


def test_an_endpoint_is_created_with_its_secret_once_then_read_changed_and_deleted(admin_api):
    created = admin_api.post("/webhooks", SIEM)
    assert created.status_code == 201
    assert created.headers["Cache-Control"] == "no-store"
    body = created.json()
    assert set(body) == ENDPOINT_FIELDS | {"secret"}
    assert body["secret"].startswith("whsec_") and body["secretHint"].startswith("whsec_…")
    assert body["events"] == ["token.*"] and body["active"] and body["version"] == 1
    read = admin_api.get(f"/webhooks/{body['id']}")
    assert set(read.json()) == ENDPOINT_FIELDS
    assert admin_api.get("/webhooks").json()["count"] == 1
    changed = admin_api.patch(f"/webhooks/{body['id']}", {"version": 1, "events": ["*"]})
    assert changed.json()["events"] == ["*"] and changed.json()["version"] == 2
    stale = admin_api.patch(f"/webhooks/{body['id']}", {"version": 1, "active": False})
    assert stale.status_code == 409 and stale.json()["error"]["currentVersion"] == 2
    assert admin_api.delete(f"/webhooks/{body['id']}", version=1).status_code == 409
    assert admin_api.delete(f"/webhooks/{body['id']}").status_code == 204
    assert admin_api.get(f"/webhooks/{body['id']}").status_code == 404


def test_a_private_address_is_refused_on_url(admin_api, dns):
    dns["internal.example.com"] = ["10.0.0.2"]
    response = admin_api.post("/webhooks", {**SIEM, "url": "https://internal.example.com/"})
    assert "10.0.0.2, a private address" in fields_of(response)["url"][0]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**SIEM, "url": "http://169.254.169.254/latest/meta-data"}, "url"),
        ({**SIEM, "url": "not a url"}, "url"),
        ({**SIEM, "events": ["token.everything"]}, "events"),
        ({**SIEM, "events": []}, "events"),
        ({**SIEM, "events": "token.*"}, "events"),
        ({**SIEM, "description": "x" * 301}, "description"),
        ({**SIEM, "secret": "whsec_mine"}, "secret"),
        ({"events": ["*"]}, "url"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(admin_api, body, field):
    assert field in fields_of(admin_api.post("/webhooks", body))


def test_rotating_answers_a_new_secret_once_and_both_sign_during_the_overlap(admin_api):
    created = admin_api.post("/webhooks", SIEM).json()
    rotated = admin_api.post(
        f"/webhooks/{created['id']}/rotate-secret", {"version": 1, "overlapSeconds": 3600}
    )
    assert rotated.status_code == 200 and rotated.headers["Cache-Control"] == "no-store"
    body = rotated.json()
    assert body["secret"] != created["secret"] and body["version"] == 2
    assert body["previousSecretValidUntil"] is not None
    too_long = admin_api.post(
        f"/webhooks/{created['id']}/rotate-secret", {"overlapSeconds": 8 * 86400}
    )
    assert "overlapSeconds" in fields_of(too_long)


def test_a_test_event_is_queued_then_listed_with_its_attempts_and_payload(
    admin_api, settings, receiver_url
):
    created = admin_api.post("/webhooks", {**SIEM, "url": receiver_url}).json()
    queued = admin_api.post(f"/webhooks/{created['id']}/test")
    assert queued.status_code == 202
    assert queued.json()["status"] == "pending" and queued.json()["eventType"] == "webhook.test"
    worker.deliver_due()
    page = admin_api.get(f"/webhooks/{created['id']}/deliveries", status="succeeded").json()
    assert page["count"] == 1
    (item,) = page["items"]
    assert item["messageId"] == queued.json()["messageId"] and item["lastStatusCode"] == 200
    assert item["requestedBy"] == "org admin"
    detail = admin_api.get(f"/webhooks/{created['id']}/deliveries/{item['id']}").json()
    assert detail["payload"]["type"] == "webhook.test"
    assert [a["statusCode"] for a in detail["attemptLog"]] == [200]
    assert (
        admin_api.get(f"/webhooks/{created['id']}/deliveries", status="failed").json()["count"] == 0
    )


def test_a_finished_delivery_is_redelivered_with_the_same_webhook_id(admin_api, receiver_url):
    created = admin_api.post("/webhooks", {**SIEM, "url": receiver_url}).json()
    queued = admin_api.post(f"/webhooks/{created['id']}/test").json()
    path = f"/webhooks/{created['id']}/deliveries/{queued['id']}/redeliver"
    still_queued = admin_api.post(path)
    assert "delivery" in fields_of(still_queued)
    worker.deliver_due()
    again = admin_api.post(path)
    assert again.status_code == 202
    assert again.json()["messageId"] == queued["messageId"]
    assert again.json()["redeliveryOf"] == queued["id"]
    assert AuditEvent.objects.filter(action="webhook.redelivered").count() == 1


def test_a_delivery_of_another_endpoint_is_not_found(admin_api):
    first = admin_api.post("/webhooks", SIEM).json()
    second = admin_api.post("/webhooks", {**SIEM, "url": "https://b.example.com/"}).json()
    delivery = admin_api.post(f"/webhooks/{first['id']}/test").json()
    assert admin_api.get(f"/webhooks/{second['id']}/deliveries/{delivery['id']}").status_code == 404


def test_a_signing_secret_is_in_the_create_and_rotate_answers_and_nowhere_else(
    world, callers, caplog
):
    caplog.set_level(logging.DEBUG)
    api = callers.api("org_admin")
    created = api.post("/webhooks", SIEM).json()
    rotated = api.post(f"/webhooks/{created['id']}/rotate-secret", {}).json()
    secrets = {created["secret"], rotated["secret"]}
    issuing = {("POST", "/webhooks"), ("POST", "/webhooks/{id}/rotate-secret")}
    for (method, path), row in sorted(MATRIX.items()):
        call = row.build(Cell(world, "org_admin"))
        response = api.request(method, call.path, call.body, query=call.query)
        body = response.content.decode()
        if (method, path) in issuing:
            secrets.add(response.json()["secret"])
            assert body.count(response.json()["secret"]) == 1
        else:
            assert '"secret"' not in body, f"{method} {path}"
            assert not any(secret in body for secret in secrets), f"{method} {path}"
    for secret in secrets:
        random_part = secret.removeprefix("whsec_")
        assert random_part not in str(
            list(AuditEvent.objects.values_list("changes", "object_repr"))
        )
        assert random_part not in str(list(WebhookDelivery.objects.values_list("body", flat=True)))
        assert random_part not in caplog.text


@pytest.fixture
def receiver_url(settings):
    from tests.webhooks.receiver import Receiver

    settings.KEYWARD_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    running = Receiver().start()
    yield running.url()
    running.stop()


def test_deliveries_are_listed_newest_first_and_filter_by_status(admin_api):
    created = admin_api.post("/webhooks", SIEM).json()  # token.*: not its own webhook.created
    ids = [admin_api.post(f"/webhooks/{created['id']}/test").json()["id"] for _ in range(3)]
    WebhookDelivery.objects.filter(pk=ids[0]).update(status=DeliveryStatus.FAILED)
    page = admin_api.get(f"/webhooks/{created['id']}/deliveries", limit=2).json()
    assert page["count"] == 3 and [item["id"] for item in page["items"]] == ids[:0:-1]
    failed = admin_api.get(f"/webhooks/{created['id']}/deliveries", status="failed").json()
    assert [item["id"] for item in failed["items"]] == [ids[0]]

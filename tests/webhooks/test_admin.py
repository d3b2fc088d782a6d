"""Django admin for operators: endpoints and deliveries are read there without any secret, and
turning endpoints off goes through the service with its audit event."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orgs.models import AuditEvent, User
from webhooks import services
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, db):
    client.force_login(User.objects.create_superuser("operator", "op@example.com", "pw-12345678"))
    return client


def make(org_admin, world, count):
    return [
        services.create_endpoint(
            actor=org_admin, organization=world.acme, url=f"https://h{n}.example.com/", events=["*"]
        )
        for n in range(count)
    ]


def test_an_endpoints_page_shows_no_secret_not_even_encrypted(staff_client, org_admin, world):
    (issued,) = make(org_admin, world, 1)
    page = staff_client.get(
        reverse("admin:webhooks_webhookendpoint_change", args=[issued.endpoint.pk])
    ).content.decode()
    stored = WebhookEndpoint.objects.get(pk=issued.endpoint.pk)
    assert issued.secret not in page and stored.secret_ciphertext not in page
    assert issued.endpoint.secret_partial in page
    refused = staff_client.get(
        reverse("admin:webhooks_webhookendpoint_changelist"),
        {"secret_ciphertext__startswith": "g"},
    )
    assert refused.status_code == 400  # lookups on a secret are refused


def test_turning_endpoints_off_in_admin_is_audited_as_the_operator(staff_client, org_admin, world):
    endpoints = make(org_admin, world, 2)
    staff_client.post(
        reverse("admin:webhooks_webhookendpoint_changelist"),
        {"action": "turn_off_selected", "_selected_action": [e.endpoint.pk for e in endpoints]},
    )
    assert not WebhookEndpoint.objects.filter(active=True).exists()
    events = AuditEvent.objects.filter(action="webhook.updated")
    assert events.count() == 2 and {e.actor_name for e in events} == {"operator (admin)"}


def test_the_changelists_cost_the_same_queries_for_a_few_rows_as_for_many(
    staff_client, org_admin, world
):
    def counts():
        result = {}
        for name in ("webhookendpoint", "webhookdelivery"):
            with CaptureQueriesContext(connection) as captured:
                url = reverse(f"admin:webhooks_{name}_changelist")
                assert staff_client.get(url).status_code == 200
            result[name] = len(captured.captured_queries)
        return result

    make(org_admin, world, 2)
    few = counts()
    make(org_admin, world, 8)
    assert counts() == few

"""The outbox: deliveries written with the audit event, for the endpoints that subscribe to it,
with a payload fixed when the change happened and nothing secret in it."""

import json

import pytest

from orgs import audit
from orgs.models import AuditEvent
from policies.services import create_ip_filter
from tests.factories import issue
from tokens.services import rename_token, revoke_token
from webhooks import events, services
from webhooks.models import WebhookDelivery
from webhooks.outbox import enqueue_event

pytestmark = pytest.mark.django_db


def endpoint(actor, events_, *, active=True, url="https://siem.example.com/in"):
    return services.create_endpoint(
        actor=actor, organization=actor.organization, url=url, events=events_, active=active
    ).endpoint


def bodies(endpoint_):
    return [json.loads(d.body) for d in WebhookDelivery.objects.filter(endpoint=endpoint_)]


def test_an_organization_without_endpoints_pays_one_query_per_event(
    world, org_admin, django_assert_num_queries
):
    event = AuditEvent.objects.create(
        organization=world.acme, actor_name="x", actor_kind="human", action="token.created"
    )
    with django_assert_num_queries(1):
        assert enqueue_event(event, world.acme) == []


def test_an_organization_with_endpoints_pays_one_query_and_one_insert(
    world, org_admin, django_assert_num_queries
):
    endpoint(org_admin, ["*"])
    endpoint(org_admin, ["token.*"], url="https://b.example.com/")
    endpoint(org_admin, ["ip_filter.changed"], url="https://c.example.com/")
    event = AuditEvent.objects.create(
        organization=world.acme, actor_name="x", actor_kind="human", action="token.revoked"
    )
    with django_assert_num_queries(2):
        assert len(enqueue_event(event, world.acme)) == 2


def test_only_active_subscribed_endpoints_of_the_same_organization_get_the_event(
    org_admin, other_org_admin
):
    everything = endpoint(org_admin, ["*"])
    tokens = endpoint(org_admin, ["token.*"], url="https://b.example.com/")
    revoked_only = endpoint(org_admin, ["token.revoked"], url="https://c.example.com/")
    filters = endpoint(org_admin, ["ip_filter.*"], url="https://d.example.com/")
    paused = endpoint(org_admin, ["*"], active=False, url="https://e.example.com/")
    other = endpoint(other_org_admin, ["*"], url="https://f.example.com/")
    WebhookDelivery.objects.all().delete()
    token = issue(org_admin, name="deploy").token
    revoke_token(actor=org_admin, token=token, reason="rotated")

    def types(target):
        return sorted(d.event_type for d in WebhookDelivery.objects.filter(endpoint=target))

    assert types(everything) == ["token.created", "token.revoked"]
    assert types(tokens) == ["token.created", "token.revoked"]
    assert types(revoked_only) == ["token.revoked"]
    assert types(filters) == types(paused) == types(other) == []


def test_the_payload_is_the_audit_event_with_actor_token_object_address_and_changes(
    org_admin, world
):
    target = endpoint(org_admin, ["token.revoked"])
    acting = issue(org_admin, name="automation").token
    from orgs.principals import Principal

    through_token = Principal(
        user=acting.user, organization=world.acme, token=acting, address="203.0.113.9"
    )
    victim = issue(org_admin, name="old deploy").token
    revoke_token(actor=through_token, token=victim, reason="leaked")
    (body,) = bodies(target)
    event = AuditEvent.objects.get(action="token.revoked")
    assert body["type"] == "token.revoked"
    assert body["timestamp"] == event.occurred_at.isoformat().replace("+00:00", "Z")
    data = body["data"]
    assert data["id"] == event.pk and data["action"] == "token.revoked"
    assert data["actor"] == {"id": acting.user_id, "name": "automation", "kind": "technical"}
    assert data["token"] == {
        "id": acting.pk,
        "name": "automation",
        "partialToken": acting.partial_token,
    }
    assert data["object"] == {"type": "api_token", "id": str(victim.pk), "name": str(victim)}
    assert data["address"] == "203.0.113.9"
    assert data["changes"]["status"] == {"before": "active", "after": "revoked"}
    assert data["organization"] == {"id": world.acme.pk, "slug": "acme", "name": "Acme Corp"}


def test_a_later_change_never_alters_what_was_reported(org_admin):
    target = endpoint(org_admin, ["token.created"])
    token = issue(org_admin, name="first name").token
    rename_token(actor=org_admin, token=token, name="second name")
    (body,) = bodies(target)
    assert body["data"]["object"]["name"].startswith("first name")


def test_nothing_shaped_like_a_secret_reaches_a_payload(org_admin, world):
    target = endpoint(org_admin, ["*"])
    secret = issue(org_admin).secret
    signing_secret = services.create_endpoint(
        actor=org_admin, organization=world.acme, url="https://x.example.com/", events=["*"]
    ).secret
    # Even an event that quotes a secret by mistake is masked before it leaves.
    audit.record(
        actor=org_admin,
        action="token.renamed",
        organization=world.acme,
        object_type="api_token",
        object_repr=f"pasted {secret} and {signing_secret}",
    )
    text = " ".join(d.body for d in WebhookDelivery.objects.filter(endpoint=target))
    assert secret not in text and signing_secret.removeprefix("whsec_") not in text
    assert "kwo_[masked]" in text and "whsec_[masked]" in text


def test_events_of_every_kind_reach_an_endpoint_that_wants_everything(org_admin, world):
    target = endpoint(org_admin, ["*"])
    create_ip_filter(actor=org_admin, organization=world.acme, name="office", rules_text="deny all")
    types = set(
        WebhookDelivery.objects.filter(endpoint=target).values_list("event_type", flat=True)
    )
    assert {"webhook.created", "ip_filter.created"} <= types


def test_events_without_an_organization_are_not_queued(org_admin):
    endpoint(org_admin, ["*"])
    count = WebhookDelivery.objects.count()
    audit.record(
        actor=org_admin, action="technical_users.purged", organization=None, object_type="user"
    )
    assert WebhookDelivery.objects.count() == count


@pytest.mark.parametrize(
    ("patterns", "event_type", "expected"),
    [
        (["*"], "anything.at_all", True),
        (["token.*"], "token.revoked", True),
        (["token.*"], "tokens.cleaned_up", False),
        (["token.revoked"], "token.revoked", True),
        (["token.revoked"], "token.restored", False),
        ([], "token.revoked", False),
    ],
)
def test_a_subscription_matches_exact_types_kinds_and_everything(patterns, event_type, expected):
    assert events.matches(patterns, event_type) is expected


def test_every_audit_action_the_services_write_is_in_the_catalog():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    written = set()
    for app in ("access", "mail", "orgs", "people", "policies", "tokens", "webhooks"):
        for module in (root / app).rglob("*.py"):
            if "migrations" not in module.parts:
                written |= set(re.findall(r'"([a-z_]+\.[a-z_]+)"', module.read_text()))
    # Django's own permission names (tokens.delete_apitoken) and the test event are not actions.
    django_permission = re.compile(r"^[a-z_]+\.(add|change|delete|view)_[a-z]+$")
    actions = {
        name
        for name in written
        if name.split(".")[0] in events.KINDS
        and not django_permission.match(name)
        and name != events.TEST_EVENT
    }
    assert actions - set(events.CATALOG) == set()

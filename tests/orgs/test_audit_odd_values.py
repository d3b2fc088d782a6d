"""Audit events keep odd text exactly, whichever way they are written (one event with its
endpoints read in the same statement, or many over arrays), and queue their deliveries."""

import pytest

from orgs import audit
from orgs.models import AuditEvent
from orgs.principals import Principal
from tests.factories import issue
from webhooks import services
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db

ODD = [
    "q\"uo'te",
    "{a,b}",
    "NULL",
    "back\\slash",
    "ü 日本 🎉",
    "line\u2028sep",
    "",
    " ",
    "\\N",
    "(1,2)",
    "a\tb\nc",
]


def _actor(org_admin, world, name="Auditor"):
    token = issue(org_admin, name=name).token
    principal = Principal(
        user=token.user, organization=world.acme, token=token, address="2001:db8::7"
    )
    return token, audit.Actor.of(principal)


@pytest.mark.parametrize("with_endpoint", [False, True])
def test_many_events_keep_odd_text_exactly(org_admin, world, with_endpoint):
    endpoint = None
    if with_endpoint:
        endpoint = services.create_endpoint(
            actor=org_admin,
            organization=world.acme,
            url="https://siem.example.com/in",
            events=["token.policy_applied"],
        ).endpoint
    token, actor = _actor(org_admin, world, name='Odd "actor" {x}')
    entries = [
        audit.Entry(
            action="token.policy_applied",
            object_type="api_token",
            object_id=index,
            object_repr=text,
            group_id=world.platform.pk if index % 2 else None,
            changes={text: {"before": text, "after": [text, None, 1.5, True]}},
        )
        for index, text in enumerate(ODD)
    ]
    WebhookDelivery.objects.all().delete()
    assert audit.record_many(actor=actor, organization=world.acme, entries=entries) == len(ODD)
    events = list(AuditEvent.objects.filter(action="token.policy_applied").order_by("object_id"))
    events.sort(key=lambda e: int(e.object_id))
    assert len(events) == len(ODD)
    for index, (text, event) in enumerate(zip(ODD, events, strict=True)):
        assert event.object_repr == text
        assert event.changes == {text: {"before": text, "after": [text, None, 1.5, True]}}
        assert event.group_id == (world.platform.pk if index % 2 else None)
        assert event.actor_id == token.user_id
        assert event.via_token_id == token.pk
        assert event.via_token_name == 'Odd "actor" {x}'
        assert event.via_token_partial == token.partial_token
        assert event.address == "2001:db8::7"
        assert event.organization_id == world.acme.pk
    if endpoint is not None:
        assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == len(ODD)


def test_one_event_keeps_odd_text_and_queues_for_subscribed_endpoints(
    org_admin, world, other_org_admin
):
    subscribed = services.create_endpoint(
        actor=org_admin,
        organization=world.acme,
        url="https://a.example.com/",
        events=["token.described"],
    ).endpoint
    services.create_endpoint(
        actor=org_admin,
        organization=world.acme,
        url="https://b.example.com/",
        events=["ip_filter.*"],
    )
    other = services.create_endpoint(
        actor=other_org_admin,
        organization=world.globex,
        url="https://c.example.com/",
        events=["*"],
    ).endpoint
    WebhookDelivery.objects.all().delete()
    token, actor = _actor(org_admin, world)
    principal = Principal(
        user=token.user, organization=world.acme, token=token, address="192.0.2.9"
    )
    for text in ODD:
        event = audit.record(
            actor=principal,
            action="token.described",
            organization=world.acme,
            object_type="thing",
            object_id=text[:40],
            object_repr=text,
            changes={"name": {"before": text, "after": text + "!"}},
        )
        stored = AuditEvent.objects.get(pk=event.pk)
        assert stored.object_repr == text and stored.object_id == text[:40]
        assert stored.changes == {"name": {"before": text, "after": text + "!"}}
        assert stored.via_token_id == token.pk and stored.address == "192.0.2.9"
    assert WebhookDelivery.objects.filter(endpoint=subscribed).count() == len(ODD)
    assert WebhookDelivery.objects.filter(endpoint=other).count() == 0
    assert WebhookDelivery.objects.filter(event_type="token.described").count() == len(ODD)

"""Endpoint services: the secret shown once and stored encrypted, field errors naming the field,
versions, the permission and visibility rules, and an audit event for every change."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from access import rules
from access.errors import Forbidden, NotFound, VersionConflict
from orgs.models import AuditEvent
from tests.factories import issue
from tests.webhooks.test_addresses import REFUSED
from webhooks import services, signing
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

URL = "https://siem.example.com/keyward"


def create(actor, **fields):
    return services.create_endpoint(
        actor=actor,
        organization=actor.organization,
        url=fields.pop("url", URL),
        events=fields.pop("events", ["*"]),
        **fields,
    )


def field_errors(raised):
    return raised.value.message_dict


def test_creating_answers_a_signing_secret_in_the_standard_format_stored_only_encrypted(
    org_admin,
):
    issued = create(org_admin, description="SIEM")
    assert issued.secret.startswith("whsec_")
    assert len(Webhook(issued.secret)._whsecret) == 32
    stored = WebhookEndpoint.objects.get(pk=issued.endpoint.pk)
    assert issued.secret not in stored.secret_ciphertext
    assert issued.secret.removeprefix("whsec_") not in str(
        WebhookEndpoint.objects.filter(pk=stored.pk).values().get()
    )
    assert signing.decrypt(stored.secret_ciphertext) == issued.secret
    assert stored.secret_partial == f"whsec_…{issued.secret.rstrip('=')[-4:]}"
    assert "secret" not in repr(issued)


def test_each_endpoint_gets_its_own_secret(org_admin):
    assert create(org_admin).secret != create(org_admin).secret


@pytest.mark.parametrize("address", sorted(REFUSED))
def test_registration_refuses_every_non_public_address_on_the_url_field(org_admin, dns, address):
    dns["internal.example.com"] = [address]
    with pytest.raises(ValidationError) as raised:
        create(org_admin, url="https://internal.example.com/hook")
    assert REFUSED[address] in field_errors(raised)["url"][0]
    assert not WebhookEndpoint.objects.exists()


def test_registration_refuses_a_literal_private_address(org_admin):
    with pytest.raises(ValidationError) as raised:
        create(org_admin, url="https://10.0.0.5/hook")
    assert "10.0.0.5 is a private address" in field_errors(raised)["url"][0]


def test_production_refuses_plain_http_but_an_allowed_host_may_use_it(org_admin, settings, dns):
    settings.KEYWARD_WEBHOOK_HTTPS_ONLY = True
    dns["siem.internal"] = ["10.1.2.3"]
    with pytest.raises(ValidationError) as raised:
        create(org_admin, url="http://siem.example.com/")
    assert "https" in field_errors(raised)["url"][0]
    settings.KEYWARD_WEBHOOK_ALLOWED_HOSTS = ["siem.internal"]
    # An allowed host may even be on a private network: the operator said so.
    assert create(org_admin, url="http://siem.internal:8080/in").endpoint.pk


def test_every_bad_field_is_named_at_once_and_nothing_is_created(org_admin):
    with pytest.raises(ValidationError) as raised:
        create(
            org_admin,
            url="ftp://x",
            events=["token.nope", "token.*"],
            description="x" * 301,
        )
    assert set(field_errors(raised)) == {"url", "events", "description"}
    assert "token.nope" in field_errors(raised)["events"][0]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("events", [[], "token.created", [""], [5]])
def test_events_must_be_a_list_of_event_types(org_admin, events):
    with pytest.raises(ValidationError) as raised:
        create(org_admin, events=events)
    assert "events" in field_errors(raised)


def test_events_are_kept_sorted_without_repeats_and_star_covers_the_rest(org_admin):
    assert create(
        org_admin, events=["token.revoked", "ip_filter.*", "token.revoked"]
    ).endpoint.events == [
        "ip_filter.*",
        "token.revoked",
    ]
    assert create(org_admin, events=["token.*", "*"]).endpoint.events == ["*"]


def test_an_organization_has_at_most_twenty_endpoints(org_admin, monkeypatch):
    monkeypatch.setattr(services, "MAX_ENDPOINTS", 2)
    create(org_admin)
    create(org_admin)
    with pytest.raises(ValidationError) as raised:
        create(org_admin)
    assert "at most 2" in field_errors(raised)["__all__"][0]


def test_people_without_the_permission_are_refused(member, group_admin, org_admin):
    for actor in (member, group_admin):
        with pytest.raises(Forbidden):
            create(actor)
    endpoint = create(org_admin).endpoint
    # Endpoints carry the organization's audit events: below organization-wide reach they do
    # not exist.
    with pytest.raises(NotFound):
        services.update_endpoint(actor=member, endpoint=endpoint, description="x")
    with pytest.raises(NotFound):
        services.delete_endpoint(actor=group_admin, endpoint=endpoint)


def test_a_read_only_token_may_not_change_endpoints(org_admin, world):
    from orgs.principals import Principal

    reader = issue(org_admin, role="custom", permissions=["api.webhooks.read"]).token
    principal = Principal(user=reader.user, organization=world.acme, token=reader)
    assert rules.may_manage_webhooks(principal, "read")
    assert not rules.may_manage_webhooks(principal, "write")
    with pytest.raises(Forbidden):
        create(principal)


def test_another_organizations_endpoint_does_not_exist_for_its_admin(org_admin, other_org_admin):
    endpoint = create(org_admin).endpoint
    for change in (
        lambda: services.update_endpoint(actor=other_org_admin, endpoint=endpoint, active=False),
        lambda: services.rotate_secret(actor=other_org_admin, endpoint=endpoint),
        lambda: services.delete_endpoint(actor=other_org_admin, endpoint=endpoint),
        lambda: services.send_test_event(actor=other_org_admin, endpoint=endpoint),
    ):
        with pytest.raises(NotFound):
            change()
    with pytest.raises(NotFound):
        services.create_endpoint(
            actor=other_org_admin, organization=org_admin.organization, url=URL, events=["*"]
        )


def test_an_update_needs_the_current_version_and_changes_only_what_is_given(org_admin):
    endpoint = create(org_admin, description="SIEM", events=["token.*"]).endpoint
    updated = services.update_endpoint(
        actor=org_admin, endpoint=endpoint, expected_version=1, description="SIEM prod"
    )
    assert updated.version == 2 and updated.events == ["token.*"] and updated.url == URL
    with pytest.raises(VersionConflict) as conflict:
        services.update_endpoint(
            actor=org_admin, endpoint=endpoint, expected_version=1, description="stale"
        )
    assert conflict.value.current_version == 2
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).description == "SIEM prod"


def test_an_update_that_changes_nothing_keeps_the_version_and_writes_no_event(org_admin):
    endpoint = create(org_admin, description="SIEM").endpoint
    before = AuditEvent.objects.count()
    same = services.update_endpoint(actor=org_admin, endpoint=endpoint, description="SIEM")
    assert same.version == 1 and AuditEvent.objects.count() == before


def test_every_change_of_an_endpoint_is_an_audit_event_without_its_secret_or_path(org_admin):
    issued = create(org_admin, url="https://hooks.example.com/services/T0/B0/XyZ?token=abc")
    endpoint = issued.endpoint
    services.update_endpoint(actor=org_admin, endpoint=endpoint, events=["token.*"])
    services.update_endpoint(
        actor=org_admin, endpoint=endpoint, url="https://hooks.example.com/services/T0/B0/New"
    )
    rotated = services.rotate_secret(actor=org_admin, endpoint=endpoint, overlap=timedelta(0))
    services.send_test_event(actor=org_admin, endpoint=endpoint)
    services.delete_endpoint(actor=org_admin, endpoint=endpoint)
    events = AuditEvent.objects.filter(object_type="webhook_endpoint").order_by("id")
    assert [event.action for event in events] == [
        "webhook.created",
        "webhook.updated",
        "webhook.updated",
        "webhook.secret_rotated",
        "webhook.deleted",
    ]
    assert all(event.object_id == str(endpoint.pk) for event in events)
    assert events[0].changes["url"] == {"before": None, "after": "https://hooks.example.com/…"}
    assert "(changed)" in events[2].changes["url"]["after"]
    assert events[3].changes["secret_hint"]["after"] == rotated.endpoint.secret_partial
    text = str([(event.changes, event.object_repr) for event in events])
    for secret in (issued.secret, rotated.secret):
        assert secret.removeprefix("whsec_") not in text
    assert "XyZ" not in text and "token=abc" not in text and "New" not in text


def test_rotating_keeps_the_old_secret_signing_for_the_overlap_only(org_admin):
    issued = create(org_admin)
    now = timezone.now()
    rotated = services.rotate_secret(
        actor=org_admin, endpoint=issued.endpoint, overlap=timedelta(hours=24), now=now
    )
    endpoint = WebhookEndpoint.objects.get(pk=issued.endpoint.pk)
    assert services.secrets_in_use(endpoint, now) == [rotated.secret, issued.secret]
    assert services.secrets_in_use(endpoint, now + timedelta(hours=25)) == [rotated.secret]
    immediate = services.rotate_secret(actor=org_admin, endpoint=endpoint, overlap=timedelta(0))
    endpoint.refresh_from_db()
    assert services.secrets_in_use(endpoint, timezone.now()) == [immediate.secret]


@pytest.mark.parametrize("overlap", [timedelta(seconds=-1), timedelta(days=8)])
def test_an_overlap_is_between_zero_and_seven_days(org_admin, overlap):
    endpoint = create(org_admin).endpoint
    with pytest.raises(ValidationError) as raised:
        services.rotate_secret(actor=org_admin, endpoint=endpoint, overlap=overlap)
    assert "overlap" in field_errors(raised)


def test_turning_an_endpoint_on_again_forgets_its_failures(org_admin):
    endpoint = create(org_admin).endpoint
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        failing_since=timezone.now() - timedelta(hours=30)
    )
    assert services.deactivate_if_failing(endpoint_id=endpoint.pk, now=timezone.now())
    turned_on = services.update_endpoint(actor=org_admin, endpoint=endpoint, active=True)
    assert turned_on.active and turned_on.failing_since is None and not turned_on.deactivated_at


def test_a_test_event_or_redelivery_needs_an_active_endpoint(org_admin):
    endpoint = create(org_admin, active=False).endpoint
    with pytest.raises(ValidationError) as raised:
        services.send_test_event(actor=org_admin, endpoint=endpoint)
    assert "active" in field_errors(raised)


def test_a_queued_delivery_cannot_be_redelivered(org_admin):
    endpoint = create(org_admin).endpoint
    test = services.send_test_event(actor=org_admin, endpoint=endpoint)
    with pytest.raises(ValidationError) as raised:
        services.redeliver(actor=org_admin, delivery=test)
    assert "still queued" in field_errors(raised)["delivery"][0]


@pytest.mark.parametrize("field", ["url", "description"])
def test_a_token_in_an_endpoint_s_url_or_description_is_refused_and_treated_as_leaked(
    org_admin, field
):
    from tests.factories import issue
    from tokens.models import ApiToken

    pasted = issue(org_admin, name="Pasted into an endpoint")
    values = {
        "url": f"{URL}?key={pasted.secret}" if field == "url" else URL,
        "description": pasted.secret if field == "description" else "SIEM",
    }
    with pytest.raises(ValidationError) as raised:
        create(org_admin, **values)
    assert "API token" in field_errors(raised)[field][0]
    assert pasted.secret not in str(raised.value)
    assert not WebhookEndpoint.objects.exists()
    assert ApiToken.objects.get(pk=pasted.token.pk).leaked_at is not None

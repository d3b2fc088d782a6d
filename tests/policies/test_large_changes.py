"""A policy change over many tokens: counted in the preview, applied in batches after the policy
commits, enforced at authentication before every token is rewritten, finished after a crash
without doing anything twice."""

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from orgs import audit
from orgs.models import AuditEvent
from policies.models import PolicyApplication, SecurityPolicy
from policies.services import (
    ImpactChanged,
    create_ip_filter,
    finish_unfinished,
    preview_policy_change,
    update_security_policy,
)
from policies.services import apply as policy_apply
from tests.factories import bulk_tokens, issue
from tokens.models import ApiToken
from webhooks import services as webhook_services
from webhooks.models import WebhookDelivery

pytestmark = pytest.mark.django_db
ME = "/api/v1/me"


def me(client, secret, address="10.1.2.3"):
    return client.get(ME, HTTP_AUTHORIZATION=f"Bearer {secret}", REMOTE_ADDR=address)


def corporate(actor):
    return create_ip_filter(
        actor=actor,
        organization=actor.organization,
        name="Corporate",
        rules_text="allow 10.0.0.0/8\ndeny all",
    )


class Killed(Exception):
    """The worker applying the change dies here."""


@pytest.fixture
def crash_on_batch(monkeypatch):
    """Make the apply die while writing the audit events of its ``n``-th batch, that is after
    the batch's tokens were updated and before it committed."""

    def arm(n):
        calls = {"count": 0}
        real = audit.record_many

        def record_many(**kwargs):
            calls["count"] += 1
            if calls["count"] == n:
                raise Killed
            return real(**kwargs)

        monkeypatch.setattr(audit, "record_many", record_many)

    return arm


# Preview ------------------------------------------------------------------------------------


def test_the_preview_counts_every_token_and_lists_the_first_hundred(world, org_admin):
    bulk_tokens(world.acme, 150, with_secrets=False)
    office = corporate(org_admin)
    impact = preview_policy_change(
        actor=org_admin,
        organization=world.acme,
        changes={"organization": {"enforced_ip_filter": office.pk}},
    )
    enforced = impact.kind("ip_filter_enforced")
    assert enforced.count == 150 and len(enforced.shown) == 100 and enforced.more == 50
    assert impact.touched_count == 150
    names = [change.token.name for change in enforced.shown]
    assert names == sorted(names)
    assert impact.summary() == ["150 tokens would get the enforced IP filter"]
    assert impact.counts == {"ip_filter_enforced": 150}


def test_the_fingerprint_changes_when_a_touched_token_is_replaced_by_another(world, org_admin):
    ids = bulk_tokens(world.acme, 5, with_secrets=False)
    changes = {"organization": {"max_lifetime": "30d"}}
    preview = preview_policy_change(actor=org_admin, organization=world.acme, changes=changes)
    ApiToken.objects.filter(pk=ids[0]).delete()
    bulk_tokens(world.acme, 1, with_secrets=False)
    assert (
        preview_policy_change(actor=org_admin, organization=world.acme, changes=changes)
        .kind("expiry_shortened")
        .count
        == 5
    )
    with pytest.raises(ImpactChanged):
        update_security_policy(
            actor=org_admin,
            organization=world.acme,
            changes=changes,
            expected_impact=preview.fingerprint(),
        )


# Apply in batches -----------------------------------------------------------------------------


def test_every_token_is_rewritten_and_audited_once_across_batches(world, org_admin, monkeypatch):
    monkeypatch.setattr(policy_apply, "BATCH_SIZE", 7)
    ids = bulk_tokens(world.acme, 30, with_secrets=False)
    office = corporate(org_admin)
    applied = update_security_policy(
        actor=org_admin,
        organization=world.acme,
        changes={"organization": {"enforced_ip_filter": office.pk}},
    )
    assert applied.progress.tokens_changed == 30 and applied.progress.batches == 5
    assert applied.summary(applied=True) == ["30 tokens got the enforced IP filter"]
    tokens = ApiToken.objects.filter(pk__in=ids)
    assert {(t.ip_filter_id, t.ip_filter_from_policy, t.version) for t in tokens} == {
        (office.pk, True, 2)
    }
    events = AuditEvent.objects.filter(action="token.policy_applied")
    assert sorted(int(event.object_id) for event in events) == sorted(ids)
    event = events.get(object_id=str(ids[0]))
    assert event.changes == {"ip_filter": {"before": None, "after": "Corporate"}}
    assert event.actor_name == org_admin.name and event.organization_id == world.acme.pk
    application = PolicyApplication.objects.get()
    assert application.finished_at is not None and application.tokens_changed == 30


def test_webhook_endpoints_get_one_delivery_per_token_event(world, org_admin, monkeypatch):
    monkeypatch.setattr(policy_apply, "BATCH_SIZE", 4)
    webhook_services.create_endpoint(
        actor=org_admin,
        organization=world.acme,
        url="https://siem.example.com/in",
        events=["token.*"],
    )
    ids = bulk_tokens(world.acme, 10, with_secrets=False)
    update_security_policy(
        actor=org_admin, organization=world.acme, changes={"organization": {"allowed": False}}
    )
    revoked = AuditEvent.objects.filter(action="token.revoked")
    assert sorted(int(event.object_id) for event in revoked) == sorted(ids)
    assert set(
        WebhookDelivery.objects.filter(event_type="token.revoked").values_list(
            "audit_event_id", flat=True
        )
    ) == {event.pk for event in revoked}


# No window ----------------------------------------------------------------------------------


def test_an_enforced_filter_refuses_tokens_not_yet_rewritten(
    client, world, org_admin, monkeypatch, crash_on_batch
):
    monkeypatch.setattr(policy_apply, "BATCH_SIZE", 1)
    first = issue(org_admin, name="first", expires_at=None)
    second = issue(org_admin, name="second", expires_at=None)
    assert me(client, second.secret, "192.0.2.7").status_code == 200
    office = corporate(org_admin)
    crash_on_batch(2)
    with pytest.raises(Killed):
        update_security_policy(
            actor=org_admin,
            organization=world.acme,
            changes={"organization": {"enforced_ip_filter": office.pk}},
        )
    assert ApiToken.objects.get(pk=first.token.pk).ip_filter_id == office.pk
    assert ApiToken.objects.get(pk=second.token.pk).ip_filter_id is None  # not yet rewritten
    assert me(client, second.secret, "192.0.2.7").status_code == 403
    assert me(client, first.secret, "192.0.2.7").status_code == 403
    assert me(client, first.secret, "10.1.2.3").status_code == 200


def test_a_shorter_maximum_lifetime_refuses_tokens_not_yet_rewritten(
    client, world, org_admin, monkeypatch, crash_on_batch
):
    monkeypatch.setattr(policy_apply, "BATCH_SIZE", 1)
    issue(org_admin, name="first", expires_at=None)
    waiting = issue(org_admin, name="second", expires_at=None)
    crash_on_batch(2)
    with pytest.raises(Killed):
        update_security_policy(
            actor=org_admin,
            organization=world.acme,
            changes={"organization": {"max_lifetime": "1d"}},
        )
    assert ApiToken.objects.get(pk=waiting.token.pk).expires_at is None  # not yet rewritten
    assert me(client, waiting.secret).status_code == 200  # within the new day
    with time_machine.travel(timezone.now() + timedelta(days=1, minutes=1)):
        assert me(client, waiting.secret).status_code == 401
        # A token created after the change has its own day.
        fresh = issue(org_admin, name="fresh")
        assert me(client, fresh.secret).status_code == 200


def test_a_disallowed_kind_refuses_tokens_not_yet_revoked(
    client, world, org_admin, monkeypatch, crash_on_batch
):
    monkeypatch.setattr(policy_apply, "BATCH_SIZE", 1)
    issue(org_admin, name="first", expires_at=None)
    waiting = issue(org_admin, name="second", expires_at=None)
    crash_on_batch(2)
    with pytest.raises(Killed):
        update_security_policy(
            actor=org_admin, organization=world.acme, changes={"organization": {"allowed": False}}
        )
    assert ApiToken.objects.get(pk=waiting.token.pk).status == "active"  # not yet revoked
    assert me(client, waiting.secret).status_code == 401


# Resume -------------------------------------------------------------------------------------


def test_a_killed_apply_is_finished_later_without_doing_anything_twice(
    world, org_admin, monkeypatch, crash_on_batch
):
    monkeypatch.setattr(policy_apply, "BATCH_SIZE", 2)
    ids = bulk_tokens(world.acme, 7, with_secrets=False)
    office = corporate(org_admin)
    crash_on_batch(3)
    with pytest.raises(Killed):
        update_security_policy(
            actor=org_admin,
            organization=world.acme,
            changes={
                "organization": {
                    "enforced_ip_filter": office.pk,
                    "max_lifetime": "30d",
                }
            },
        )
    # Two batches committed; the third died with its updates.
    rewritten = set(
        ApiToken.objects.filter(pk__in=ids, ip_filter=office).values_list("pk", flat=True)
    )
    assert len(rewritten) == 4
    assert SecurityPolicy.objects.get(organization=world.acme).version == 2
    application = PolicyApplication.objects.get()
    assert application.finished_at is None and application.tokens_changed == 4

    monkeypatch.undo()  # the next run lives
    monkeypatch.setattr(policy_apply, "BATCH_SIZE", 2)
    call_command("finish_policy_changes", stdout=__import__("io").StringIO())
    tokens = ApiToken.objects.filter(pk__in=ids)
    assert {(t.ip_filter_id, t.version) for t in tokens} == {(office.pk, 2)}
    latest = application.started_at + timedelta(days=30)
    assert {t.expires_at for t in tokens} == {latest}
    events = AuditEvent.objects.filter(action="token.policy_applied")
    assert sorted(int(event.object_id) for event in events) == sorted(ids)
    assert all(set(event.changes) == {"expires_at", "ip_filter"} for event in events)
    application.refresh_from_db()
    assert application.finished_at is not None and application.tokens_changed == 7
    # Running again finds nothing to do.
    assert finish_unfinished() == 0
    assert AuditEvent.objects.filter(action="token.policy_applied").count() == 7


def test_a_later_change_supersedes_an_unfinished_one(world, org_admin, monkeypatch, crash_on_batch):
    monkeypatch.setattr(policy_apply, "BATCH_SIZE", 2)
    ids = bulk_tokens(world.acme, 5, with_secrets=False)
    office = corporate(org_admin)
    crash_on_batch(2)
    with pytest.raises(Killed):
        update_security_policy(
            actor=org_admin,
            organization=world.acme,
            changes={"organization": {"enforced_ip_filter": office.pk}},
        )
    monkeypatch.undo()
    # The filter is no longer enforced: the two tokens that got it lose it, the others never
    # get it.
    impact = update_security_policy(
        actor=org_admin,
        organization=world.acme,
        changes={"organization": {"enforced_ip_filter": None}},
    )
    assert impact.kind("ip_filter_released").count == 2
    assert not ApiToken.objects.filter(pk__in=ids, ip_filter__isnull=False).exists()
    first, second = PolicyApplication.objects.order_by("pk")
    assert first.superseded and second.finished_at is not None and not second.superseded
    assert finish_unfinished() == 0

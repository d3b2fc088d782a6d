from datetime import timedelta

import pytest
from django.utils import timezone

from orgs.models import AuditEvent
from policies.models import IpFilter
from tests.factories import HTMX, issue
from tokens.models import TokenSecret, TokenUsage
from tokens.services import regenerate_token, revoke_token

pytestmark = pytest.mark.django_db


def test_the_detail_shows_the_summary(as_alice, org_admin):
    token = issue(org_admin, name="CI deploy", role="admin", expires_in=timedelta(days=90)).token
    content = as_alice.get(f"/o/acme/tokens/{token.pk}/").content.decode()
    assert "<h1" in content and "CI deploy" in content
    assert token.partial_token in content
    assert token.user.username in content  # the technical user
    assert "Technical user" in content
    assert "by Alice" in content or "by alice" in content
    assert "<strong>90 days</strong> after creation: in 90 days" in content
    assert 'badge-active">Active<' in content


def test_every_permission_of_the_scope_is_ticked_or_crossed(as_alice, org_admin):
    token = issue(
        org_admin, name="Reader", role="custom", permissions=["api.api-tokens.read"]
    ).token
    content = as_alice.get(f"/o/acme/tokens/{token.pk}/").content.decode()
    granted = content.split("Granted:</span>")
    assert len(granted) == 2
    assert content.count("Not granted:</span>") == 20  # the catalog of organization scope, less one
    assert "api.security-policies.write" in content


def test_a_group_token_lists_only_group_permissions(as_alice, org_admin, world):
    token = issue(org_admin, name="G", scope="group", group=world.platform).token
    content = as_alice.get(f"/o/acme/tokens/{token.pk}/").content.decode()
    assert "api.organizations.write" not in content
    assert "Platform" in content


def test_ip_filter_and_allowed_addresses_are_shown(as_alice, org_admin, world):
    office = IpFilter.objects.create(
        organization=world.acme, name="Office", rules_text="allow 10.0.0.0/8"
    )
    token = issue(
        org_admin, name="Net", ip_filter=office, allowed_addresses=("203.0.113.0/24",)
    ).token
    content = as_alice.get(f"/o/acme/tokens/{token.pk}/").content.decode()
    assert "Office" in content and "allow 10.0.0.0/8" in content
    assert "203.0.113.0/24" in content


def test_last_use_and_the_usage_chart_are_shown(as_alice, org_admin):
    token = issue(org_admin, name="Busy").token
    today = timezone.now().date()
    TokenUsage.objects.create(token=token, day=today, count=40)
    TokenUsage.objects.create(token=token, day=today - timedelta(days=3), count=10)
    TokenUsage.objects.create(token=token, day=today - timedelta(days=45), count=999)
    token.last_used_at = timezone.now() - timedelta(minutes=2)
    token.last_used_address = "198.51.100.4"
    token.save()
    content = as_alice.get(f"/o/acme/tokens/{token.pk}/").content.decode()
    assert '<svg class="usage-chart"' in content
    assert "<strong>50</strong> requests" in content
    assert "peak 40 a day" in content
    assert content.count('<rect class="bar') == 30
    assert "2 min ago" in content and "198.51.100.4" in content


def test_the_chart_and_the_grace_banner_count_requests_still_buffered(as_alice, org_admin):
    issued = issue(org_admin, name="Buffered")
    old_secret = issued.secret
    for _ in range(2):
        response = as_alice.get("/api/v1/me", headers={"Authorization": f"Bearer {old_secret}"})
        assert response.status_code == 200
    regenerate_token(actor=org_admin, token=issued.token, grace=timedelta(days=1))
    # The old secret, now in its grace period, is used again: buffered, not yet written.
    bearer = {"Authorization": f"Bearer {old_secret}"}
    assert as_alice.get("/api/v1/me", headers=bearer, REMOTE_ADDR="192.0.2.9").status_code == 200
    content = as_alice.get(f"/o/acme/tokens/{issued.token.pk}/").content.decode()
    assert "<strong>3</strong> requests" in content
    assert "192.0.2.9" in content


def test_recent_audit_events_of_the_token_are_listed(as_alice, org_admin):
    token = issue(org_admin, name="Audited").token
    revoke_token(actor=org_admin, token=token, reason="rotation")
    content = as_alice.get(f"/o/acme/tokens/{token.pk}/").content.decode()
    assert "Recent activity" in content
    assert ">Revoked <small" in content or ">Revoked" in content
    assert "Created" in content
    assert AuditEvent.objects.for_token(token.pk).count() == 2


def test_a_revoked_token_shows_who_revoked_it_and_why(as_alice, org_admin):
    token = issue(org_admin, name="Old").token
    revoke_token(actor=org_admin, token=token, reason="Replaced by CI deploy")
    content = as_alice.get(f"/o/acme/tokens/{token.pk}/").content.decode()
    assert "Replaced by CI deploy" in content
    assert "Restore" in content and ">Revoke<" not in content


def test_a_running_grace_period_shows_until_when_and_the_old_last_use(as_alice, org_admin):
    token = issue(org_admin, name="Rolling").token
    old_partial = token.partial_token
    regenerate_token(actor=org_admin, token=token, grace=timedelta(days=1))
    old = TokenSecret.objects.get(token=token, ends_at__isnull=False)
    old.last_used_at = timezone.now() - timedelta(minutes=5)
    old.last_used_address = "192.0.2.1"
    old.save()
    content = as_alice.get(f"/o/acme/tokens/{token.pk}/").content.decode()
    assert f"The previous token <code>{old_partial}</code> still works" in content
    assert "it stops in 1 day" in content
    assert "5 min ago" in content and "192.0.2.1" in content


def test_an_htmx_refresh_returns_only_the_detail_fragment(as_alice, org_admin):
    token = issue(org_admin, name="Frag").token
    content = as_alice.get(f"/o/acme/tokens/{token.pk}/", **HTMX).content.decode()
    assert "<html" not in content
    assert content.strip().startswith('<div id="token-detail"')


def test_another_organizations_token_is_a_404(client, world, other_org_admin):
    token = issue(other_org_admin, name="Globex backup").token
    client.force_login(world.alice)
    response = client.get(f"/o/acme/tokens/{token.pk}/")
    assert response.status_code == 404
    assert b"Nothing here" in response.content
    assert client.get(f"/o/globex/tokens/{token.pk}/").status_code == 404


def test_a_member_cannot_see_an_organization_token(as_carol, org_admin):
    token = issue(org_admin, name="Secret ops").token
    assert as_carol.get(f"/o/acme/tokens/{token.pk}/").status_code == 404
    assert as_carol.get(f"/o/acme/tokens/{token.pk}/revoke/").status_code == 404


def test_a_group_admin_sees_their_group_tokens_but_not_others(as_bob, org_admin, world):
    mine = issue(org_admin, name="Mine", scope="group", group=world.platform).token
    theirs = issue(org_admin, name="Theirs", scope="group", group=world.data).token
    assert as_bob.get(f"/o/acme/tokens/{mine.pk}/").status_code == 200
    assert as_bob.get(f"/o/acme/tokens/{theirs.pk}/").status_code == 404


@pytest.mark.usefixtures("permission_edits_allowed")
def test_actions_are_offered_by_right_and_state(as_carol, member, org_admin):
    own = issue(member, name="Mine", scope="personal", role="member").token
    content = as_carol.get(f"/o/acme/tokens/{own.pk}/").content.decode()
    for label in ("Edit permissions", "Regenerate", "Revoke", "Delete"):
        assert f">{label}</a>" in content
    assert "Owner" in content


def test_a_personal_permission_the_owner_no_longer_holds_is_flagged(client, world, org_admin):
    from tests.factories import add_member

    token = issue(
        org_admin,
        name="Laptop",
        scope="personal",
        role="custom",
        permissions=["api.audit-events.read"],
    ).token
    add_member(world.acme, world.bob, role="admin")
    add_member(world.acme, world.alice, role="member")
    client.force_login(world.bob)
    content = client.get(f"/o/acme/tokens/{token.pk}/").content.decode()
    assert "does not hold api.audit-events.read" in content
    assert "Owner" in content


def test_the_server_error_page_renders_without_a_request(db):
    from django.template.loader import render_to_string

    content = render_to_string("500.html")
    assert "Something went wrong on our side" in content

"""The security policy's "Revoke tokens unused for": validated, previewed, applied daily by
cleanup_tokens with the reason "Unused for N days", audited; never-used counts from creation."""

import io
import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import timezone

from orgs.models import AuditEvent
from policies.models import SecurityPolicy
from policies.services import preview_policy_change, update_security_policy
from tests.factories import issue
from tokens.models import ApiToken

pytestmark = pytest.mark.django_db


def days_ago(days):
    return timezone.now() - timedelta(days=days)


@pytest.fixture
def tokens(org_admin):
    """Organization tokens: used 100 days ago, used 10 days ago, never used but created 100
    days ago, never used and new; and a group token used 100 days ago (another scope)."""
    made = {}
    for name, last_used, created in (
        ("stale", days_ago(100), days_ago(200)),
        ("recent", days_ago(10), days_ago(200)),
        ("never old", None, days_ago(100)),
        ("never new", None, days_ago(1)),
    ):
        token = issue(org_admin, name=name, expires_at=None).token
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=last_used, created_at=created)
        made[name] = token
    group = issue(
        org_admin,
        name="group stale",
        scope="group",
        group=org_admin.organization.groups.get(slug="platform"),
    ).token
    ApiToken.objects.filter(pk=group.pk).update(last_used_at=days_ago(100))
    made["group stale"] = group
    return made


def set_days(org_admin, scope, days):
    return update_security_policy(
        actor=org_admin,
        organization=org_admin.organization,
        changes={scope: {"revoke_unused_days": days}},
    )


def status(token):
    return ApiToken.objects.get(pk=token.pk).status


def cleanup(*args):
    out = io.StringIO()
    call_command("cleanup_tokens", "--json", *args, stdout=out, stderr=io.StringIO())
    return json.loads(out.getvalue().splitlines()[-1])


@pytest.mark.parametrize("value", [6, 366, -1, "abc", "12h", True, 7.5, [7]])
def test_the_setting_is_off_or_seven_to_365_days(org_admin, value):
    with pytest.raises(ValidationError) as raised:
        set_days(org_admin, "organization", value)
    assert "organization.revoke_unused_days" in raised.value.message_dict


@pytest.mark.parametrize(
    ("value", "stored"),
    [(7, 7), (365, 365), ("90", 90), ("90d", 90), (0, None), ("0", None), ("Off", None)],
)
def test_accepted_values(org_admin, value, stored):
    set_days(org_admin, "organization", value)
    policy = SecurityPolicy.objects.get(organization=org_admin.organization)
    assert policy.organization_tokens.revoke_unused_days == stored


def test_the_preview_counts_what_the_next_cleanup_would_revoke(org_admin, tokens):
    impact = preview_policy_change(
        actor=org_admin,
        organization=org_admin.organization,
        changes={"organization": {"revoke_unused_days": 90}},
    )
    assert {change.token.name for change in impact.unused_revoked} == {"stale", "never old"}
    assert "2 tokens would be revoked as unused by the next daily cleanup" in impact.summary()
    assert [change.after_text for change in impact.setting_changes] == ["90 days"]
    assert all(status(token) == "active" for token in tokens.values())


def test_saving_changes_no_token_and_is_audited(org_admin, tokens):
    set_days(org_admin, "organization", 90)
    assert all(status(token) == "active" for token in tokens.values())
    event = AuditEvent.objects.get(action="security_policy.changed")
    assert event.changes == {
        "organization.revoke_unused_days": {"before": "off", "after": "90 days"}
    }


def test_the_daily_cleanup_revokes_unused_tokens_of_that_scope_with_the_reason(org_admin, tokens):
    set_days(org_admin, "organization", 90)
    summary = cleanup()
    assert summary["revoked_unused"] == 2
    for name in ("stale", "never old"):
        token = ApiToken.objects.get(pk=tokens[name].pk)
        assert token.status == "revoked" and token.revoked_reason == "Unused for 90 days"
        event = AuditEvent.objects.get(action="token.revoked", object_id=str(token.pk))
        assert event.actor_name.startswith("cleanup_tokens")
    for name in ("recent", "never new", "group stale"):
        assert status(tokens[name]) == "active"
    assert cleanup()["revoked_unused"] == 0  # the next day, nothing left to do


def test_a_dry_run_lists_them_and_changes_nothing(org_admin, tokens):
    set_days(org_admin, "organization", 90)
    out = io.StringIO()
    call_command("cleanup_tokens", "--dry-run", stdout=out, stderr=io.StringIO())
    text = out.getvalue()
    assert "'stale'" in text and "'never old'" in text and "'recent'" not in text
    assert "revoke 2 unused tokens" in text
    assert status(tokens["stale"]) == "active"


def test_off_revokes_nothing(org_admin, tokens):
    set_days(org_admin, "organization", 90)
    set_days(org_admin, "organization", None)
    assert cleanup()["revoked_unused"] == 0


def test_the_api_reads_previews_and_sets_it(client, org_admin, tokens):
    secret = issue(org_admin, name="api").secret
    headers = {"Authorization": f"Bearer {secret}"}
    policy = client.get("/api/v1/security-policy", headers=headers).json()
    assert policy["organization"]["revokeUnusedDays"] is None
    preview = client.post(
        "/api/v1/security-policy/preview",
        {"organization": {"revokeUnusedDays": 90}},
        content_type="application/json",
        headers=headers,
    ).json()
    assert {change["name"] for change in preview["unusedRevoked"]} == {"stale", "never old"}
    bad = client.post(
        "/api/v1/security-policy/preview",
        {"organization": {"revokeUnusedDays": 3}},
        content_type="application/json",
        headers=headers,
    )
    assert bad.status_code == 400
    assert "organization.revokeUnusedDays" in bad.json()["error"]["fields"]
    saved = client.patch(
        "/api/v1/security-policy",
        {"version": policy["version"], "organization": {"revokeUnusedDays": 90}},
        content_type="application/json",
        headers=headers,
    )
    assert saved.status_code == 200
    again = client.get("/api/v1/security-policy", headers=headers).json()
    assert again["organization"]["revokeUnusedDays"] == 90


def test_the_console_previews_and_saves_it(client, world, org_admin, tokens):
    from tests.policies.test_views import policy_form

    client.force_login(world.alice)
    page = client.get("/o/acme/policy/").content.decode()
    assert "Revoke tokens unused for (days)" in page
    policy = SecurityPolicy.objects.get(organization=world.acme)
    data = policy_form(policy, **{"organization-revoke_unused_days": "90"})
    preview = client.post("/o/acme/policy/preview/", data).content.decode()
    assert "2 tokens would be revoked as unused by the next daily cleanup" in preview
    assert "never (created" in preview and "stale" in preview
    fingerprint = preview.split('name="expected_impact" value="')[1].split('"')[0]
    client.post("/o/acme/policy/", {**data, "expected_version": 1, "expected_impact": fingerprint})
    policy = SecurityPolicy.objects.get(organization=world.acme)
    assert policy.organization_tokens.revoke_unused_days == 90
    wrong = client.post(
        "/o/acme/policy/preview/", policy_form(policy, **{"organization-revoke_unused_days": "5"})
    ).content.decode()
    assert "from 7 to 365" in wrong

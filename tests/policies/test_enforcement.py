"""Every policy setting, enforced at creation, permission edit, regeneration and request time.

Request time goes through the whole stack: GET /api/v1/me with a bearer token from an address.
"""

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from access.errors import PolicyViolation
from policies.models import ScopePolicy, SecurityPolicy
from policies.services import create_ip_filter, update_security_policy
from tests.factories import issue
from tokens.models import ApiToken
from tokens.services import regenerate_token, update_token_permissions

pytestmark = pytest.mark.django_db
ME = "/api/v1/me"


def me(client, secret, address="198.51.100.20", **headers):
    return client.get(ME, HTTP_AUTHORIZATION=f"Bearer {secret}", REMOTE_ADDR=address, **headers)


def set_policy(actor, scope, **settings):
    return update_security_policy(
        actor=actor, organization=actor.organization, changes={scope: settings}
    )


def ip_filter(actor, name="Corporate", rules="allow 10.0.0.0/8"):
    return create_ip_filter(
        actor=actor, organization=actor.organization, name=name, rules_text=rules
    )


def issue_in(scope, world, org_admin, group_admin, member, **options):
    if scope == "organization":
        return issue(org_admin, **options)
    if scope == "group":
        return issue(group_admin, scope="group", group=world.platform, **options)
    return issue(member, scope="personal", role="member", **options)


SCOPES = ["organization", "group", "personal"]


# Allowed kinds ------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", SCOPES)
def test_a_disallowed_kind_cannot_be_created(world, org_admin, group_admin, member, scope):
    set_policy(org_admin, scope, allowed=False)
    with pytest.raises(PolicyViolation) as raised:
        issue_in(scope, world, org_admin, group_admin, member)
    assert raised.value.setting == f"{scope}.allowed"


@pytest.mark.parametrize("scope", SCOPES)
def test_a_disallowed_kind_stops_working_at_once(
    client, world, org_admin, group_admin, member, scope
):
    issued = issue_in(scope, world, org_admin, group_admin, member)
    assert me(client, issued.secret).status_code == 200
    set_policy(org_admin, scope, allowed=False)
    assert me(client, issued.secret).status_code == 401
    assert ApiToken.objects.get(pk=issued.token.pk).status == "revoked"


def test_a_token_of_a_disallowed_kind_fails_even_if_nobody_revoked_it(client, world, org_admin):
    issued = issue(org_admin)
    # A policy flipped behind the services' back (a migration, a shell) still holds.
    policy = SecurityPolicy.objects.get(organization=world.acme)
    ScopePolicy.objects.filter(pk=policy.organization_tokens_id).update(allowed=False)
    assert me(client, issued.secret).status_code == 401


def test_a_token_of_a_disallowed_kind_cannot_be_regenerated(world, org_admin):
    token = issue(org_admin).token
    policy = SecurityPolicy.objects.get(organization=world.acme)
    ScopePolicy.objects.filter(pk=policy.organization_tokens_id).update(allowed=False)
    with pytest.raises(PolicyViolation):
        regenerate_token(actor=org_admin, token=token)


# Lifetime and expiry ------------------------------------------------------------------------


def test_the_maximum_lifetime_caps_new_tokens_and_is_their_default(org_admin):
    set_policy(org_admin, "organization", max_lifetime="90d")
    with pytest.raises(ValidationError) as raised:
        issue(org_admin, expires_in=timedelta(days=91))
    assert "at most 90 days" in raised.value.message_dict["expiry"][0]
    with pytest.raises(ValidationError):
        issue(org_admin, expires_at=None)
    token = issue(org_admin).token
    assert token.expires_at - token.created_at == timedelta(days=90)


def test_an_expiry_can_be_required_without_a_maximum(org_admin):
    set_policy(org_admin, "group", expiry_required=True)
    set_policy(org_admin, "organization", expiry_required=True)
    with pytest.raises(ValidationError) as raised:
        issue(org_admin, expires_at=None)
    assert "require" in raised.value.message_dict["expiry"][0]
    assert issue(org_admin, expires_in=timedelta(days=3650)).token.expires_at is not None


def test_personal_tokens_default_to_thirty_days(member):
    token = issue(member, scope="personal", role="member").token
    assert token.expires_at - token.created_at == timedelta(days=30)


def test_a_shortened_expiry_ends_the_token_at_the_new_maximum(client, org_admin):
    issued = issue(org_admin, expires_at=None)
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        set_policy(org_admin, "organization", max_lifetime="1d")
        traveller.shift(timedelta(hours=23))
        assert me(client, issued.secret).status_code == 200
        traveller.shift(timedelta(hours=1))
        assert me(client, issued.secret).status_code == 401


def test_regenerating_never_moves_the_expiry_whatever_the_policy_allows(org_admin):
    token = issue(org_admin, expires_in=timedelta(days=300)).token
    ScopePolicy.objects.filter(scope="organization").update(max_lifetime=timedelta(days=400))
    renewed = regenerate_token(actor=org_admin, token=token, now=timezone.now() + timedelta(days=5))
    assert renewed.token.expires_at == token.expires_at


# IP filters ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", SCOPES)
def test_new_tokens_get_the_enforced_filter(world, org_admin, group_admin, member, scope):
    corporate = ip_filter(org_admin)
    set_policy(org_admin, scope, enforced_ip_filter=corporate)
    token = issue_in(scope, world, org_admin, group_admin, member).token
    assert token.ip_filter == corporate


def test_a_different_filter_is_refused_while_one_is_enforced(org_admin):
    corporate = ip_filter(org_admin)
    other = ip_filter(org_admin, name="Other", rules="allow all")
    set_policy(org_admin, "organization", enforced_ip_filter=corporate)
    with pytest.raises(ValidationError) as raised:
        issue(org_admin, ip_filter=other)
    assert "enforces the IP filter 'Corporate'" in raised.value.message_dict["ip_filter"][0]
    assert issue(org_admin, ip_filter=corporate).token.ip_filter == corporate


@pytest.mark.parametrize("scope", SCOPES)
def test_the_enforced_filter_decides_at_request_time(
    client, world, org_admin, group_admin, member, scope
):
    issued = issue_in(scope, world, org_admin, group_admin, member)
    assert me(client, issued.secret, address="203.0.113.5").status_code == 200
    set_policy(org_admin, scope, enforced_ip_filter=ip_filter(org_admin))
    response = me(client, issued.secret, address="203.0.113.5")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "address_not_allowed"
    assert me(client, issued.secret, address="10.20.30.40").status_code == 200
    assert me(client, issued.secret, address="::ffff:10.20.30.40").status_code == 200


def test_a_token_without_the_enforced_filter_is_refused(client, world, org_admin):
    issued = issue(org_admin)
    corporate = ip_filter(org_admin, rules="allow all")
    # Enforced behind the services' back, so the token was never given the filter.
    ScopePolicy.objects.filter(
        scope="organization", pk=world.acme.security_policy.organization_tokens_id
    ).update(enforced_ip_filter=corporate)
    assert me(client, issued.secret, address="10.0.0.1").status_code == 403


def test_a_filter_edit_takes_effect_on_the_next_request(client, org_admin):
    from policies.services import update_ip_filter

    office = ip_filter(org_admin, name="Office", rules="allow 10.0.0.0/8")
    issued = issue(org_admin, ip_filter=office)
    assert me(client, issued.secret, address="10.0.0.1").status_code == 200
    update_ip_filter(actor=org_admin, ip_filter=office, rules_text="deny 10.0.0.1\nallow all")
    assert me(client, issued.secret, address="10.0.0.1").status_code == 403
    assert me(client, issued.secret, address="192.0.2.1").status_code == 200


def test_a_request_must_pass_both_the_filter_and_the_allow_list(client, org_admin):
    office = ip_filter(org_admin, name="Office", rules="allow 10.0.0.0/8")
    issued = issue(org_admin, ip_filter=office, allowed_addresses=("10.1.0.0/16",))
    assert me(client, issued.secret, address="10.1.2.3").status_code == 200
    assert me(client, issued.secret, address="10.2.0.1").status_code == 403  # filter only
    assert me(client, issued.secret, address="192.0.2.1").status_code == 403  # neither


def test_own_filters_and_addresses_are_refused_when_the_policy_forbids_them(org_admin):
    own = ip_filter(org_admin, name="Own", rules="allow all")
    set_policy(org_admin, "organization", custom_ip_allowed=False)
    with pytest.raises(ValidationError):
        issue(org_admin, ip_filter=own)
    with pytest.raises(ValidationError):
        issue(org_admin, allowed_addresses=("10.0.0.0/8",))
    assert issue(org_admin).token.allowed_addresses == []


def test_forbidding_own_addresses_removes_them_and_the_enforced_filter_then_decides(
    client, org_admin
):
    issued = issue(org_admin, allowed_addresses=("192.0.2.0/24",))
    assert me(client, issued.secret, address="10.0.0.1").status_code == 403
    set_policy(
        org_admin,
        "organization",
        custom_ip_allowed=False,
        enforced_ip_filter=ip_filter(org_admin),
    )
    assert ApiToken.objects.get(pk=issued.token.pk).allowed_addresses == []
    assert me(client, issued.secret, address="10.0.0.1").status_code == 200
    assert me(client, issued.secret, address="192.0.2.1").status_code == 403


def test_the_done_when_scenario_90_day_tokens_restricted_to_10_slash_8(client, org_admin):
    old = issue(org_admin, name="old", expires_at=None)
    corporate = ip_filter(org_admin, rules="allow 10.0.0.0/8")
    impact = set_policy(
        org_admin,
        "organization",
        max_lifetime="90d",
        expiry_required=True,
        enforced_ip_filter=corporate,
    )
    assert [change.token.name for change in impact.expiry_shortened] == ["old"]
    assert me(client, old.secret, address="192.0.2.1").status_code == 403
    assert me(client, old.secret, address="10.1.1.1").status_code == 200
    with pytest.raises(ValidationError):
        issue(org_admin, expires_in=timedelta(days=120))
    new = issue(org_admin, name="new")
    assert new.token.ip_filter == corporate
    assert me(client, new.secret, address="192.0.2.1").status_code == 403


# Permission edits and regeneration --------------------------------------------------------------


@pytest.mark.parametrize("scope", SCOPES)
def test_permission_edits_can_be_forbidden(world, org_admin, group_admin, member, scope):
    token = issue_in(scope, world, org_admin, group_admin, member).token
    actor = {"organization": org_admin, "group": group_admin, "personal": member}[scope]
    set_policy(org_admin, scope, permission_edits_allowed=False)
    with pytest.raises(PolicyViolation) as raised:
        update_token_permissions(actor=actor, token=token, role="member")
    assert raised.value.setting == f"{scope}.permission_edits_allowed"
    set_policy(org_admin, scope, permission_edits_allowed=True)
    assert update_token_permissions(actor=actor, token=token, role="member").version == 2


@pytest.mark.parametrize("scope", SCOPES)
def test_regeneration_can_be_forbidden(world, org_admin, group_admin, member, scope):
    token = issue_in(scope, world, org_admin, group_admin, member).token
    actor = {"organization": org_admin, "group": group_admin, "personal": member}[scope]
    set_policy(org_admin, scope, regeneration_allowed=False)
    with pytest.raises(PolicyViolation) as raised:
        regenerate_token(actor=actor, token=token)
    assert raised.value.setting == f"{scope}.regeneration_allowed"


def test_the_grace_period_is_capped_by_the_policy(client, org_admin):
    issued = issue(org_admin)
    set_policy(org_admin, "organization", max_grace="1h")
    with pytest.raises(ValidationError) as raised:
        regenerate_token(actor=org_admin, token=issued.token, grace=timedelta(hours=2))
    assert "grace" in raised.value.message_dict
    renewed = regenerate_token(actor=org_admin, token=issued.token, grace=timedelta(hours=1))
    assert me(client, issued.secret).status_code == 200
    assert me(client, renewed.secret).status_code == 200


def test_a_zero_grace_policy_allows_only_immediate_regeneration(org_admin):
    token = issue(org_admin).token
    set_policy(org_admin, "organization", max_grace="0")
    with pytest.raises(ValidationError):
        regenerate_token(actor=org_admin, token=token, grace=timedelta(minutes=1))
    assert regenerate_token(actor=org_admin, token=token).token.version == 2


# Client address -------------------------------------------------------------------------------


def test_a_forged_forwarded_header_is_ignored_without_trusted_proxies(client, org_admin):
    issued = issue(org_admin, ip_filter=ip_filter(org_admin))
    response = me(client, issued.secret, address="203.0.113.5", HTTP_X_FORWARDED_FOR="10.0.0.1")
    assert response.status_code == 403


def test_a_trusted_proxy_passes_on_the_client_address(client, org_admin, settings):
    settings.KEYWARD_TRUSTED_PROXIES = ["192.0.2.0/24"]
    issued = issue(org_admin, ip_filter=ip_filter(org_admin))
    assert (
        me(client, issued.secret, address="192.0.2.7", HTTP_X_FORWARDED_FOR="10.0.0.1").status_code
        == 200
    )
    assert (
        me(
            client, issued.secret, address="192.0.2.7", HTTP_X_FORWARDED_FOR="203.0.113.5"
        ).status_code
        == 403
    )


def test_a_forged_header_from_outside_the_trusted_proxies_is_still_ignored(
    client, org_admin, settings
):
    settings.KEYWARD_TRUSTED_PROXIES = ["192.0.2.0/24"]
    issued = issue(org_admin, ip_filter=ip_filter(org_admin))
    response = me(client, issued.secret, address="203.0.113.5", HTTP_X_FORWARDED_FOR="10.0.0.1")
    assert response.status_code == 403


def test_a_forged_prefix_sent_through_the_proxy_does_not_borrow_an_allowed_address(
    client, org_admin, settings
):
    # The proxy sits inside the allowed network and appends the real peer to what it got.
    settings.KEYWARD_TRUSTED_PROXIES = ["10.0.0.2"]
    issued = issue(org_admin, ip_filter=ip_filter(org_admin))
    for forged in ("10.9.9.9, 203.0.113.5", "garbage, 203.0.113.5", "10.0.0.2, 203.0.113.5"):
        response = me(client, issued.secret, address="10.0.0.2", HTTP_X_FORWARDED_FOR=forged)
        assert response.status_code == 403, forged


def test_a_chain_of_trusted_proxies_is_walked_to_the_client(client, org_admin, settings):
    settings.KEYWARD_TRUSTED_PROXIES = ["192.0.2.0/24", "198.51.100.0/24"]
    issued = issue(org_admin, ip_filter=ip_filter(org_admin))
    response = me(
        client,
        issued.secret,
        address="192.0.2.7",
        HTTP_X_FORWARDED_FOR="203.0.113.9, 10.4.4.4, 198.51.100.3",
    )
    assert response.status_code == 200


def test_garbage_forwarded_by_a_trusted_proxy_counts_as_an_unknown_address(
    client, org_admin, settings
):
    settings.KEYWARD_TRUSTED_PROXIES = ["192.0.2.0/24"]
    issued = issue(org_admin, ip_filter=ip_filter(org_admin, rules="allow all"))
    response = me(client, issued.secret, address="192.0.2.7", HTTP_X_FORWARDED_FOR="unknown")
    assert response.status_code == 403
    unfiltered = issue(org_admin, name="unfiltered")
    assert (
        me(
            client, unfiltered.secret, address="192.0.2.7", HTTP_X_FORWARDED_FOR="unknown"
        ).status_code
        == 200
    )

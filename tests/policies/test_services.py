"""IP filter and security policy services: rights, validation, version, audit, impact."""

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from access.errors import Forbidden, NotFound, VersionConflict
from orgs.models import AuditEvent
from policies.models import IpFilter, SecurityPolicy
from policies.services import (
    ImpactChanged,
    IpFilterInUse,
    check_address,
    create_ip_filter,
    delete_ip_filter,
    preview_policy_change,
    update_ip_filter,
    update_security_policy,
)
from tests.factories import issue
from tokens.models import ApiToken

pytestmark = pytest.mark.django_db


def office(actor, name="Office", rules="allow 10.0.0.0/8\ndeny all"):
    return create_ip_filter(
        actor=actor, organization=actor.organization, name=name, rules_text=rules
    )


def scope_policy(organization, scope):
    return SecurityPolicy.objects.get(organization=organization).for_scope(scope)


# IP filters -----------------------------------------------------------------------------------


def test_an_org_admin_creates_a_filter_and_the_audit_log_records_it(world, org_admin):
    ip_filter = office(org_admin)
    assert ip_filter.version == 1 and ip_filter.created_by == world.alice
    event = AuditEvent.objects.get(action="ip_filter.created")
    assert event.object_repr == "Office" and event.actor == world.alice
    assert event.changes["rules_text"]["after"] == "allow 10.0.0.0/8\ndeny all"


def test_bad_rules_are_reported_line_by_line_and_nothing_is_saved(org_admin):
    with pytest.raises(ValidationError) as raised:
        office(org_admin, rules="# office\nallow 10.0.0.0/8\npermit all\nallow 10.0.0.1/8")
    errors = raised.value.error_dict["rules_text"]
    assert [error.params["line"] for error in errors] == [3, 4]
    assert "Line 3:" in errors[0].messages[0] and "did you mean 10.0.0.0/8" in errors[1].messages[0]
    assert not IpFilter.objects.exists()


@pytest.mark.parametrize("line", ["deny fe80::1%eth0", "allow 10.%\\x%(line)s", "%s allow"])
def test_a_percent_sign_in_a_bad_rule_is_reported_as_typed(org_admin, line):
    with pytest.raises(ValidationError) as raised:
        office(org_admin, rules=f"allow all\n{line}")
    (message,) = raised.value.message_dict["rules_text"]
    assert message.startswith("Line 2:") and "%" in message and "%%" not in message
    assert raised.value.error_dict["rules_text"][0].params == {"line": 2}


def test_a_filter_needs_a_name_unique_in_its_organization_and_at_least_one_rule(
    org_admin, other_org_admin
):
    office(org_admin)
    with pytest.raises(ValidationError) as raised:
        office(org_admin, name="OFFICE ")
    assert "already exists" in raised.value.message_dict["name"][0]
    with pytest.raises(ValidationError) as raised:
        office(org_admin, name=" ", rules="# nothing but a comment")
    assert set(raised.value.message_dict) == {"name", "rules_text"}
    assert office(other_org_admin).organization == other_org_admin.organization


@pytest.mark.parametrize("actor_name", ["member", "group_admin"])
def test_people_without_ip_filter_write_cannot_create_filters(request, actor_name):
    actor = request.getfixturevalue(actor_name)
    with pytest.raises(Forbidden):
        office(actor)


def test_a_token_needs_ip_filter_write_and_an_admin_token_has_it(world, org_admin):
    reader = issue(org_admin, role="custom", permissions=["api.ip-filters.read"]).token
    from orgs.principals import Principal

    as_reader = Principal(user=reader.user, organization=world.acme, token=reader)
    with pytest.raises(Forbidden):
        office(as_reader)
    admin_token = issue(org_admin, role="admin").token
    as_admin = Principal(user=admin_token.user, organization=world.acme, token=admin_token)
    assert office(as_admin).created_by == admin_token.user


def test_an_admin_of_another_organization_cannot_create_filters_here(world, other_org_admin):
    with pytest.raises(NotFound):
        create_ip_filter(
            actor=other_org_admin, organization=world.acme, name="x", rules_text="allow all"
        )


def test_editing_bumps_the_version_and_records_before_and_after(org_admin):
    ip_filter = office(org_admin)
    updated = update_ip_filter(
        actor=org_admin, ip_filter=ip_filter, expected_version=1, rules_text="allow 192.0.2.0/24"
    )
    assert updated.version == 2 and updated.name == "Office"
    event = AuditEvent.objects.get(action="ip_filter.changed")
    assert event.changes == {
        "rules_text": {"before": "allow 10.0.0.0/8\ndeny all", "after": "allow 192.0.2.0/24"}
    }
    assert check_address(ip_filter=IpFilter.objects.get(), address="192.0.2.9").allowed


def test_a_stale_edit_is_a_conflict_and_changes_nothing(org_admin):
    ip_filter = office(org_admin)
    update_ip_filter(actor=org_admin, ip_filter=ip_filter, description="HQ")
    with pytest.raises(VersionConflict):
        update_ip_filter(actor=org_admin, ip_filter=ip_filter, expected_version=1, name="New")
    assert IpFilter.objects.get().name == "Office"


def test_an_edit_with_bad_rules_keeps_the_old_rules(org_admin):
    ip_filter = office(org_admin)
    with pytest.raises(ValidationError):
        update_ip_filter(actor=org_admin, ip_filter=ip_filter, rules_text="allow everyone")
    assert IpFilter.objects.get().rules_text == "allow 10.0.0.0/8\ndeny all"
    assert IpFilter.objects.get().version == 1


def test_another_organization_cannot_see_or_change_a_filter(org_admin, other_org_admin):
    ip_filter = office(org_admin)
    with pytest.raises(NotFound):
        update_ip_filter(actor=other_org_admin, ip_filter=ip_filter, name="mine")
    with pytest.raises(NotFound):
        delete_ip_filter(actor=other_org_admin, ip_filter=ip_filter)


def test_an_unused_filter_is_deleted_with_an_audit_event(org_admin):
    ip_filter = office(org_admin)
    delete_ip_filter(actor=org_admin, ip_filter=ip_filter, expected_version=1)
    assert not IpFilter.objects.exists()
    assert AuditEvent.objects.filter(action="ip_filter.deleted", object_repr="Office").exists()


def test_deleting_a_filter_in_use_is_refused_listing_its_tokens_and_policy_scopes(org_admin):
    ip_filter = office(org_admin)
    issue(org_admin, name="Deploy bot", ip_filter=ip_filter)
    update_security_policy(
        actor=org_admin,
        organization=org_admin.organization,
        changes={"group": {"enforced_ip_filter": ip_filter}},
    )
    with pytest.raises(IpFilterInUse) as raised:
        delete_ip_filter(actor=org_admin, ip_filter=ip_filter)
    message = raised.value.message_dict["ip_filter"][0]
    assert "Deploy bot" in message and "group tokens" in message
    assert raised.value.use.policy_scopes == ["group"]
    assert IpFilter.objects.filter(pk=ip_filter.pk).exists()


def test_the_tester_names_the_deciding_line(org_admin):
    ip_filter = office(org_admin, rules="# office\ndeny 10.0.0.5\nallow 10.0.0.0/8")
    assert check_address(ip_filter=ip_filter, address="10.0.0.5").rule.line == 2
    decision = check_address(ip_filter=ip_filter, address=" 10.1.1.1 ")
    assert decision.allowed and decision.rule.line == 3
    decision = check_address(ip_filter=ip_filter, address="2001:db8::1")
    assert not decision.allowed and decision.rule is None


@pytest.mark.parametrize("address", ["", "10.0.0", "hello", "10.0.0.0/8", "x" * 5000])
def test_the_tester_refuses_what_is_not_an_address(org_admin, address):
    with pytest.raises(ValidationError) as raised:
        check_address(ip_filter=office(org_admin, name=f"f{len(address)}"), address=address)
    assert "address" in raised.value.message_dict


# Security policy: rights and validation -----------------------------------------------------


@pytest.mark.parametrize("actor_name", ["member", "group_admin"])
def test_only_org_admins_preview_or_change_the_policy(request, world, actor_name):
    actor = request.getfixturevalue(actor_name)
    changes = {"group": {"allowed": False}}
    with pytest.raises(Forbidden):
        preview_policy_change(actor=actor, organization=world.acme, changes=changes)
    with pytest.raises(Forbidden):
        update_security_policy(actor=actor, organization=world.acme, changes=changes)
    assert scope_policy(world.acme, "group").allowed


def test_an_organization_token_needs_security_policies_write(world, org_admin):
    from orgs.principals import Principal

    reader = issue(org_admin, role="member").token
    as_reader = Principal(user=reader.user, organization=world.acme, token=reader)
    with pytest.raises(Forbidden):
        update_security_policy(
            actor=as_reader, organization=world.acme, changes={"group": {"allowed": False}}
        )
    writer = issue(org_admin, role="custom", permissions=["api.security-policies.write"]).token
    as_writer = Principal(user=writer.user, organization=world.acme, token=writer)
    update_security_policy(
        actor=as_writer, organization=world.acme, changes={"group": {"allowed": False}}
    )
    assert not scope_policy(world.acme, "group").allowed


def test_another_organizations_admin_gets_not_found(world, other_org_admin):
    with pytest.raises(NotFound):
        update_security_policy(
            actor=other_org_admin, organization=world.acme, changes={"group": {"allowed": False}}
        )


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"robots": {"allowed": False}}, "robots"),
        ({"group": {"colour": "red"}}, "group.colour"),
        ({"group": {"allowed": "no"}}, "group.allowed"),
        ({"group": {"max_lifetime": "forever"}}, "group.max_lifetime"),
        ({"group": {"max_lifetime": timedelta(seconds=5)}}, "group.max_lifetime"),
        ({"group": {"max_grace": "8d"}}, "group.max_grace"),
        ({"group": {"max_grace": None}}, "group.max_grace"),
        ({"group": {"enforced_ip_filter": 999999}}, "group.enforced_ip_filter"),
        ({"group": {"enforced_ip_filter": "abc"}}, "group.enforced_ip_filter"),
        ({"group": {"enforced_ip_filter": True}}, "group.enforced_ip_filter"),
        ({"group": {"enforced_ip_filter": [1]}}, "group.enforced_ip_filter"),
        ({"group": "yes"}, "group"),
    ],
)
def test_bad_settings_are_named_and_nothing_changes(world, org_admin, changes, key):
    with pytest.raises(ValidationError) as raised:
        update_security_policy(actor=org_admin, organization=world.acme, changes=changes)
    assert key in raised.value.message_dict
    assert SecurityPolicy.objects.get(organization=world.acme).version == 1


def test_a_filter_of_another_organization_cannot_be_enforced(world, org_admin, other_org_admin):
    theirs = office(other_org_admin)
    with pytest.raises(ValidationError):
        update_security_policy(
            actor=org_admin,
            organization=world.acme,
            changes={"organization": {"enforced_ip_filter": theirs.pk}},
        )


def test_durations_are_taken_as_text_or_timedelta(world, org_admin):
    update_security_policy(
        actor=org_admin,
        organization=world.acme,
        changes={"organization": {"max_lifetime": "90d", "max_grace": "0"}},
    )
    policy = scope_policy(world.acme, "organization")
    assert policy.max_lifetime == timedelta(days=90) and policy.max_grace == timedelta(0)
    update_security_policy(
        actor=org_admin, organization=world.acme, changes={"organization": {"max_lifetime": ""}}
    )
    assert scope_policy(world.acme, "organization").max_lifetime is None


def test_a_stale_policy_version_is_a_conflict(world, org_admin):
    update_security_policy(
        actor=org_admin, organization=world.acme, changes={"group": {"allowed": False}}
    )
    with pytest.raises(VersionConflict):
        update_security_policy(
            actor=org_admin,
            organization=world.acme,
            changes={"group": {"allowed": True}},
            expected_version=1,
        )
    assert not scope_policy(world.acme, "group").allowed


def test_a_policy_change_is_audited_with_readable_before_and_after(world, org_admin):
    update_security_policy(
        actor=org_admin,
        organization=world.acme,
        changes={"personal": {"max_lifetime": "7d", "regeneration_allowed": False}},
    )
    event = AuditEvent.objects.get(action="security_policy.changed")
    assert event.changes == {
        "personal.max_lifetime": {"before": "30 days", "after": "7 days"},
        "personal.regeneration_allowed": {"before": "yes", "after": "no"},
    }
    assert SecurityPolicy.objects.get(organization=world.acme).version == 2


def test_saving_the_current_settings_changes_nothing(world, org_admin):
    impact = update_security_policy(
        actor=org_admin, organization=world.acme, changes={"group": {"allowed": True}}
    )
    assert not impact.setting_changes and not impact.touched_tokens
    assert SecurityPolicy.objects.get(organization=world.acme).version == 1
    assert not AuditEvent.objects.filter(action="security_policy.changed").exists()


# Security policy: impact -----------------------------------------------------------------------


def _tokens(world, org_admin, group_admin, member):
    """A spread of tokens: what each policy change may touch."""
    return {
        "forever": issue(org_admin, name="forever", expires_at=None).token,
        "year": issue(org_admin, name="year", expires_in=timedelta(days=365)).token,
        "week": issue(org_admin, name="week", expires_in=timedelta(days=7)).token,
        "addresses": issue(
            org_admin, name="addresses", expires_at=None, allowed_addresses=("192.0.2.0/24",)
        ).token,
        "group": issue(group_admin, name="group", scope="group", group=world.platform).token,
        "personal": issue(member, name="personal", scope="personal", role="member").token,
    }


def test_the_preview_lists_every_token_each_change_touches(world, org_admin, group_admin, member):
    tokens = _tokens(world, org_admin, group_admin, member)
    own = office(org_admin, name="Own")
    issue(org_admin, name="own filter", expires_at=None, ip_filter=own)
    corporate = office(org_admin, name="Corporate")
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        impact = preview_policy_change(
            actor=org_admin,
            organization=world.acme,
            changes={
                "organization": {
                    "max_lifetime": "90d",
                    "enforced_ip_filter": corporate,
                    "custom_ip_allowed": False,
                },
                "group": {"allowed": False},
            },
        )
    names = lambda changes: sorted(change.token.name for change in changes)  # noqa: E731
    assert names(impact.expiry_shortened) == ["addresses", "forever", "own filter", "year"]
    assert {change.after for change in impact.expiry_shortened} == {now + timedelta(days=90)}
    assert names(impact.ip_filter_enforced) == [
        "addresses",
        "forever",
        "own filter",
        "week",
        "year",
    ]
    assert names(impact.custom_ip_removed) == ["addresses"]
    assert names(impact.revoked) == ["group"]
    assert "personal" not in {token.name for token in impact.touched_tokens}
    assert impact.summary() == [
        f"4 tokens would have their expiry shortened (to "
        f"{now + timedelta(days=90):%Y-%m-%d %H:%M} UTC at the latest)",
        "1 token of a disallowed kind would be revoked",
        "5 tokens would get the enforced IP filter",
        "1 token would lose their own IP filter or addresses",
    ]
    # A preview changes nothing.
    assert ApiToken.objects.get(pk=tokens["forever"].pk).expires_at is None
    assert SecurityPolicy.objects.get(organization=world.acme).version == 1


def test_applying_does_exactly_what_the_preview_said(world, org_admin, group_admin, member):
    _tokens(world, org_admin, group_admin, member)
    corporate = office(org_admin, name="Corporate")
    changes = {
        "organization": {"max_lifetime": "90d", "enforced_ip_filter": corporate.pk},
        "group": {"allowed": False, "custom_ip_allowed": False},
        "personal": {"max_lifetime": "1d"},
    }
    before = {token.pk: token for token in ApiToken.objects.all()}
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        preview = preview_policy_change(actor=org_admin, organization=world.acme, changes=changes)
        applied = update_security_policy(
            actor=org_admin,
            organization=world.acme,
            changes=changes,
            expected_version=1,
            expected_impact=preview.fingerprint(),
        )
    assert applied.fingerprint() == preview.fingerprint()
    assert applied.policy_version == 2
    after = {token.pk: token for token in ApiToken.objects.select_related("ip_filter")}
    changed = {pk for pk in after if after[pk].version != before[pk].version}
    assert changed == {token.pk for token in preview.touched_tokens}
    for change in preview.expiry_shortened:
        assert after[change.token.pk].expires_at == change.after
    for change in preview.ip_filter_enforced:
        assert after[change.token.pk].ip_filter.name == change.after == "Corporate"
    for change in preview.revoked:
        token = after[change.token.pk]
        assert token.status == "revoked" and "no longer allows group tokens" in token.revoked_reason
    # Audited token by token.
    audited = AuditEvent.objects.filter(
        action__in=["token.revoked", "token.policy_applied"]
    ).values_list("object_id", flat=True)
    assert sorted(map(int, audited)) == sorted(changed)


def test_revoked_tokens_are_restored_by_relaxing_the_policy(world, org_admin, group_admin):
    from tokens.services import restore_token

    token = issue(group_admin, scope="group", group=world.platform).token
    update_security_policy(
        actor=org_admin, organization=world.acme, changes={"group": {"allowed": False}}
    )
    assert ApiToken.objects.get(pk=token.pk).status == "revoked"
    update_security_policy(
        actor=org_admin, organization=world.acme, changes={"group": {"allowed": True}}
    )
    restore_token(actor=org_admin, token=token)
    assert ApiToken.objects.get(pk=token.pk).status == "active"


def test_an_outdated_preview_is_refused_and_nothing_changes(world, org_admin):
    changes = {"organization": {"max_lifetime": "30d"}}
    preview = preview_policy_change(actor=org_admin, organization=world.acme, changes=changes)
    issue(org_admin, name="created after the preview", expires_at=None)
    with pytest.raises(ImpactChanged) as raised:
        update_security_policy(
            actor=org_admin,
            organization=world.acme,
            changes=changes,
            expected_impact=preview.fingerprint(),
        )
    assert "Review the new preview" in raised.value.message
    assert scope_policy(world.acme, "organization").max_lifetime is None


def test_expired_tokens_are_left_alone(world, org_admin):
    token = issue(org_admin, expires_in=timedelta(hours=1)).token
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        impact = update_security_policy(
            actor=org_admin,
            organization=world.acme,
            changes={"organization": {"allowed": False, "max_lifetime": "1d"}},
        )
    assert not impact.touched_tokens
    assert ApiToken.objects.get(pk=token.pk).status == "active"


def test_requiring_an_expiry_without_a_maximum_lists_tokens_that_keep_none(world, org_admin):
    token = issue(org_admin, expires_at=None).token
    impact = preview_policy_change(
        actor=org_admin,
        organization=world.acme,
        changes={"organization": {"expiry_required": True}},
    )
    assert [change.token for change in impact.without_expiry] == [token]
    assert not impact.touched_tokens


def test_removing_custom_filters_without_an_enforced_one_clears_them(world, org_admin):
    own = office(org_admin, name="Own")
    token = issue(org_admin, ip_filter=own, allowed_addresses=("10.0.0.0/8",)).token
    impact = update_security_policy(
        actor=org_admin,
        organization=world.acme,
        changes={"organization": {"custom_ip_allowed": False}},
    )
    assert impact.custom_ip_removed[0].before == {
        "ip_filter": "Own",
        "allowed_addresses": ["10.0.0.0/8"],
    }
    token.refresh_from_db()
    assert token.ip_filter is None and token.allowed_addresses == []

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from access import catalog
from access.errors import Forbidden, NotFound, PolicyViolation, VersionConflict
from orgs.models import AuditEvent, OrganizationMembership, Role, User, UserKind
from orgs.principals import Principal
from tests.factories import issue
from tokens.auth import authenticate
from tokens.models import ApiToken, TokenSecret
from tokens.services import (
    delete_token,
    regenerate_token,
    rename_token,
    restore_token,
    revoke_token,
    update_token_permissions,
)

pytestmark = pytest.mark.django_db


def token_principal(issued):
    return authenticate(f"Bearer {issued.secret}", "127.0.0.1").principal


# Creation ----------------------------------------------------------------------------------


def test_an_org_admin_creates_an_org_token_backed_by_a_new_technical_user(world, org_admin):
    issued = issue(org_admin, name="CI deploy", role="admin")
    token = issued.token
    assert token.scope == "organization" and token.organization == world.acme
    assert token.user.kind == UserKind.TECHNICAL
    assert token.user.name == "CI deploy"
    assert not token.user.has_usable_password()
    assert token.partial_token == f"kwo_…{issued.secret[-4:]}"
    assert token.created_by == world.alice and token.version == 1


def test_creating_a_token_writes_one_audit_event_naming_the_actor(world, org_admin):
    issued = issue(org_admin, name="Audited")
    event = AuditEvent.objects.get(action="token.created")
    assert event.actor == world.alice and event.actor_name == "alice"
    assert event.object_id == str(issued.token.pk)
    assert event.changes["name"] == {"before": None, "after": "Audited"}
    assert issued.secret not in str(event.changes)


def test_a_member_cannot_create_an_organization_token(member):
    with pytest.raises(Forbidden):
        issue(member, name="Nope")
    assert not ApiToken.objects.exists()


def test_a_group_admin_creates_tokens_for_their_group_only(world, group_admin):
    issued = issue(group_admin, scope="group", group=world.platform, name="Deployer")
    assert issued.token.group == world.platform and issued.secret.startswith("kwg_")
    with pytest.raises(NotFound):
        issue(group_admin, scope="group", group=world.data, name="Not mine")
    with pytest.raises(Forbidden):
        issue(group_admin, scope="organization", name="Org level")


def test_an_admin_of_another_organization_cannot_reach_this_ones_groups(world, other_org_admin):
    with pytest.raises(NotFound):
        issue(other_org_admin, scope="group", group=world.platform, name="Cross org")


def test_every_member_creates_personal_tokens_that_default_to_thirty_days(member):
    now = timezone.now()
    issued = issue(member, scope="personal", role="member", name="My laptop")
    assert issued.secret.startswith("kwu_")
    assert issued.token.user == member.user
    assert (
        timedelta(days=29, hours=23)
        < issued.token.expires_at - now
        <= timedelta(days=30, minutes=1)
    )


def test_a_personal_token_cannot_outlive_the_policy(member):
    with pytest.raises(ValidationError) as error:
        issue(member, scope="personal", name="Too long", expires_in=timedelta(days=31))
    assert "expiry" in error.value.message_dict


def test_names_are_required_limited_and_unique_within_their_scope(world, org_admin, group_admin):
    for bad in ("", "   ", "x" * 101):
        with pytest.raises(ValidationError) as error:
            issue(org_admin, name=bad)
        assert "name" in error.value.message_dict
    issue(org_admin, name="Shared name")
    with pytest.raises(ValidationError) as error:
        issue(org_admin, name="shared NAME")
    assert "already exists" in error.value.message_dict["name"][0]
    # The same name in another scope is fine.
    issue(group_admin, scope="group", group=world.platform, name="Shared name")
    assert ApiToken.objects.filter(name__iexact="shared name").count() == 2


def test_a_taken_name_is_reported_with_the_other_mistakes_in_one_round(world, org_admin):
    issue(org_admin, name="Deploy")
    users = User.objects.count()
    with pytest.raises(ValidationError) as error:
        issue(org_admin, name="DEPLOY", role="custom", permissions=["no.such.permission"])
    assert "already exists" in error.value.message_dict["name"][0]
    assert "Unknown permission" in error.value.message_dict["permissions"][0]
    with pytest.raises(ValidationError) as error:  # alone, the unique index says it
        issue(org_admin, name="deploy")
    assert "already exists" in error.value.message_dict["name"][0]
    assert ApiToken.objects.filter(name__iexact="deploy").count() == 1
    assert User.objects.count() == users  # no technical user left behind


def test_the_unique_index_refuses_a_taken_name_in_group_and_personal_scopes(
    world, group_admin, member
):
    issue(group_admin, scope="group", group=world.platform, name="Runner")
    with pytest.raises(ValidationError) as error:
        issue(group_admin, scope="group", group=world.platform, name="RUNNER")
    assert "already exists" in error.value.message_dict["name"][0]
    issue(member, scope="personal", name="Laptop")
    with pytest.raises(ValidationError) as error:
        issue(member, scope="personal", name="laptop")
    assert "already exists" in error.value.message_dict["name"][0]
    assert ApiToken.objects.filter(name__iexact="runner").count() == 1
    assert ApiToken.objects.filter(name__iexact="laptop").count() == 1


def test_unknown_or_out_of_scope_permissions_are_named_and_nothing_is_created(world, org_admin):
    with pytest.raises(ValidationError) as error:
        issue(org_admin, role="custom", permissions=["api.nope.read", "api.api-tokens.read"])
    assert "api.nope.read" in error.value.message_dict["permissions"][0]
    with pytest.raises(ValidationError) as error:
        issue(
            org_admin,
            scope="group",
            group=world.platform,
            role="custom",
            permissions=["api.organizations.write"],
        )
    assert "Not valid for a group token" in error.value.message_dict["permissions"][0]
    assert not ApiToken.objects.exists()


def test_an_expiry_in_the_past_is_refused(org_admin):
    with pytest.raises(ValidationError) as error:
        issue(org_admin, expires_at=timezone.now() - timedelta(minutes=1))
    assert error.value.message_dict["expiry"] == ["The expiry must be in the future."]


def test_bad_allowed_addresses_are_reported_by_line(org_admin):
    with pytest.raises(ValidationError) as error:
        issue(org_admin, allowed_addresses=("10.0.0.0/8", "not-an-ip"))
    assert "line 2" in error.value.message_dict["allowed_addresses"][0]


def test_a_token_cannot_mint_a_token_with_more_than_its_own_permissions(org_admin):
    writer = issue(
        org_admin, role="custom", permissions=["api.api-tokens.write", "api.api-tokens.read"]
    )
    actor = token_principal(writer)
    issue(actor, role="custom", permissions=["api.api-tokens.read"], name="Narrower")
    with pytest.raises(ValidationError) as error:
        issue(
            actor,
            role="custom",
            permissions=["api.api-tokens.write", "api.users.write"],
            name="Wider",
        )
    assert "api.users.write" in error.value.message_dict["permissions"][0]
    with pytest.raises(ValidationError) as error:
        issue(actor, role="admin", name="Admin")
    assert "role" in error.value.message_dict


def test_a_token_without_write_permission_cannot_create_tokens(org_admin):
    reader = issue(org_admin, role="member")
    with pytest.raises(Forbidden) as error:
        issue(token_principal(reader), role="member", name="Child")
    assert error.value.permission == "api.api-tokens.write"


def test_a_group_token_creates_tokens_only_in_its_own_group(world, org_admin):
    group_token = issue(org_admin, scope="group", group=world.platform, role="admin")
    actor = token_principal(group_token)
    issue(actor, scope="group", group=world.platform, role="member", name="Sibling")
    with pytest.raises(NotFound):
        issue(actor, scope="group", group=world.data, role="member", name="Elsewhere")
    with pytest.raises(Forbidden):
        issue(actor, scope="organization", role="member", name="Upwards")


def test_a_personal_token_of_a_member_never_exceeds_its_owners_rights(world, org_admin, member):
    personal = issue(member, scope="personal", role="admin")
    principal = token_principal(personal)
    assert "api.security-policies.write" not in principal.permissions
    assert principal.permissions <= catalog.HUMAN_MEMBER


def test_losing_the_admin_role_narrows_a_personal_token_at_once(world, org_admin):
    personal = issue(org_admin, scope="personal", role="admin")
    assert "api.organizations.write" in token_principal(personal).permissions
    OrganizationMembership.objects.filter(user=world.alice, organization=world.acme).update(
        role=Role.MEMBER
    )
    assert "api.organizations.write" not in token_principal(personal).permissions


def test_the_admin_role_is_resolved_at_request_time(org_admin, monkeypatch):
    issued = issue(org_admin, role="admin")
    new_permission = catalog.Permission("api.widgets.read", "Read widgets.", catalog.ALL_SCOPES)
    monkeypatch.setattr(catalog, "CATALOG", catalog.CATALOG + (new_permission,))
    assert "api.widgets.read" in token_principal(issued).permissions


def test_a_policy_that_forbids_a_kind_of_token_stops_its_creation(world, org_admin):
    policy = world.acme.security_policy.group_tokens
    policy.allowed = False
    policy.save()
    with pytest.raises(PolicyViolation) as error:
        issue(org_admin, scope="group", group=world.platform)
    assert error.value.setting == "group.allowed"


# Regenerate ---------------------------------------------------------------------------------


def test_regenerating_without_grace_kills_the_old_secret_at_once(org_admin):
    issued = issue(org_admin)
    renewed = regenerate_token(actor=org_admin, token=issued.token, expected_version=1)
    assert renewed.secret != issued.secret and renewed.token.version == 2
    with pytest.raises(Exception, match="unknown"):
        authenticate(f"Bearer {issued.secret}", "127.0.0.1")
    assert (
        authenticate(f"Bearer {renewed.secret}", "127.0.0.1").principal.token.pk == issued.token.pk
    )
    assert TokenSecret.objects.filter(token=issued.token).count() == 1


def test_regenerating_with_grace_keeps_the_old_secret_until_the_grace_ends(org_admin):
    issued = issue(org_admin)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        renewed = regenerate_token(actor=org_admin, token=issued.token, grace=timedelta(hours=1))
        assert authenticate(f"Bearer {issued.secret}", "127.0.0.1")
        assert authenticate(f"Bearer {renewed.secret}", "127.0.0.1")
        traveller.shift(timedelta(hours=1, seconds=1))
        with pytest.raises(Exception, match="secret_ended"):
            authenticate(f"Bearer {issued.secret}", "127.0.0.1")
        assert authenticate(f"Bearer {renewed.secret}", "127.0.0.1")


def test_a_grace_period_over_seven_days_is_refused(org_admin):
    issued = issue(org_admin)
    with pytest.raises(ValidationError) as error:
        regenerate_token(actor=org_admin, token=issued.token, grace=timedelta(days=8))
    assert "grace" in error.value.message_dict


def test_regenerating_a_stale_version_is_a_conflict_and_changes_nothing(org_admin):
    issued = issue(org_admin)
    revoke_token(actor=org_admin, token=issued.token, expected_version=1)
    restore_token(actor=org_admin, token=issued.token, expected_version=2)
    with pytest.raises(VersionConflict) as error:
        regenerate_token(actor=org_admin, token=issued.token, expected_version=1)
    assert error.value.current_version == 3
    assert authenticate(f"Bearer {issued.secret}", "127.0.0.1")


def test_regenerating_four_times_never_moves_the_expiry(org_admin):
    issued = issue(org_admin, expires_in=timedelta(days=10))
    token = issued.token
    for day in range(1, 5):
        with time_machine.travel(timezone.now() + timedelta(days=day), tick=False):
            token = regenerate_token(actor=org_admin, token=token).token
    token.refresh_from_db()
    assert token.expires_at == issued.token.expires_at


def test_an_expired_token_is_not_regenerated_and_keeps_its_secret(org_admin):
    issued = issue(org_admin, expires_in=timedelta(days=1))
    later = timezone.now() + timedelta(days=2)
    with time_machine.travel(later, tick=False), pytest.raises(ValidationError) as raised:
        regenerate_token(actor=org_admin, token=issued.token)
    assert "expired" in raised.value.message_dict["expiry"][0]
    assert TokenSecret.objects.filter(token=issued.token).count() == 1


def test_a_grace_period_ends_no_later_than_the_token(org_admin):
    issued = issue(org_admin, expires_in=timedelta(hours=2))
    renewed = regenerate_token(actor=org_admin, token=issued.token, grace=timedelta(days=1))
    assert renewed.previous_secret_ends_at == issued.token.expires_at
    old = TokenSecret.objects.filter(token=issued.token, ends_at__isnull=False).get()
    assert old.ends_at == issued.token.expires_at


def test_nobody_but_the_owner_regenerates_a_personal_token(world, org_admin, member):
    personal = issue(member, scope="personal", role="member")
    with pytest.raises(Forbidden):
        regenerate_token(actor=org_admin, token=personal.token)
    # An admin may still revoke it, say when it leaked.
    revoke_token(actor=org_admin, token=personal.token, reason="leaked in a log")


def test_regeneration_can_be_switched_off_by_policy(world, org_admin):
    issued = issue(org_admin)
    policy = world.acme.security_policy.organization_tokens
    policy.regeneration_allowed = False
    policy.save()
    with pytest.raises(PolicyViolation):
        regenerate_token(actor=org_admin, token=issued.token)


# Revoke, restore, delete ---------------------------------------------------------------------


def test_revoke_and_restore_switch_the_token_off_and_on_with_reason_and_audit(org_admin):
    issued = issue(org_admin)
    token = revoke_token(actor=org_admin, token=issued.token, reason="rotating")
    assert token.status == "revoked" and token.revoked_reason == "rotating" and token.revoked_at
    with pytest.raises(Exception, match="revoked"):
        authenticate(f"Bearer {issued.secret}", "127.0.0.1")
    token = restore_token(actor=org_admin, token=token)
    assert token.status == "active" and token.revoked_at is None
    assert authenticate(f"Bearer {issued.secret}", "127.0.0.1")
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions[-3:] == ["token.created", "token.revoked", "token.restored"]


def test_deleting_removes_the_token_and_deactivates_but_keeps_its_technical_user(world, org_admin):
    issued = issue(org_admin, name="Going away")
    user = issued.token.user
    delete_token(actor=org_admin, token=issued.token)
    assert not ApiToken.objects.filter(pk=issued.token.pk).exists()
    user.refresh_from_db()
    assert not user.is_active
    event = AuditEvent.objects.get(action="token.deleted")
    assert (
        event.object_repr.startswith("Going away")
        and event.changes["name"]["before"] == "Going away"
    )
    with pytest.raises(Exception, match="unknown"):
        authenticate(f"Bearer {issued.secret}", "127.0.0.1")


def test_a_member_cannot_touch_someone_elses_tokens(world, org_admin, member):
    issued = issue(org_admin)
    with pytest.raises(NotFound):
        revoke_token(actor=member, token=issued.token)
    with pytest.raises(NotFound):
        delete_token(actor=member, token=issued.token)
    assert ApiToken.objects.get(pk=issued.token.pk).status == "active"


def test_an_admin_of_another_organization_gets_not_found(org_admin, other_org_admin):
    issued = issue(org_admin)
    with pytest.raises(NotFound):
        revoke_token(actor=other_org_admin, token=issued.token)


def test_a_group_admin_manages_their_groups_tokens_but_not_others(world, org_admin, group_admin):
    mine = issue(org_admin, scope="group", group=world.platform)
    theirs = issue(org_admin, scope="group", group=world.data)
    revoke_token(actor=group_admin, token=mine.token)
    with pytest.raises(NotFound):
        revoke_token(actor=group_admin, token=theirs.token)


# Rename and permissions -------------------------------------------------------------------


def test_renaming_renames_the_technical_user_too(org_admin):
    issued = issue(org_admin, name="Before")
    rename_token(actor=org_admin, token=issued.token, name="After", expected_version=1)
    issued.token.user.refresh_from_db()
    assert issued.token.user.name == "After"


@pytest.mark.usefixtures("permission_edits_allowed")
def test_permission_edits_bump_the_version_and_record_before_and_after(org_admin):
    issued = issue(org_admin, role="custom", permissions=["api.api-tokens.read"])
    token = update_token_permissions(
        actor=org_admin,
        token=issued.token,
        role="custom",
        permissions=["api.api-tokens.read", "api.usage.read"],
        expected_version=1,
    )
    assert token.version == 2 and token.permissions == ["api.api-tokens.read", "api.usage.read"]
    event = AuditEvent.objects.get(action="token.permissions_changed")
    assert event.changes["permissions"] == {
        "before": ["api.api-tokens.read"],
        "after": ["api.api-tokens.read", "api.usage.read"],
    }


@pytest.mark.usefixtures("permission_edits_allowed")
def test_a_stale_permission_edit_loses_nothing(org_admin):
    issued = issue(org_admin, role="custom", permissions=["api.api-tokens.read"])
    update_token_permissions(actor=org_admin, token=issued.token, role="member", expected_version=1)
    with pytest.raises(VersionConflict):
        update_token_permissions(
            actor=org_admin,
            token=issued.token,
            role="custom",
            permissions=["api.usage.read"],
            expected_version=1,
        )
    assert ApiToken.objects.get(pk=issued.token.pk).role == "member"


def test_permission_edits_can_be_forbidden_by_policy(world, org_admin):
    issued = issue(org_admin, role="member")
    policy = world.acme.security_policy.organization_tokens
    policy.permission_edits_allowed = False
    policy.save()
    with pytest.raises(PolicyViolation) as error:
        update_token_permissions(actor=org_admin, token=issued.token, role="admin")
    assert error.value.setting == "organization.permission_edits_allowed"


@pytest.mark.usefixtures("permission_edits_allowed")
def test_a_token_cannot_widen_another_token_beyond_itself(org_admin):
    editor = issue(
        org_admin, role="custom", permissions=["api.api-tokens.write", "api.api-tokens.read"]
    )
    target = issue(org_admin, role="custom", permissions=["api.api-tokens.read"])
    with pytest.raises(ValidationError):
        update_token_permissions(
            actor=token_principal(editor),
            token=target.token,
            role="custom",
            permissions=["api.api-tokens.read", "api.users.delete"],
        )


def test_operators_act_everywhere_and_are_named_in_the_audit_log(world):
    operator = Principal.operator(label="command line")
    issued = issue(Principal.operator(organization=world.acme), name="Ops")
    revoke_token(actor=operator, token=issued.token)
    assert AuditEvent.objects.filter(
        action="token.revoked", actor_name="command line", actor_kind="operator"
    ).exists()

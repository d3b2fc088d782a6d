"""Changes to organizations, groups, memberships and invitations: rights, audit, one
transaction each.

Above ``tokens`` in the layers: removing a person revokes their personal tokens, deleting a
group deletes its tokens, both through the token services.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.core.validators import validate_email, validate_slug
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from access import rules
from access.errors import Forbidden, NotFound, VersionConflict
from mail import outbox
from orgs import audit, names
from orgs.models import (
    Group,
    GroupMembership,
    Organization,
    OrganizationMembership,
    Role,
    User,
    UserKind,
)
from orgs.principals import Principal
from people.models import LIFETIME as INVITATION_LIFETIME
from people.models import Invitation, InvitationStatus
from policies.models import SecurityPolicy
from tokens import services as token_services

NAME_MAX_LENGTH = 100
SLUG_MAX_LENGTH = 50

# What _lock reloads: the models of this app's services, each with its version column.
Versioned = TypeVar(
    "Versioned", Organization, Group, OrganizationMembership, GroupMembership, Invitation
)


# Helpers -------------------------------------------------------------------------------------


def _validate_slug_and_name(actor: Principal, slug: str, name: str) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    errors.update(_slug_errors(slug))
    errors.update(_name_errors(actor, name))
    return errors


def _slug_errors(slug: str) -> dict[str, list[str]]:
    if len(slug) > SLUG_MAX_LENGTH:
        return {"slug": [f"A slug has at most {SLUG_MAX_LENGTH} characters."]}
    try:
        validate_slug(slug)
    except ValidationError:
        return {"slug": ["Use letters, digits, hyphens and underscores only."]}
    return {}


def _name_errors(actor: Principal, name: str) -> dict[str, list[str]]:
    checked = token_services.checked_text(actor, name, label="A name", max_length=NAME_MAX_LENGTH)
    return {"name": checked.errors} if checked.errors else {}


def _group_name_taken(organization_id: int, name: str, exclude: int | None = None) -> bool:
    taken = Group.objects.filter(organization_id=organization_id, name_key=names.name_key(name))
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    return taken.exists()


def _require_visible_group(actor: Principal, group: Group) -> None:
    if not Group.objects.visible_to(actor).filter(pk=group.pk).exists():
        raise NotFound("No such group.")


def _lock(instance: Versioned, expected_version: int | None) -> Versioned:
    """Reload the row under a lock and compare the caller's version with it."""
    try:
        locked = type(instance)._default_manager.select_for_update().get(pk=instance.pk)
    except ObjectDoesNotExist:
        raise NotFound("Not found.") from None
    if expected_version is not None and locked.version != expected_version:
        raise VersionConflict(locked.version)
    return locked


def _validate_role(role: str) -> None:
    if role not in Role.values:
        raise ValidationError({"role": ["Choose admin or member."]})


def _other_admins(organization_id: int, user_id: int) -> bool:
    return (
        OrganizationMembership.objects.filter(organization_id=organization_id, role=Role.ADMIN)
        .exclude(user_id=user_id)
        .exists()
    )


def _record_member(
    actor: Principal,
    action: str,
    organization: Organization,
    user: User,
    changes: dict[str, Any],
    group: Group | None = None,
) -> None:
    audit.record(
        actor=actor,
        action=action,
        organization=organization,
        group_id=group.pk if group is not None else None,
        object_type="user",
        object_id=user.pk,
        object_repr=user.username,
        changes=changes,
    )


# Organizations -------------------------------------------------------------------------------


def create_organization(
    *, actor: Principal, slug: str, name: str, admin: User | None = None
) -> Organization:
    """Create an organization with its default security policy (operators only)."""
    rules.require_operator(actor)
    errors = _validate_slug_and_name(actor, slug, name)
    if not errors and Organization.objects.filter(slug=slug).exists():
        errors["slug"] = [f"The slug {slug!r} is taken."]
    if admin is not None and admin.kind != UserKind.HUMAN:
        errors["admin"] = ["A technical user cannot administer an organization."]
    if errors:
        raise ValidationError(errors)
    name = names.clean(name, label="A name", max_length=NAME_MAX_LENGTH).value
    try:
        with transaction.atomic():
            organization = Organization.objects.create(slug=slug, name=name)
            SecurityPolicy.create_default(organization)
            audit.record(
                actor=actor,
                action="organization.created",
                organization=organization,
                object_type="organization",
                object_id=organization.pk,
                object_repr=organization.name,
                changes=audit.diff({}, {"slug": slug, "name": organization.name}),
            )
            if admin is not None:
                _create_membership(actor, organization, admin, Role.ADMIN)
    except IntegrityError:
        raise ValidationError({"slug": [f"The slug {slug!r} is taken."]}) from None
    return organization


def rename_organization(
    *,
    actor: Principal,
    organization: Organization,
    name: str,
    expected_version: int | None = None,
) -> Organization:
    """Give the organization a new display name (organization admins)."""
    rules.require_same_organization(actor, organization.pk)
    rules.require_rename_organization(actor)
    errors = _name_errors(actor, name)
    if errors:
        raise ValidationError(errors)
    name = names.clean(name, label="A name", max_length=NAME_MAX_LENGTH).value
    with transaction.atomic():
        organization = _lock(organization, expected_version)
        if organization.name == name.strip():
            return organization
        before = {"name": organization.name}
        organization.name = name.strip()
        organization.version += 1
        organization.save(update_fields=["name", "version"])
        audit.record(
            actor=actor,
            action="organization.renamed",
            organization=organization,
            object_type="organization",
            object_id=organization.pk,
            object_repr=organization.name,
            changes=audit.diff(before, {"name": organization.name}),
        )
    return organization


# Organization members ------------------------------------------------------------------------

OWNER_REMOVED = "Owner removed from the organization."
OWNER_DEMOTED = "Owner is no longer an organization admin."
OWNER_LEFT_GROUP = "Owner no longer administers the group {group}."
GROUP_DELETED = "The group {group}, which the owner administered, was deleted."


def _rights_of(organization: Organization, user: User) -> frozenset[str]:
    """Everything a person holds in the organization now: their role and group-admin roles."""
    return rules.person_rights(Principal.for_member(user, organization))


def _require_not_stronger(
    actor: Principal, organization: Organization, user: User, what: str
) -> frozenset[str]:
    """Nobody reshapes or removes a person who holds more than they do (everything they hold,
    group-admin rights included). Returns the person's rights as they are now."""
    rights = _rights_of(organization, user)
    stronger = rules.missing_for_grant(actor, rights)
    if stronger:
        raise Forbidden(
            f"{user.username} holds permissions you do not hold ({', '.join(stronger)}); "
            f"you cannot change their {what}."
        )
    return rights


def _revoke_if_rights_shrank(
    actor: Principal,
    organization: Organization,
    user: User,
    before: frozenset[str],
    reason: str,
    changes: dict[str, Any],
) -> None:
    """A person who lost rights loses their personal tokens there: getting the rights back must
    not bring old secrets back to life."""
    if before <= _rights_of(organization, user):
        return
    revoked = token_services.revoke_personal_tokens(
        actor=actor, organization_id=organization.pk, user_id=user.pk, reason=reason
    )
    if revoked:
        changes["personal_tokens_revoked"] = {"before": None, "after": revoked}


def _change_role(
    actor: Principal, membership: OrganizationMembership, role: str
) -> OrganizationMembership:
    """Change a locked membership's role; the last admin stays an admin."""
    if membership.role == role:
        return membership
    if role != Role.ADMIN and not _other_admins(membership.organization_id, membership.user_id):
        raise ValidationError({"role": ["The organization needs at least one admin."]})
    organization, user = membership.organization, membership.user
    before_rights = _rights_of(organization, user)
    changes = audit.diff({"role": membership.role}, {"role": role})
    membership.role = role
    membership.version += 1
    membership.save(update_fields=["role", "version"])
    _revoke_if_rights_shrank(actor, organization, user, before_rights, OWNER_DEMOTED, changes)
    _record_member(actor, "member.role_changed", organization, user, changes)
    return membership


def _create_membership(
    actor: Principal, organization: Organization, user: User, role: str
) -> OrganizationMembership:
    membership = OrganizationMembership.objects.create(
        organization=organization, user=user, role=role
    )
    _record_member(actor, "member.added", organization, user, audit.diff({}, {"role": role}))
    return membership


def set_member(
    *, actor: Principal, organization: Organization, user: User, role: str
) -> OrganizationMembership:
    """Add a person to the organization, or change their role: the same checks as
    ``add_member`` and ``change_member_role`` (grant, strength, last admin)."""
    rules.require_same_organization(actor, organization.pk)
    rules.require_manage_members(actor)
    _validate_role(role)
    if user.kind != UserKind.HUMAN:
        raise ValidationError({"user": ["Technical users cannot be members."]})
    rules.require_grant(actor, rules.organization_role_rights(role), "role")
    with transaction.atomic():
        existing = (
            OrganizationMembership.objects.select_for_update()
            .select_related("organization", "user")
            .filter(organization=organization, user=user)
            .first()
        )
        if existing is None:
            return _create_membership(actor, organization, user, role)
        _require_not_stronger(actor, organization, user, "role")
        return _change_role(actor, existing, role)


def change_member_role(
    *,
    actor: Principal,
    membership: OrganizationMembership,
    role: str,
    expected_version: int | None = None,
) -> OrganizationMembership:
    """Make a member an admin or an admin a member; the last admin stays an admin, and a
    demoted admin's personal tokens are revoked."""
    _validate_role(role)
    rules.require_grant(actor, rules.organization_role_rights(role), "role")
    with transaction.atomic():
        membership = _lock(membership, expected_version)
        rules.require_same_organization(actor, membership.organization_id)
        rules.require_manage_members(actor)
        _require_not_stronger(actor, membership.organization, membership.user, "role")
        return _change_role(actor, membership, role)


def remove_member(
    *, actor: Principal, membership: OrganizationMembership, expected_version: int | None = None
) -> None:
    """Remove a person from the organization and its groups, and revoke their personal tokens
    there (reason "owner removed"): adding them back restores none of them."""
    with transaction.atomic():
        membership = _lock(membership, expected_version)
        rules.require_same_organization(actor, membership.organization_id)
        rules.require_remove_members(actor)
        organization, user = membership.organization, membership.user
        _require_not_stronger(actor, organization, user, "membership")
        if membership.role == Role.ADMIN and not _other_admins(organization.pk, user.pk):
            raise ValidationError({"user": ["The organization's last admin cannot be removed."]})
        group_memberships = GroupMembership.objects.filter(
            user_id=user.pk, group__organization_id=organization.pk
        )
        groups = sorted(group_memberships.values_list("group__name", flat=True))
        group_memberships.delete()
        membership.delete()
        revoked = token_services.revoke_personal_tokens(
            actor=actor, organization_id=organization.pk, user_id=user.pk, reason=OWNER_REMOVED
        )
        changes = audit.diff({"role": membership.role, "groups": groups}, {})
        if revoked:
            changes["personal_tokens_revoked"] = {"before": None, "after": revoked}
        _record_member(actor, "member.removed", organization, user, changes)


# Groups --------------------------------------------------------------------------------------


def create_group(*, actor: Principal, organization: Organization, slug: str, name: str) -> Group:
    """Create a group in the organization (organization-wide principals only)."""
    rules.require_same_organization(actor, organization.pk)
    rules.require_create_group(actor)
    errors = _validate_slug_and_name(actor, slug, name)
    if not errors and organization.groups.filter(slug=slug).exists():
        errors["slug"] = [f"The slug {slug!r} is taken in this organization."]
    name = names.clean(name, label="A name", max_length=NAME_MAX_LENGTH).value
    if "name" not in errors and _group_name_taken(organization.pk, name):
        errors["name"] = [f"A group named {name!r}, or one that looks the same, already exists."]
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            group = Group.objects.create(organization=organization, slug=slug, name=name.strip())
            audit.record(
                actor=actor,
                action="group.created",
                organization=organization,
                group_id=group.pk,
                object_type="group",
                object_id=group.pk,
                object_repr=group.name,
                changes=audit.diff({}, {"slug": slug, "name": group.name}),
            )
    except IntegrityError:
        raise ValidationError(
            {"slug": [f"The slug {slug!r} is taken in this organization."]}
        ) from None
    return group


def update_group(
    *,
    actor: Principal,
    group: Group,
    name: str | None = None,
    slug: str | None = None,
    expected_version: int | None = None,
) -> Group:
    """Rename a group or change its slug (its admins or organization-wide principals)."""
    _require_visible_group(actor, group)
    rules.require_update_group(actor, group.pk)
    errors: dict[str, list[str]] = {}
    if name is not None:
        errors.update(_name_errors(actor, name))
        name = names.clean(name, label="A name", max_length=NAME_MAX_LENGTH).value
        if "name" not in errors and _group_name_taken(group.organization_id, name, group.pk):
            errors["name"] = [
                f"A group named {name!r}, or one that looks the same, already exists."
            ]
    if slug is not None:
        errors.update(_slug_errors(slug))
        if (
            "slug" not in errors
            and Group.objects.filter(organization_id=group.organization_id, slug=slug)
            .exclude(pk=group.pk)
            .exists()
        ):
            errors["slug"] = [f"The slug {slug!r} is taken in this organization."]
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            group = _lock(group, expected_version)
            before = {"name": group.name, "slug": group.slug}
            if name is not None:
                group.name = name.strip()
            if slug is not None:
                group.slug = slug
            changes = audit.diff(before, {"name": group.name, "slug": group.slug})
            if not changes:
                return group
            group.version += 1
            group.save(update_fields=["name", "slug", "version"])
            audit.record(
                actor=actor,
                action="group.updated",
                organization=group.organization,
                group_id=group.pk,
                object_type="group",
                object_id=group.pk,
                object_repr=group.name,
                changes=changes,
            )
    except IntegrityError:
        raise ValidationError(
            {"slug": [f"The slug {slug!r} is taken in this organization."]}
        ) from None
    return group


def delete_group(*, actor: Principal, group: Group, expected_version: int | None = None) -> None:
    """Delete a group, its memberships and its tokens (organization-wide principals only; each
    token is deleted through the token services, so a token stronger than the actor stops the
    whole deletion). Admins of the group who lose rights by it lose their personal tokens."""
    _require_visible_group(actor, group)
    rules.require_delete_group(actor)
    with transaction.atomic():
        group = _lock(group, expected_version)
        organization = group.organization
        for token in list(group.api_tokens.all()):
            token_services.delete_token(actor=actor, token=token)
        admins = [
            (membership.user, _rights_of(organization, membership.user))
            for membership in group.memberships.select_related("user").filter(role=Role.ADMIN)
        ]
        members = sorted(group.memberships.values_list("user__username", flat=True))
        changes = audit.diff({"name": group.name, "slug": group.slug, "members": members}, {})
        reason = GROUP_DELETED.format(group=group.name)
        group_id = group.pk
        group.delete()
        for user, before in admins:
            _revoke_if_rights_shrank(actor, organization, user, before, reason, {})
        audit.record(
            actor=actor,
            action="group.deleted",
            organization=organization,
            group_id=group_id,
            object_type="group",
            object_id=group_id,
            object_repr=group.name,
            changes=changes,
        )


# Group members -------------------------------------------------------------------------------


def _change_group_role(actor: Principal, membership: GroupMembership, role: str) -> GroupMembership:
    if membership.role == role:
        return membership
    group, user = membership.group, membership.user
    before_rights = _rights_of(group.organization, user)
    changes = audit.diff({"role": membership.role}, {"role": role, "group": group.name})
    membership.role = role
    membership.version += 1
    membership.save(update_fields=["role", "version"])
    reason = OWNER_LEFT_GROUP.format(group=group.name)
    _revoke_if_rights_shrank(actor, group.organization, user, before_rights, reason, changes)
    _record_member(actor, "group_member.role_changed", group.organization, user, changes, group)
    return membership


def _create_group_membership(
    actor: Principal, group: Group, user: User, role: str
) -> GroupMembership:
    membership = GroupMembership.objects.create(group=group, user=user, role=role)
    _record_member(
        actor,
        "group_member.added",
        group.organization,
        user,
        audit.diff({}, {"role": role, "group": group.name}),
        group=group,
    )
    return membership


def set_group_member(*, actor: Principal, group: Group, user: User, role: str) -> GroupMembership:
    """Add a member of the organization to a group, or change their role in it: the same checks
    as ``add_group_member`` and ``change_group_member_role``."""
    _require_visible_group(actor, group)
    rules.require_manage_group_members(actor, group.pk)
    _validate_role(role)
    if not OrganizationMembership.objects.filter(
        organization_id=group.organization_id, user=user
    ).exists():
        raise ValidationError({"user": ["Only members of the organization can join its groups."]})
    rules.require_grant(actor, rules.group_role_rights(role), "role")
    with transaction.atomic():
        existing = (
            GroupMembership.objects.select_for_update()
            .select_related("group__organization", "user")
            .filter(group=group, user=user)
            .first()
        )
        if existing is None:
            return _create_group_membership(actor, group, user, role)
        _require_not_stronger(actor, group.organization, user, "group role")
        return _change_group_role(actor, existing, role)


def add_group_member(
    *, actor: Principal, group: Group, user_id: int, role: str = Role.MEMBER
) -> GroupMembership:
    """Add a member of the organization to the group."""
    _require_visible_group(actor, group)
    rules.require_manage_group_members(actor, group.pk)
    _validate_role(role)
    membership = (
        OrganizationMembership.objects.filter(
            organization_id=group.organization_id, user_id=user_id
        )
        .select_related("user")
        .first()
    )
    if membership is None:
        raise ValidationError({"user": ["No such member of the organization."]})
    rules.require_grant(actor, rules.group_role_rights(role), "role")
    try:
        with transaction.atomic():
            group_membership = _create_group_membership(actor, group, membership.user, role)
    except IntegrityError:
        raise ValidationError(
            {"user": ["Already a member of this group; change their role instead."]}
        ) from None
    return group_membership


def change_group_member_role(
    *,
    actor: Principal,
    membership: GroupMembership,
    role: str,
    expected_version: int | None = None,
) -> GroupMembership:
    """Make a group member an admin of the group, or the other way round; an admin who loses
    rights by it loses their personal tokens."""
    _require_visible_group(actor, membership.group)
    _validate_role(role)
    rules.require_grant(actor, rules.group_role_rights(role), "role")
    with transaction.atomic():
        membership = _lock(membership, expected_version)
        rules.require_manage_group_members(actor, membership.group_id)
        _require_not_stronger(actor, membership.group.organization, membership.user, "group role")
        return _change_group_role(actor, membership, role)


def remove_group_member(
    *, actor: Principal, membership: GroupMembership, expected_version: int | None = None
) -> None:
    """Take a person out of a group; they stay a member of the organization. If they lose
    rights by it (a group admin), their personal tokens are revoked."""
    _require_visible_group(actor, membership.group)
    with transaction.atomic():
        membership = _lock(membership, expected_version)
        rules.require_remove_group_members(actor, membership.group_id)
        group, user = membership.group, membership.user
        before = _require_not_stronger(actor, group.organization, user, "group membership")
        membership.delete()
        changes = audit.diff({"role": membership.role, "group": group.name}, {})
        reason = OWNER_LEFT_GROUP.format(group=group.name)
        _revoke_if_rights_shrank(actor, group.organization, user, before, reason, changes)
        _record_member(
            actor, "group_member.removed", group.organization, user, changes, group=group
        )


# Invitations ---------------------------------------------------------------------------------

INVITATION_PURPOSE = "invitation"
PASSWORD_LENGTH = 20


def _invitation_event(
    actor: Principal, action: str, invitation: Invitation, changes: dict[str, Any]
) -> None:
    audit.record(
        actor=actor,
        action=action,
        organization=invitation.organization,
        object_type="invitation",
        object_id=invitation.pk,
        object_repr=invitation.addressee,
        changes=changes,
    )


def _clean_addressee(actor: Principal, email: str, username: str) -> tuple[str, str]:
    email, username = (email or "").strip(), (username or "").strip()
    pasted = token_services.pasted_token_errors(
        actor, {"email": ("An e-mail address", email), "username": ("A username", username)}
    )
    if pasted:
        raise ValidationError(pasted)
    if bool(email) == bool(username):
        raise ValidationError({"email": ["Give an e-mail address or a username, not both."]})
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise ValidationError({"email": ["Enter a valid e-mail address."]}) from None
        if len(email) > 254:
            raise ValidationError({"email": ["An e-mail address has at most 254 characters."]})
    if username and (len(username) > 150 or any(c.isspace() for c in username)):
        raise ValidationError({"username": ["Enter a username of at most 150 characters."]})
    return email, username


def _invitation_body(invitation: Invitation) -> str:
    organization = invitation.organization
    return (
        f"{invitation.invited_by_name} invited you to join {organization.name} on Keyward as "
        f"{'an admin' if invitation.role == Role.ADMIN else 'a member'}.\n\n"
        f"Sign in and open {settings.KEYWARD_CONSOLE_URL.rstrip('/')}/invitations/ to accept or "
        f"decline it. It expires on {invitation.expires_at:%Y-%m-%d %H:%M} UTC.\n\n"
        "If you have no Keyward account yet, ask your Keyward operator for one with this e-mail "
        "address; the invitation waits for it until it expires. If you did not expect this, "
        "ignore this message: nothing happens unless you accept.\n"
    )


def _notify_invited(invitation: Invitation) -> None:
    """E-mail the typed address only; a username invitation goes to that person's own address,
    which the inviting organization never sees."""
    if invitation.email:
        recipients = [invitation.email]
    else:
        person = User.objects.filter(
            username=invitation.username,
            kind=UserKind.HUMAN,
            is_active=True,
            date_joined__lte=invitation.created_at,
        ).first()
        recipients = [person.email] if person is not None and person.email else []
    if recipients:
        outbox.queue(
            to=recipients,
            subject=f"Invitation to join {invitation.organization.name} on Keyward",
            body=_invitation_body(invitation),
            purpose=INVITATION_PURPOSE,
        )


def _close(
    actor: Principal,
    invitation: Invitation,
    status: str,
    now: datetime,
    *,
    answered_by: User | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """End a pending invitation (locked by the caller) with its event."""
    invitation.status = status
    invitation.answered_at = now
    invitation.answered_by = answered_by
    invitation.version += 1
    invitation.save(update_fields=["status", "answered_at", "answered_by", "version"])
    changes = audit.diff({"status": InvitationStatus.PENDING}, {"status": status, **(extra or {})})
    _invitation_event(actor, f"invitation.{status}", invitation, changes)


def _mark_expired(actor: Principal, invitation: Invitation, now: datetime) -> None:
    _close(
        actor,
        invitation,
        InvitationStatus.EXPIRED,
        now,
        extra={"expired_at": invitation.expires_at},
    )


def invite(
    *,
    actor: Principal,
    organization: Organization,
    email: str = "",
    username: str = "",
    role: str = Role.MEMBER,
    now: datetime | None = None,
) -> Invitation:
    """Invite an e-mail address or a username to the organization with a role.

    The answer is the same whether or not anyone has that address or username; the invitation
    e-mail goes only to the typed address. Nobody invites with a role they could not grant.
    """
    rules.require_same_organization(actor, organization.pk)
    rules.require_invite(actor)
    _validate_role(role)
    email, username = _clean_addressee(actor, email, username)
    rules.require_grant(actor, rules.organization_role_rights(role), "role")
    now = now or timezone.now()
    field = "email" if email else "username"
    same = (
        Q(email__iexact=email) & ~Q(email="") if email else Q(username=username) & ~Q(username="")
    )
    taken = ValidationError(
        {field: [f"{email or username} already has a pending invitation to {organization.name}."]}
    )
    try:
        with transaction.atomic():
            for stale in Invitation.objects.select_for_update().filter(
                same, organization=organization, status=InvitationStatus.PENDING
            ):
                if not stale.is_expired(now):
                    raise taken
                _mark_expired(actor, stale, now)
            invitation = Invitation.objects.create(
                organization=organization,
                email=email,
                username=username,
                role=role,
                invited_by=actor.user if actor.acts_as_person else None,
                invited_by_name=actor.name[:150],
                created_at=now,
                expires_at=now + INVITATION_LIFETIME,
            )
            _invitation_event(
                actor,
                "invitation.created",
                invitation,
                audit.diff(
                    {},
                    {
                        field: email or username,
                        "role": role,
                        "status": InvitationStatus.PENDING,
                        "expires_at": invitation.expires_at,
                    },
                ),
            )
            _notify_invited(invitation)
    except IntegrityError:
        raise taken from None
    return invitation


def _lock_invitation(invitation: Invitation) -> Invitation:
    try:
        return (
            Invitation.objects.select_for_update()
            .select_related("organization")
            .get(pk=invitation.pk)
        )
    except Invitation.DoesNotExist:
        raise NotFound("No such invitation.") from None


def _answer(
    *, actor: Principal, invitation: Invitation, accept: bool, now: datetime | None
) -> Invitation:
    now = now or timezone.now()
    rules.require_answer_invitation(actor, invitation)
    with transaction.atomic():
        # Re-read under a lock: the organization still exists (deleting it deletes its
        # invitations), the invitation is still pending and not expired.
        invitation = _lock_invitation(invitation)
        rules.require_answer_invitation(actor, invitation)
        expired = invitation.status == InvitationStatus.PENDING and invitation.is_expired(now)
        if expired:
            _mark_expired(actor, invitation, now)
    if expired:
        raise ValidationError(
            {"invitation": [f"This invitation expired on {invitation.expires_at:%Y-%m-%d}."]}
        )
    with transaction.atomic():
        invitation = _lock_invitation(invitation)
        if invitation.status != InvitationStatus.PENDING or invitation.is_expired(now):
            raise ValidationError(
                {"invitation": [f"This invitation is {invitation.display_status(now)}."]}
            )
        user = actor.user
        assert user is not None  # require_answer_invitation: the invited person
        organization = invitation.organization
        if accept:
            if OrganizationMembership.objects.filter(organization=organization, user=user).exists():
                raise ValidationError(
                    {"invitation": [f"You are already a member of {organization.name}."]}
                )
            _create_membership(actor, organization, user, invitation.role)
        status = InvitationStatus.ACCEPTED if accept else InvitationStatus.DECLINED
        extra = {"user": user.username} if accept else None
        _close(actor, invitation, status, now, answered_by=user, extra=extra)
    return invitation


def accept_invitation(
    *, actor: Principal, invitation: Invitation, now: datetime | None = None
) -> Invitation:
    """Join the organization with the invited role: the invited person only, while the
    invitation is pending and unexpired."""
    return _answer(actor=actor, invitation=invitation, accept=True, now=now)


def decline_invitation(
    *, actor: Principal, invitation: Invitation, now: datetime | None = None
) -> Invitation:
    """Say no; the organization sees that it was declined."""
    return _answer(actor=actor, invitation=invitation, accept=False, now=now)


def withdraw_invitation(
    *,
    actor: Principal,
    invitation: Invitation,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Invitation:
    """Take back a pending invitation (those who invite)."""
    now = now or timezone.now()
    rules.require_withdraw_invitation(actor, invitation)
    with transaction.atomic():
        invitation = _lock(invitation, expected_version)
        if invitation.status != InvitationStatus.PENDING or invitation.is_expired(now):
            raise ValidationError(
                {"invitation": [f"This invitation is {invitation.display_status(now)} already."]}
            )
        _close(actor, invitation, InvitationStatus.WITHDRAWN, now)
    return invitation


def expire_invitations(*, actor: Principal, now: datetime | None = None) -> int:
    """Mark pending invitations past their expiry as expired, each with its event."""
    now = now or timezone.now()
    expired = 0
    overdue = Invitation.objects.filter(status=InvitationStatus.PENDING, expires_at__lte=now)
    for invitation_id in overdue.values_list("pk", flat=True).iterator():
        with transaction.atomic():
            invitation = (
                Invitation.objects.select_for_update()
                .select_related("organization")
                .filter(pk=invitation_id, status=InvitationStatus.PENDING)
                .first()
            )
            if invitation is not None and invitation.is_expired(now):
                _mark_expired(actor, invitation, now)
                expired += 1
    return expired


# People created by their organization ----------------------------------------------------------


@dataclass(frozen=True)
class CreatedPerson:
    """A new person and the password they sign in with first, shown this once."""

    membership: OrganizationMembership
    password: str = field(repr=False)


def create_person(
    *,
    actor: Principal,
    organization: Organization,
    username: str,
    display_name: str = "",
    role: str = Role.MEMBER,
) -> CreatedPerson:
    """Create a brand-new person in the organization with a random password, where the
    operator allows it (``KEYWARD_ALLOW_ORG_USER_CREATION``).

    No e-mail address is set: invitations match people by e-mail, and an address typed here by
    one organization must not collect another organization's invitations.
    """
    rules.require_same_organization(actor, organization.pk)
    rules.require_create_people(actor, allowed_by_settings=settings.KEYWARD_ALLOW_ORG_USER_CREATION)
    _validate_role(role)
    username = (username or "").strip()
    errors: dict[str, list[str]] = {}
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError:
        errors["username"] = ["Use letters, digits and @ . + - _ only."]
    if not username or len(username) > 150:
        errors["username"] = ["Give a username of at most 150 characters."]
    # A name follows the one rule for names (control and invisible characters, a pasted
    # token treated as leaked); the username, a login, is checked for a token separately.
    checked_name = token_services.checked_text(
        actor, display_name, label="A name", max_length=150, required=False
    )
    display_name = checked_name.value
    if checked_name.errors:
        errors["display_name"] = checked_name.errors
    errors.update(token_services.pasted_token_errors(actor, {"username": ("A username", username)}))
    if errors:
        raise ValidationError(errors)
    rules.require_grant(actor, rules.organization_role_rights(role), "role")
    password = secrets.token_urlsafe(PASSWORD_LENGTH)
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                username=username, password=password, display_name=display_name.strip()
            )
            audit.record(
                actor=actor,
                action="user.created",
                organization=organization,
                object_type="user",
                object_id=user.pk,
                object_repr=user.username,
                changes=audit.diff({}, {"username": username, "display_name": user.display_name}),
            )
            membership = _create_membership(actor, organization, user, role)
    except IntegrityError:
        raise ValidationError({"username": [f"The username {username} is taken."]}) from None
    return CreatedPerson(membership=membership, password=password)

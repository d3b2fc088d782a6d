"""Changes to organizations, groups and memberships: rights, audit, one transaction each."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import IntegrityError, models, transaction

from orgs import audit
from orgs.errors import Forbidden, NotFound, VersionConflict
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
from policies.models import SecurityPolicy
from tokens import permissions as catalog

NAME_MAX_LENGTH = 100
SLUG_MAX_LENGTH = 50

Versioned = TypeVar("Versioned", bound=models.Model)


# Helpers -------------------------------------------------------------------------------------


def _validate_slug_and_name(slug: str, name: str) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    errors.update(_slug_errors(slug))
    errors.update(_name_errors(name))
    return errors


def _slug_errors(slug: str) -> dict[str, list[str]]:
    if len(slug) > SLUG_MAX_LENGTH:
        return {"slug": [f"A slug has at most {SLUG_MAX_LENGTH} characters."]}
    try:
        validate_slug(slug)
    except ValidationError:
        return {"slug": ["Use letters, digits, hyphens and underscores only."]}
    return {}


def _name_errors(name: str) -> dict[str, list[str]]:
    if not name.strip():
        return {"name": ["Give it a name."]}
    if len(name.strip()) > NAME_MAX_LENGTH:
        return {"name": [f"A name has at most {NAME_MAX_LENGTH} characters."]}
    return {}


def _require_permission(actor: Principal, permission: str) -> None:
    if not actor.has_permission(permission):
        raise Forbidden(f"This needs the permission {permission}.", permission=permission)


def _require_org_admin(actor: Principal, message: str) -> None:
    if not actor.is_org_admin:
        raise Forbidden(message)


def _require_group_admin(actor: Principal, group: Group) -> None:
    if not (actor.is_org_admin or actor.administers_group(group.pk)):
        raise Forbidden("Only admins of this group (or of the organization) may do this.")


def _require_in_organization(actor: Principal, organization_id: int) -> None:
    """Objects of another organization do not exist for the actor."""
    if actor.organization is not None and actor.organization.pk != organization_id:
        raise NotFound("Not found.")


def _require_visible_group(actor: Principal, group: Group) -> None:
    if not Group.objects.visible_to(actor).filter(pk=group.pk).exists():
        raise NotFound("No such group.")


def _lock(instance: Versioned, expected_version: int | None) -> Versioned:
    """Reload the row under a lock and compare the caller's version with it."""
    try:
        locked = type(instance).objects.select_for_update().get(pk=instance.pk)
    except type(instance).DoesNotExist:
        raise NotFound("Not found.") from None
    if expected_version is not None and locked.version != expected_version:
        raise VersionConflict(locked.version)
    return locked


def _rights_of_org_role(role: str) -> frozenset[str]:
    return catalog.ALL if role == Role.ADMIN else catalog.MEMBER_RIGHTS


def _rights_of_group_role(role: str) -> frozenset[str]:
    return catalog.valid_in(catalog.GROUP) if role == Role.ADMIN else frozenset()


def _check_grant(actor: Principal, granted: Iterable[str], field_name: str) -> None:
    """Nobody hands out, through a role, a permission they do not hold."""
    missing = sorted(set(granted) - actor.permissions)
    if missing:
        raise ValidationError(
            {field_name: [f"You cannot grant permissions you do not hold: {', '.join(missing)}."]}
        )


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
    if not actor.is_operator:
        raise Forbidden("Only operators create organizations.")
    errors = _validate_slug_and_name(slug, name)
    if not errors and Organization.objects.filter(slug=slug).exists():
        errors["slug"] = [f"The slug {slug!r} is taken."]
    if admin is not None and admin.kind != UserKind.HUMAN:
        errors["admin"] = ["A technical user cannot administer an organization."]
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            organization = Organization.objects.create(slug=slug, name=name.strip())
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
                _add_member(actor, organization, admin, Role.ADMIN)
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
    _require_in_organization(actor, organization.pk)
    _require_permission(actor, "api.organizations.write")
    _require_org_admin(actor, "Only organization admins rename the organization.")
    errors = _name_errors(name)
    if errors:
        raise ValidationError(errors)
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


def _add_member(actor: Principal, organization: Organization, user: User, role: str) -> None:
    membership, created = OrganizationMembership.objects.get_or_create(
        organization=organization, user=user, defaults={"role": role}
    )
    before = {} if created else {"role": membership.role}
    if not created and membership.role != role:
        membership.role = role
        membership.version += 1
        membership.save(update_fields=["role", "version"])
    _record_member(
        actor,
        "member.added" if created else "member.role_changed",
        organization,
        user,
        audit.diff(before, {"role": role}),
    )


def set_member(*, actor: Principal, organization: Organization, user: User, role: str) -> None:
    """Add a person to the organization, or change their role (organization admins only)."""
    _require_in_organization(actor, organization.pk)
    _require_permission(actor, "api.users.write")
    _require_org_admin(actor, "Only organization admins manage members.")
    _validate_role(role)
    if user.kind != UserKind.HUMAN:
        raise ValidationError({"user": ["Technical users cannot be members."]})
    with transaction.atomic():
        _add_member(actor, organization, user, role)


def add_member(
    *, actor: Principal, organization: Organization, username: str, role: str = Role.MEMBER
) -> OrganizationMembership:
    """Add an existing person, found by username, to the organization."""
    _require_in_organization(actor, organization.pk)
    _require_permission(actor, "api.users.write")
    _require_org_admin(actor, "Only organization admins add members.")
    _validate_role(role)
    user = User.objects.filter(username=username, kind=UserKind.HUMAN, is_active=True).first()
    if user is None:
        raise ValidationError({"username": ["No such person."]})
    _check_grant(actor, _rights_of_org_role(role), "role")
    try:
        with transaction.atomic():
            membership = OrganizationMembership.objects.create(
                organization=organization, user=user, role=role
            )
            _record_member(
                actor, "member.added", organization, user, audit.diff({}, {"role": role})
            )
    except IntegrityError:
        raise ValidationError(
            {"username": [f"{username} is already a member; change their role instead."]}
        ) from None
    return membership


def change_member_role(
    *,
    actor: Principal,
    membership: OrganizationMembership,
    role: str,
    expected_version: int | None = None,
) -> OrganizationMembership:
    """Make a member an admin or an admin a member; the last admin stays an admin."""
    _require_in_organization(actor, membership.organization_id)
    _require_permission(actor, "api.users.write")
    _require_org_admin(actor, "Only organization admins change roles.")
    _validate_role(role)
    _check_grant(actor, _rights_of_org_role(role), "role")
    with transaction.atomic():
        membership = _lock(membership, expected_version)
        if membership.role == role:
            return membership
        if role != Role.ADMIN and not _other_admins(membership.organization_id, membership.user_id):
            raise ValidationError({"role": ["The organization needs at least one admin."]})
        before = {"role": membership.role}
        membership.role = role
        membership.version += 1
        membership.save(update_fields=["role", "version"])
        _record_member(
            actor,
            "member.role_changed",
            membership.organization,
            membership.user,
            audit.diff(before, {"role": role}),
        )
    return membership


def remove_member(
    *, actor: Principal, membership: OrganizationMembership, expected_version: int | None = None
) -> None:
    """Remove a person from the organization and its groups; their personal tokens stop working
    (authentication requires the owner's membership)."""
    _require_in_organization(actor, membership.organization_id)
    _require_permission(actor, "api.users.delete")
    _require_org_admin(actor, "Only organization admins remove members.")
    with transaction.atomic():
        membership = _lock(membership, expected_version)
        if membership.role == Role.ADMIN and not _other_admins(
            membership.organization_id, membership.user_id
        ):
            raise ValidationError({"user": ["The organization's last admin cannot be removed."]})
        group_memberships = GroupMembership.objects.filter(
            user_id=membership.user_id, group__organization_id=membership.organization_id
        )
        groups = sorted(group_memberships.values_list("group__name", flat=True))
        group_memberships.delete()
        membership.delete()
        _record_member(
            actor,
            "member.removed",
            membership.organization,
            membership.user,
            audit.diff({"role": membership.role, "groups": groups}, {}),
        )


# Groups --------------------------------------------------------------------------------------


def create_group(*, actor: Principal, organization: Organization, slug: str, name: str) -> Group:
    """Create a group in the organization (organization admins only)."""
    _require_in_organization(actor, organization.pk)
    _require_permission(actor, "api.groups.write")
    _require_org_admin(actor, "Only organization admins create groups.")
    errors = _validate_slug_and_name(slug, name)
    if not errors and organization.groups.filter(slug=slug).exists():
        errors["slug"] = [f"The slug {slug!r} is taken in this organization."]
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
    """Rename a group or change its slug (its admins or organization admins)."""
    _require_visible_group(actor, group)
    _require_permission(actor, "api.groups.write")
    _require_group_admin(actor, group)
    errors: dict[str, list[str]] = {}
    if name is not None:
        errors.update(_name_errors(name))
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
    """Delete a group, its memberships and its tokens (organization admins only)."""
    # Imported here: token services import this app's models, and the group's tokens are
    # deleted through them so that each deletion is checked and audited.
    from tokens.services import delete_token

    _require_visible_group(actor, group)
    _require_permission(actor, "api.groups.delete")
    _require_org_admin(actor, "Only organization admins delete groups.")
    with transaction.atomic():
        group = _lock(group, expected_version)
        for token in list(group.api_tokens.all()):
            delete_token(actor=actor, token=token)
        members = sorted(group.memberships.values_list("user__username", flat=True))
        audit.record(
            actor=actor,
            action="group.deleted",
            organization=group.organization,
            group_id=group.pk,
            object_type="group",
            object_id=group.pk,
            object_repr=group.name,
            changes=audit.diff({"name": group.name, "slug": group.slug, "members": members}, {}),
        )
        group.delete()


# Group members -------------------------------------------------------------------------------


def set_group_member(*, actor: Principal, group: Group, user: User, role: str) -> None:
    """Add a member of the organization to a group, or change their role in it."""
    _require_visible_group(actor, group)
    _require_permission(actor, "api.users.write")
    _require_group_admin(actor, group)
    _validate_role(role)
    if not OrganizationMembership.objects.filter(
        organization_id=group.organization_id, user=user
    ).exists():
        raise ValidationError({"user": ["Only members of the organization can join its groups."]})
    with transaction.atomic():
        membership, created = GroupMembership.objects.get_or_create(
            group=group, user=user, defaults={"role": role}
        )
        before = {} if created else {"role": membership.role}
        if not created and membership.role != role:
            membership.role = role
            membership.version += 1
            membership.save(update_fields=["role", "version"])
        _record_member(
            actor,
            "group_member.added" if created else "group_member.role_changed",
            group.organization,
            user,
            audit.diff(before, {"role": role, "group": group.name}),
            group=group,
        )


def add_group_member(
    *, actor: Principal, group: Group, user_id: int, role: str = Role.MEMBER
) -> GroupMembership:
    """Add a member of the organization to the group."""
    _require_visible_group(actor, group)
    _require_permission(actor, "api.users.write")
    _require_group_admin(actor, group)
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
    _check_grant(actor, _rights_of_group_role(role), "role")
    try:
        with transaction.atomic():
            group_membership = GroupMembership.objects.create(
                group=group, user=membership.user, role=role
            )
            _record_member(
                actor,
                "group_member.added",
                group.organization,
                membership.user,
                audit.diff({}, {"role": role, "group": group.name}),
                group=group,
            )
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
    """Make a group member an admin of the group, or the other way round."""
    _require_visible_group(actor, membership.group)
    _require_permission(actor, "api.users.write")
    _require_group_admin(actor, membership.group)
    _validate_role(role)
    _check_grant(actor, _rights_of_group_role(role), "role")
    with transaction.atomic():
        membership = _lock(membership, expected_version)
        if membership.role == role:
            return membership
        before = {"role": membership.role}
        membership.role = role
        membership.version += 1
        membership.save(update_fields=["role", "version"])
        _record_member(
            actor,
            "group_member.role_changed",
            membership.group.organization,
            membership.user,
            audit.diff(before, {"role": role, "group": membership.group.name}),
            group=membership.group,
        )
    return membership


def remove_group_member(
    *, actor: Principal, membership: GroupMembership, expected_version: int | None = None
) -> None:
    """Take a person out of a group; they stay a member of the organization."""
    _require_visible_group(actor, membership.group)
    _require_permission(actor, "api.users.delete")
    _require_group_admin(actor, membership.group)
    with transaction.atomic():
        membership = _lock(membership, expected_version)
        group = membership.group
        membership.delete()
        _record_member(
            actor,
            "group_member.removed",
            group.organization,
            membership.user,
            audit.diff({"role": membership.role, "group": group.name}, {}),
            group=group,
        )

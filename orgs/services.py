"""Changes to organizations, groups and memberships: rights, audit, one transaction each."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import IntegrityError, transaction

from orgs import audit
from orgs.errors import Forbidden
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


def _validate_slug_and_name(slug: str, name: str) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    try:
        validate_slug(slug)
    except ValidationError:
        errors["slug"] = ["Use letters, digits, hyphens and underscores only."]
    if len(slug) > 50:
        errors["slug"] = ["A slug has at most 50 characters."]
    if not name.strip():
        errors["name"] = ["Give it a name."]
    elif len(name.strip()) > 100:
        errors["name"] = ["A name has at most 100 characters."]
    return errors


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


def _add_member(actor: Principal, organization: Organization, user: User, role: str) -> None:
    membership, created = OrganizationMembership.objects.get_or_create(
        organization=organization, user=user, defaults={"role": role}
    )
    before = {} if created else {"role": membership.role}
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    audit.record(
        actor=actor,
        action="member.added" if created else "member.role_changed",
        organization=organization,
        object_type="user",
        object_id=user.pk,
        object_repr=user.username,
        changes=audit.diff(before, {"role": role}),
    )


def set_member(*, actor: Principal, organization: Organization, user: User, role: str) -> None:
    """Add a person to the organization, or change their role (organization admins only)."""
    if not actor.is_org_admin:
        raise Forbidden("Only organization admins manage members.", permission="api.users.write")
    if role not in Role.values:
        raise ValidationError({"role": ["Choose admin or member."]})
    if user.kind != UserKind.HUMAN:
        raise ValidationError({"user": ["Technical users cannot be members."]})
    with transaction.atomic():
        _add_member(actor, organization, user, role)


def create_group(*, actor: Principal, organization: Organization, slug: str, name: str) -> Group:
    """Create a group in the organization (organization admins only)."""
    if not actor.is_org_admin:
        raise Forbidden("Only organization admins create groups.", permission="api.groups.write")
    errors = _validate_slug_and_name(slug, name)
    if not errors and organization.groups.filter(slug=slug).exists():
        errors["slug"] = [f"The slug {slug!r} is taken in this organization."]
    if errors:
        raise ValidationError(errors)
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
    return group


def set_group_member(*, actor: Principal, group: Group, user: User, role: str) -> None:
    """Add a member of the organization to a group, or change their role in it."""
    if not (actor.is_org_admin or actor.administers_group(group.pk)):
        raise Forbidden(
            "Only admins of this group manage its members.", permission="api.users.write"
        )
    if role not in Role.values:
        raise ValidationError({"role": ["Choose admin or member."]})
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
            membership.save(update_fields=["role"])
        audit.record(
            actor=actor,
            action="group_member.added" if created else "group_member.role_changed",
            organization=group.organization,
            group_id=group.pk,
            object_type="user",
            object_id=user.pk,
            object_repr=user.username,
            changes=audit.diff(before, {"role": role, "group": group.name}),
        )

"""Principals loaded from the database: the facts ``access.principal.Principal`` reasons about.

Every service takes a Principal first; every visibility query starts from one.
"""

from __future__ import annotations

from collections.abc import Mapping

from access.principal import OPERATOR_COMMAND_LINE
from access.principal import Principal as BasePrincipal
from orgs.models import GroupMembership, Organization, OrganizationMembership, User

__all__ = ["OPERATOR_COMMAND_LINE", "Principal"]


class Principal(BasePrincipal):
    """A principal whose group memberships are read from the database when first asked for."""

    def _load_group_roles(self) -> Mapping[int, str]:
        return dict(
            GroupMembership.objects.filter(
                user=self.user, group__organization=self.organization
            ).values_list("group_id", "role")
        )

    @classmethod
    def for_member(
        cls, user: User, organization: Organization, *, address: str | None = None
    ) -> Principal:
        """A person acting in an organization; their role is read now."""
        role = (
            OrganizationMembership.objects.filter(user=user, organization=organization)
            .values_list("role", flat=True)
            .first()
        )
        return cls(user=user, organization=organization, org_role=role, address=address)

    @classmethod
    def operator(
        cls,
        *,
        user: User | None = None,
        organization: Organization | None = None,
        label: str = OPERATOR_COMMAND_LINE,
        address: str | None = None,
    ) -> Principal:
        """Someone with the keys to the system: a staff user in admin, or the command line."""
        return cls(
            user=user,
            organization=organization,
            is_operator=True,
            operator_label=label if user is None else f"{user.username} (admin)",
            address=address,
        )

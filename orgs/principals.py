"""Who is acting: a person in the console, a bearer token, or an operator.

Every service takes a Principal first; every visibility query starts from one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from orgs.models import GroupMembership, Organization, OrganizationMembership, Role, User
from tokens import permissions as catalog

if TYPE_CHECKING:
    from tokens.models import ApiToken

OPERATOR_COMMAND_LINE = "command line"


@dataclass(eq=False)
class Principal:
    """An actor within one organization (or, for operators, possibly across all of them)."""

    user: User | None
    organization: Organization | None
    org_role: str | None = None
    token: ApiToken | None = None
    is_operator: bool = False
    operator_label: str = ""
    address: str | None = None
    # Filled by bearer authentication from its one query, so no second query is needed.
    owner_is_group_admin: bool | None = field(default=None, repr=False)

    # Constructors -------------------------------------------------------------------------

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

    # What it is ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        if self.is_operator:
            return self.operator_label
        return self.user.name if self.user else "anonymous"

    @property
    def kind(self) -> str:
        if self.is_operator:
            return "operator"
        return self.user.kind if self.user else "anonymous"

    @property
    def is_member(self) -> bool:
        return self.org_role is not None

    @property
    def is_org_admin(self) -> bool:
        """Holds organization-wide rights: an org admin, an org token, or an operator."""
        if self.is_operator:
            return True
        if self.token is not None and self.token.scope == "organization":
            return True
        if self.token is not None and self.token.scope == "group":
            return False
        return self.org_role == Role.ADMIN

    @cached_property
    def administered_group_ids(self) -> frozenset[int]:
        """Groups whose tokens this principal manages."""
        if self.token is not None and self.token.scope == "group":
            return frozenset({self.token.group_id})
        if self.is_org_admin:
            if self.organization is None:
                return frozenset()
            return frozenset(self.organization.groups.values_list("id", flat=True))
        if self.user is None or self.organization is None:
            return frozenset()
        return frozenset(
            GroupMembership.objects.filter(
                user=self.user, role=Role.ADMIN, group__organization=self.organization
            ).values_list("group_id", flat=True)
        )

    def administers_group(self, group_id: int) -> bool:
        return group_id in self.administered_group_ids

    @cached_property
    def human_rights(self) -> frozenset[str]:
        """What the person behind this principal may do in the organization right now."""
        if self.org_role == Role.ADMIN:
            return catalog.ALL
        if self.org_role == Role.MEMBER:
            is_group_admin = self.owner_is_group_admin
            if is_group_admin is None:
                is_group_admin = bool(self.administered_group_ids)
            if is_group_admin:
                return catalog.MEMBER_RIGHTS | catalog.valid_in(catalog.GROUP)
            return catalog.MEMBER_RIGHTS
        return frozenset()

    @cached_property
    def permissions(self) -> frozenset[str]:
        """Effective permissions: a token's own, capped by its owner's rights for personal ones."""
        if self.is_operator:
            return catalog.ALL
        if self.token is None:
            return self.human_rights
        granted = self.token.granted_permissions()
        if self.token.scope == "personal":
            return granted & self.human_rights
        return granted

    def has_permission(self, name: str) -> bool:
        return name in self.permissions

"""Who is acting: a person in the console, a bearer token, or an operator.

A Principal holds facts (the user, the organization, the person's role, the token) and derives
from them, here and nowhere else, what it holds: its effective permissions and its reach (the
whole organization, some groups, or only its owner's personal tokens). Loading the facts from the
database is ``orgs.principals``' job; this module imports no model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from access import catalog

if TYPE_CHECKING:
    from orgs.models import Organization, User
    from tokens.models import ApiToken

OPERATOR_COMMAND_LINE = "command line"


@dataclass(eq=False)
class Principal:
    """An actor within one organization (or, for operators, possibly across all of them)."""

    user: User | None
    organization: Organization | None
    # The person's role in the organization: a human's own, a personal token's owner's.
    org_role: str | None = None
    token: ApiToken | None = None
    is_operator: bool = False
    operator_label: str = ""
    address: str | None = None
    # Filled by bearer authentication from its one query, so that a personal token's rights
    # need no second query unless group-level reach is asked for.
    owner_is_group_admin: bool | None = field(default=None, repr=False)

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
    def token_scope(self) -> str | None:
        return self.token.scope if self.token is not None else None

    @property
    def acts_as_person(self) -> bool:
        """A human in the console, or one of their personal tokens acting as them."""
        return not self.is_operator and self.token_scope in (None, catalog.PERSONAL)

    @property
    def is_member(self) -> bool:
        """The person behind the principal belongs to the organization."""
        return self.acts_as_person and self.org_role is not None

    # Reach --------------------------------------------------------------------------------

    @property
    def organization_wide(self) -> bool:
        """Reaches every object of the organization: an operator, an organization token, or a
        person who is an organization admin (in the console or through a personal token)."""
        if self.is_operator:
            return True
        if self.token_scope == catalog.ORGANIZATION:
            return True
        return self.acts_as_person and self.org_role == catalog.ADMIN_ROLE

    def _load_group_roles(self) -> Mapping[int, str]:
        """The person's group memberships in the organization: group id -> role. Loading from
        the database is a subclass's job (``orgs.principals``)."""
        return {}

    @cached_property
    def group_roles(self) -> Mapping[int, str]:
        """The groups the person behind the principal belongs to, with their role in each."""
        if not self.is_member or self.user is None or self.organization is None:
            return {}
        return self._load_group_roles()

    @cached_property
    def administered_group_ids(self) -> frozenset[int]:
        """Groups this principal manages by name (organization-wide reach covers all groups
        without listing them: ask ``manages_group``)."""
        if self.token_scope == catalog.GROUP:
            assert self.token is not None
            group_id = self.token.group_id
            return frozenset() if group_id is None else frozenset({group_id})
        return frozenset(
            group_id for group_id, role in self.group_roles.items() if role == catalog.ADMIN_ROLE
        )

    @property
    def member_group_ids(self) -> frozenset[int]:
        """Groups the principal belongs to: a group token's own, a person's memberships."""
        if self.token_scope == catalog.GROUP:
            return self.administered_group_ids
        return frozenset(self.group_roles)

    def manages_group(self, group_id: int | None) -> bool:
        return group_id is not None and (
            self.organization_wide or group_id in self.administered_group_ids
        )

    @property
    def administers_any_group(self) -> bool:
        if self.owner_is_group_admin is not None and self.token_scope == catalog.PERSONAL:
            return self.owner_is_group_admin
        return bool(self.administered_group_ids)

    # Permissions --------------------------------------------------------------------------

    @cached_property
    def human_rights(self) -> frozenset[str]:
        """What the person behind this principal may do in the organization right now."""
        if not self.acts_as_person:
            return frozenset()
        if self.org_role == catalog.ADMIN_ROLE:
            return catalog.ALL
        if self.org_role == catalog.MEMBER_ROLE:
            if self.administers_any_group:
                return catalog.HUMAN_MEMBER | catalog.GROUP_ADMIN
            return catalog.HUMAN_MEMBER
        return frozenset()

    @cached_property
    def permissions(self) -> frozenset[str]:
        """Effective permissions: a token's own grant, a personal token's capped by its owner's
        rights at this moment, a person's by their role, an operator's all."""
        if self.is_operator:
            return catalog.ALL
        if self.token is None:
            return self.human_rights
        granted = self.token.granted_permissions()
        if self.token.scope == catalog.PERSONAL:
            return granted & self.human_rights
        return granted

    def holds(self, permission: str) -> bool:
        return permission in self.permissions

"""The permission catalog: every ``api.<resource>.<action>`` name, what it allows, where it
applies, and the permission sets that roles stand for.

Plain data and a few lookups; every other module asks this one.
"""

from __future__ import annotations

from dataclasses import dataclass

ORGANIZATION = "organization"
GROUP = "group"
PERSONAL = "personal"
ALL_SCOPES = (ORGANIZATION, GROUP, PERSONAL)

ADMIN_ROLE = "admin"
MEMBER_ROLE = "member"
CUSTOM_ROLE = "custom"


@dataclass(frozen=True)
class Permission:
    name: str
    description: str
    scopes: tuple[str, ...]

    @property
    def resource(self) -> str:
        return self.name.split(".")[1]

    @property
    def action(self) -> str:
        return self.name.split(".")[2]


_G = (ORGANIZATION, GROUP, PERSONAL)  # meaningful for group tokens too
_O = (ORGANIZATION, PERSONAL)  # organization-wide only

CATALOG: tuple[Permission, ...] = (
    Permission("api.organizations.read", "Read the organization's name and settings.", _G),
    Permission("api.organizations.write", "Rename the organization and change its settings.", _O),
    Permission("api.groups.read", "List groups and read their details.", _G),
    Permission("api.groups.write", "Create groups and rename them.", _G),
    Permission("api.groups.delete", "Delete groups.", _O),
    Permission("api.users.read", "List members and their roles.", _G),
    Permission("api.users.write", "Add members and change their roles.", _G),
    Permission("api.users.delete", "Remove members.", _G),
    Permission("api.api-tokens.read", "List API tokens and read their details.", _G),
    Permission(
        "api.api-tokens.write",
        "Create, regenerate, revoke and restore API tokens and edit their permissions.",
        _G,
    ),
    Permission("api.api-tokens.delete", "Delete API tokens for good.", _G),
    Permission("api.ip-filters.read", "List IP filters and test addresses against them.", _G),
    Permission("api.ip-filters.write", "Create and edit IP filters.", _O),
    Permission("api.ip-filters.delete", "Delete IP filters.", _O),
    Permission("api.security-policies.read", "Read the security policy.", _G),
    Permission("api.security-policies.write", "Change the security policy.", _O),
    Permission("api.audit-events.read", "Read the audit log.", _G),
    Permission("api.usage.read", "Read token usage figures.", _G),
    Permission("api.webhooks.read", "List webhook endpoints and their deliveries.", _O),
    Permission(
        "api.webhooks.write",
        "Create and edit webhook endpoints, rotate their secrets, send test events, redeliver.",
        _O,
    ),
    Permission("api.webhooks.delete", "Delete webhook endpoints.", _O),
)

BY_NAME: dict[str, Permission] = {permission.name: permission for permission in CATALOG}
ALL: frozenset[str] = frozenset(BY_NAME)

# What the member role reads (product document 003 keeps the roster, the organization's
# settings and the audit log to admins): tokens, their usage, groups, IP filters, the policy.
MEMBER_READS: frozenset[str] = frozenset(
    {
        "api.api-tokens.read",
        "api.usage.read",
        "api.groups.read",
        "api.ip-filters.read",
        "api.security-policies.read",
    }
)
# A person who is a member of an organization: the member role's reads, and managing their own
# personal tokens (visibility keeps them to their own).
HUMAN_MEMBER: frozenset[str] = MEMBER_READS | {"api.api-tokens.write", "api.api-tokens.delete"}


def valid_in(scope: str) -> frozenset[str]:
    """Names of the permissions that mean something for a token of this scope."""
    return frozenset(p.name for p in CATALOG if scope in p.scopes)


# An admin of a group, human or token: everything a group token can hold, inside that group.
GROUP_ADMIN: frozenset[str] = valid_in(GROUP)


def for_role(role: str, scope: str, custom: list[str] | tuple[str, ...] = ()) -> frozenset[str]:
    """Resolve a role to permissions at the time of asking, so ``admin`` covers new ones."""
    valid = valid_in(scope)
    if role == ADMIN_ROLE:
        return valid
    if role == MEMBER_ROLE:
        return MEMBER_READS & valid
    return frozenset(custom) & valid


def grouped(scope: str | None = None) -> list[tuple[str, list[Permission]]]:
    """The catalog grouped by resource, in catalog order, for pickers."""
    groups: dict[str, list[Permission]] = {}
    for permission in CATALOG:
        if scope is None or scope in permission.scopes:
            groups.setdefault(permission.resource, []).append(permission)
    return list(groups.items())

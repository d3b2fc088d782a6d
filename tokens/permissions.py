"""The permission catalog: every ``api.<resource>.<action>`` name, what it allows, where it applies.

Plain data and a few lookups; everything else asks this module.
"""

from __future__ import annotations

from dataclasses import dataclass

ORGANIZATION = "organization"
GROUP = "group"
PERSONAL = "personal"
ALL_SCOPES = (ORGANIZATION, GROUP, PERSONAL)


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

    @property
    def is_read(self) -> bool:
        return self.action == "read"


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

# What an organization member holds in the console (their own personal tokens only, by
# visibility): reading, and managing their own tokens. Webhook deliveries carry audit events,
# so they are read by those who read the audit log's organization-wide events, not members.
MEMBER_RIGHTS: frozenset[str] = frozenset(
    {p.name for p in CATALOG if p.is_read and p.resource not in ("audit-events", "webhooks")}
    | {"api.api-tokens.write", "api.api-tokens.delete"}
)


def valid_in(scope: str) -> frozenset[str]:
    """Names of the permissions that mean something for a token of this scope."""
    return frozenset(p.name for p in CATALOG if scope in p.scopes)


def for_role(role: str, scope: str, custom: list[str] | tuple[str, ...] = ()) -> frozenset[str]:
    """Resolve a role to permissions at the time of asking, so ``admin`` covers new ones."""
    valid = valid_in(scope)
    if role == "admin":
        return valid
    if role == "member":
        return frozenset(name for name in valid if BY_NAME[name].is_read)
    return frozenset(custom) & valid


def grouped(scope: str | None = None) -> list[tuple[str, list[Permission]]]:
    """The catalog grouped by resource, in catalog order, for pickers."""
    groups: dict[str, list[Permission]] = {}
    for permission in CATALOG:
        if scope is None or scope in permission.scopes:
            groups.setdefault(permission.resource, []).append(permission)
    return list(groups.items())

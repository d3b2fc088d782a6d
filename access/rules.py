"""Every "may this principal do this (to that)?" answer, as pure functions.

``may_*`` answers with a bool, for pages that decide what to offer; ``require_*`` raises the
error a service lets through (NotFound outside visibility or reach, Forbidden naming the missing
permission or the reason, ValidationError for a grant beyond the actor's own). Services call the
``require_*``; nothing else re-states a rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError

from access import catalog
from access.errors import Forbidden, NotFound, TokenLeaked
from access.principal import Principal

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from people.models import Invitation
    from tokens.models import ApiToken

READ_TOKENS = "api.api-tokens.read"
WRITE_TOKENS = "api.api-tokens.write"
DELETE_TOKENS = "api.api-tokens.delete"

# What managing a token covers; each needs the reach, the permission and a target no stronger
# than the actor. Revoking is not among them: it is a kill switch (``may_revoke_token``).
MANAGE_ACTIONS = (
    "regenerate",
    "restore",
    "rename",
    "change_permissions",
    "change_addresses",
    "delete",
)


# Permissions ---------------------------------------------------------------------------------


def effective_permissions(principal: Principal) -> frozenset[str]:
    """What the principal holds right now (for ``/me`` and for pickers that grey out the rest:
    nobody grants more than this)."""
    return principal.permissions


def person_rights(principal: Principal) -> frozenset[str]:
    """Everything the person behind the principal holds now (their role and group-admin
    roles), whatever token they act through."""
    return principal.human_rights


def reaches_organization(principal: Principal) -> bool:
    """Whether the principal reaches the whole organization (rather than some groups or only
    its owner's tokens)."""
    return principal.organization_wide


def may(principal: Principal, permission: str) -> bool:
    """Whether the principal holds this permission (its effective set, at this moment)."""
    return principal.holds(permission)


def require(principal: Principal, permission: str) -> None:
    if not principal.holds(permission):
        raise Forbidden(f"This needs the permission {permission}.", permission=permission)


def missing_for_grant(principal: Principal, granted: Iterable[str]) -> list[str]:
    """The permissions of ``granted`` the principal does not hold itself."""
    return sorted(set(granted) - principal.permissions)


def require_grant(principal: Principal, granted: Iterable[str], field: str) -> None:
    missing = missing_for_grant(principal, granted)
    if missing:
        raise ValidationError(
            {field: [f"You cannot grant permissions you do not hold: {', '.join(missing)}."]}
        )


def require_same_organization(principal: Principal, organization_id: int) -> None:
    """Objects of another organization do not exist for the principal."""
    if principal.organization is not None and principal.organization.pk != organization_id:
        raise NotFound("Not found.")


# Roles of people -----------------------------------------------------------------------------


def organization_role_rights(role: str) -> frozenset[str]:
    """What a person holds through an organization role."""
    return catalog.ALL if role == catalog.ADMIN_ROLE else catalog.HUMAN_MEMBER


def group_role_rights(role: str) -> frozenset[str]:
    """What a person holds through a group role, inside that group."""
    return catalog.GROUP_ADMIN if role == catalog.ADMIN_ROLE else frozenset()


# Tokens --------------------------------------------------------------------------------------


def acts_as_owner(principal: Principal, token: ApiToken) -> bool:
    """The owner of a personal token, in the console or through one of their personal tokens."""
    return (
        token.scope == catalog.PERSONAL
        and principal.acts_as_person
        and principal.user is not None
        and principal.user.pk == token.user_id
    )


def _in_organization(principal: Principal, token: ApiToken) -> bool:
    if principal.organization is None:
        return principal.is_operator
    return token.organization_id == principal.organization.pk


def reaches_token(principal: Principal, token: ApiToken) -> bool:
    """The token lies within what the principal manages: organization tokens for an
    organization-wide principal, a group's tokens for its admins, a personal token for its
    owner alone."""
    if not _in_organization(principal, token):
        return False
    if principal.is_operator:
        return True
    if token.scope == catalog.PERSONAL:
        return acts_as_owner(principal, token)
    if token.scope == catalog.ORGANIZATION:
        return principal.organization_wide
    return principal.manages_group(token.group_id)


def token_permissions(principal: Principal, token: ApiToken) -> frozenset[str]:
    """The target's effective permissions as the rules compare them: a personal token's grant is
    capped by its owner's rights, which are the acting owner's own; for anyone else its whole
    grant counts (the owner's rights are not theirs to know, and may grow back)."""
    granted = token.granted_permissions()
    if acts_as_owner(principal, token):
        return granted & principal.human_rights
    return granted


def _manage_permission(action: str) -> str:
    if action not in MANAGE_ACTIONS:
        raise ValueError(f"unknown token action {action!r}")
    return DELETE_TOKENS if action == "delete" else WRITE_TOKENS


def manage_refusal(principal: Principal, token: ApiToken, action: str) -> str | None:
    """Why the principal may not do ``action`` to the token, or None when it may."""
    permission = _manage_permission(action)
    if not principal.holds(permission):
        return f"This needs the permission {permission}."
    if not reaches_token(principal, token):
        if token.scope == catalog.PERSONAL:
            return "A personal token is managed by its owner only."
        return "This token is outside what you manage."
    if (
        action == "restore"
        and token.scope == catalog.PERSONAL
        and not principal.is_operator
        and token.revoked_at is not None
        and token.revoked_by_id != token.user_id
    ):
        return (
            "Someone else revoked this token (the reason is on it); it is not yours to restore: "
            "create a new one."
        )
    stronger = sorted(token_permissions(principal, token) - principal.permissions)
    if stronger:
        return (
            "This token holds permissions you do not hold, so you cannot "
            f"{action.replace('_', ' ')} it: {', '.join(stronger)}."
        )
    return None


def may_manage_token(principal: Principal, token: ApiToken, action: str) -> bool:
    """Regenerate, restore, rename, reshape or delete: the action's permission, the token within
    reach, and nothing in it the principal does not hold itself."""
    return manage_refusal(principal, token, action) is None


def require_manage_token(principal: Principal, token: ApiToken, action: str) -> None:
    refusal = manage_refusal(principal, token, action)
    if refusal is not None:
        permission = _manage_permission(action)
        raise Forbidden(refusal, permission=permission if not principal.holds(permission) else None)


def require_not_weaker_than_tokens(
    principal: Principal, tokens: Iterable[ApiToken], what: str
) -> None:
    """Changing what restricts many tokens at once (the rules of a filter they use, the address
    rules a policy gives them) is managing each of them: refuse if any holds more than the
    principal."""
    stronger = [
        token for token in tokens if token_permissions(principal, token) - principal.permissions
    ]
    if stronger:
        names = ", ".join(token.name for token in stronger[:5])
        more = f" and {len(stronger) - 5} more" if len(stronger) > 5 else ""
        raise Forbidden(
            f"You cannot {what}: {len(stronger)} token(s) it applies to hold permissions you do "
            f"not hold ({names}{more})."
        )


def require_not_weaker_than_token_set(
    principal: Principal, tokens: QuerySet[ApiToken], what: str
) -> None:
    """``require_not_weaker_than_tokens`` for a set of tokens too large to load (a policy
    change over the whole organization): each distinct grant (kind, role, permissions) is
    compared once; the principal's own personal tokens, whose grant is capped by the owner's
    rights, one by one. Only a refusal reads the tokens, to name the first of them."""
    owned = tokens.filter(scope=catalog.PERSONAL, user=principal.user)
    others = tokens.exclude(pk__in=owned.values("pk"))
    grants = others.order_by().values_list("scope", "role", "permissions").distinct()
    stronger_grants = [
        (scope, role, permissions)
        for scope, role, permissions in grants
        # Not the principal's own: the whole grant counts (``token_permissions``).
        if catalog.for_role(role, scope, list(permissions)) - principal.permissions
    ]
    if not stronger_grants and not any(
        token_permissions(principal, token) - principal.permissions
        for token in owned.only("pk", "scope", "role", "permissions", "user_id")
    ):
        return
    require_not_weaker_than_tokens(
        principal,
        tokens.only("pk", "name", "scope", "role", "permissions", "user_id").iterator(),
        what,
    )


def may_revoke_token(principal: Principal, token: ApiToken) -> bool:
    """A kill switch: anyone who may write tokens may stop one within their scope, however
    strong (an organization-wide principal also stops members' personal tokens). Restoring
    it takes a strong enough actor."""
    if not principal.holds(WRITE_TOKENS) or not _in_organization(principal, token):
        return False
    if principal.organization_wide:
        return True
    return reaches_token(principal, token)


def require_revoke_token(principal: Principal, token: ApiToken) -> None:
    require(principal, WRITE_TOKENS)
    if not may_revoke_token(principal, token):
        raise Forbidden("This token is outside what you manage.")


# Leaked tokens -------------------------------------------------------------------------------


def may_restore_token(principal: Principal, token: ApiToken) -> bool:
    """Restore is managing the token, and never for a leaked one: its secret is public."""
    return token.leaked_at is None and may_manage_token(principal, token, "restore")


def require_restorable(token: ApiToken) -> None:
    """Asked after the manage rule, so only someone who could otherwise restore learns why."""
    if token.leaked_at is not None:
        raise TokenLeaked()


def replacement_refusal(principal: Principal, token: ApiToken) -> str | None:
    """Why the principal may not create a replacement for this leaked token, or None: creating
    one like it (same scope, group, role and permissions) within their own rights; a personal
    token is replaced by its owner only, since the new one is theirs."""
    if token.leaked_at is None:
        return "Only a leaked token is replaced; regenerate this one instead."
    if token.scope == catalog.PERSONAL and not acts_as_owner(principal, token):
        return "A personal token is replaced by its owner only."
    refusal = creation_refusal(principal, token.scope, token.group_id)
    if refusal is not None:
        return refusal
    missing = missing_for_grant(
        principal, new_token_permissions(principal, token.scope, token.role, token.permissions)
    )
    if missing:
        return f"You cannot grant permissions you do not hold: {', '.join(missing)}."
    return None


def may_replace_token(principal: Principal, token: ApiToken) -> bool:
    return replacement_refusal(principal, token) is None


def require_replace_token(principal: Principal, token: ApiToken) -> None:
    refusal = replacement_refusal(principal, token)
    if refusal is not None:
        raise Forbidden(refusal)


def may_report_leaks(principal: Principal) -> bool:
    """Anyone signed in may report a token they found (anyone holding one may, unsigned, at
    the API's leak endpoint); the answer never says whether it matched."""
    return principal.user is not None


def may_list_tokens(principal: Principal, scope: str, group_id: int | None = None) -> bool:
    """Whether the principal may open a scope's list of tokens."""
    if not principal.holds(READ_TOKENS):
        return False
    if scope == catalog.ORGANIZATION:
        return principal.organization_wide
    if scope == catalog.GROUP:
        return principal.manages_group(group_id)
    return principal.is_member


def creation_refusal(principal: Principal, scope: str, group_id: int | None) -> str | None:
    """Why the principal may not create a token of this scope (in this group), or None."""
    if not principal.holds(WRITE_TOKENS):
        return f"This needs the permission {WRITE_TOKENS}."
    if scope == catalog.ORGANIZATION and not principal.organization_wide:
        return "Organization tokens are created by organization-wide principals."
    if scope == catalog.GROUP and not principal.manages_group(group_id):
        return "Group tokens are created by the group's admins."
    if scope == catalog.PERSONAL and not (
        principal.is_member and principal.user is not None and principal.user.kind == "human"
    ):
        return "Personal tokens are created by their owner, a member of the organization."
    return None


def require_create_token(principal: Principal, scope: str, group_id: int | None = None) -> None:
    refusal = creation_refusal(principal, scope, group_id)
    if refusal is None:
        return
    if scope == catalog.GROUP and principal.holds(WRITE_TOKENS):
        raise NotFound("No such group.")
    permission = None if principal.holds(WRITE_TOKENS) else WRITE_TOKENS
    raise Forbidden(refusal, permission=permission)


def ineffective_permissions(owner: Principal, token: ApiToken) -> list[str]:
    """A personal token's granted permissions that its owner does not hold now, which it
    therefore does not have (it never has more rights than its owner)."""
    if token.scope != catalog.PERSONAL:
        return []
    return sorted(token.granted_permissions() - owner.human_rights)


def new_token_permissions(
    principal: Principal, scope: str, role: str, custom: Iterable[str] = ()
) -> frozenset[str]:
    """What a token created (or reshaped) now would be granted: a custom list as asked for; a
    personal token's role as far as its owner's rights reach, which is what the role means."""
    granted = catalog.for_role(role, scope, tuple(custom))
    if scope == catalog.PERSONAL and role != catalog.CUSTOM_ROLE and not principal.is_operator:
        return granted & principal.human_rights
    return granted


# The organization, its people and groups -----------------------------------------------------


def _organization_wide(principal: Principal, permission: str, what: str) -> None:
    require(principal, permission)
    if not principal.organization_wide:
        raise Forbidden(f"Only organization-wide principals {what}.")


def require_operator(principal: Principal) -> None:
    if not principal.is_operator:
        raise Forbidden("Only operators do this.")


def require_rename_organization(principal: Principal) -> None:
    _organization_wide(principal, "api.organizations.write", "rename the organization")


def require_manage_members(principal: Principal) -> None:
    _organization_wide(principal, "api.users.write", "manage members")


def require_remove_members(principal: Principal) -> None:
    _organization_wide(principal, "api.users.delete", "remove members")


# Invitations ---------------------------------------------------------------------------------


def may_invite(principal: Principal) -> bool:
    """Invite people to the organization and withdraw invitations: those who manage members.
    The role invited with must be one the principal could grant (``require_grant``)."""
    return principal.holds("api.users.write") and principal.organization_wide


def require_invite(principal: Principal) -> None:
    _organization_wide(principal, "api.users.write", "invite people")


def may_read_invitations(principal: Principal) -> bool:
    """Whom the organization invited, and what came of it."""
    return principal.holds("api.users.read") and principal.organization_wide


def require_read_invitations(principal: Principal) -> None:
    _organization_wide(principal, "api.users.read", "read the organization's invitations")


def require_withdraw_invitation(principal: Principal, invitation: Invitation) -> None:
    require_same_organization(principal, invitation.organization_id)
    require_invite(principal)


def _addressed_to(user: object, invitation: Invitation) -> bool:
    email = (getattr(user, "email", "") or "").strip()
    if invitation.email and email and invitation.email.casefold() == email.casefold():
        return True
    joined = getattr(user, "date_joined", None)
    return bool(
        invitation.username
        and invitation.username == getattr(user, "username", None)
        and joined is not None
        and joined <= invitation.created_at
    )


def may_answer_invitation(principal: Principal, invitation: Invitation) -> bool:
    """Accept or decline: the invited person, in the console or through one of their personal
    tokens, and nobody else (not even the organization's admins)."""
    user = principal.user
    return (
        principal.acts_as_person
        and user is not None
        and getattr(user, "kind", None) == "human"
        and getattr(user, "is_active", False)
        and _addressed_to(user, invitation)
    )


def require_answer_invitation(principal: Principal, invitation: Invitation) -> None:
    """An invitation addressed to someone else does not exist for the principal."""
    if not may_answer_invitation(principal, invitation):
        raise NotFound("No such invitation.")


def may_create_people(principal: Principal, *, allowed_by_settings: bool) -> bool:
    """Create a brand-new person in the organization (``KEYWARD_ALLOW_ORG_USER_CREATION``):
    those who invite, where the operator allows it."""
    return allowed_by_settings and may_invite(principal)


def require_create_people(principal: Principal, *, allowed_by_settings: bool) -> None:
    if not allowed_by_settings:
        raise Forbidden(
            "Creating people is turned off here (KEYWARD_ALLOW_ORG_USER_CREATION); invite them."
        )
    require_invite(principal)


# Groups --------------------------------------------------------------------------------------


def require_create_group(principal: Principal) -> None:
    _organization_wide(principal, "api.groups.write", "create groups")


def require_delete_group(principal: Principal) -> None:
    _organization_wide(principal, "api.groups.delete", "delete groups")


def require_update_group(principal: Principal, group_id: int) -> None:
    require(principal, "api.groups.write")
    if not principal.manages_group(group_id):
        raise Forbidden("Only admins of this group (or of the organization) may do this.")


def require_manage_group_members(principal: Principal, group_id: int) -> None:
    require(principal, "api.users.write")
    if not principal.manages_group(group_id):
        raise Forbidden("Only admins of this group (or of the organization) may do this.")


def require_remove_group_members(principal: Principal, group_id: int) -> None:
    require(principal, "api.users.delete")
    if not principal.manages_group(group_id):
        raise Forbidden("Only admins of this group (or of the organization) may do this.")


def may_administer_group(principal: Principal, group_id: int) -> bool:
    """Whether the principal counts as an admin of this group (to label it, to open it)."""
    return principal.manages_group(group_id)


# Policies, IP filters, audit, usage ----------------------------------------------------------


def may_read_policy(principal: Principal) -> bool:
    return principal.holds("api.security-policies.read")


def may_change_policy(principal: Principal) -> bool:
    return principal.holds("api.security-policies.write") and principal.organization_wide


def require_change_policy(principal: Principal) -> None:
    _organization_wide(principal, "api.security-policies.write", "change the security policy")


def may_read_ip_filters(principal: Principal) -> bool:
    return principal.holds("api.ip-filters.read")


def may_write_ip_filters(principal: Principal) -> bool:
    return principal.holds("api.ip-filters.write") and principal.organization_wide


def require_write_ip_filters(principal: Principal) -> None:
    _organization_wide(principal, "api.ip-filters.write", "change IP filters")


def may_delete_ip_filters(principal: Principal) -> bool:
    return principal.holds("api.ip-filters.delete") and principal.organization_wide


def require_delete_ip_filters(principal: Principal) -> None:
    _organization_wide(principal, "api.ip-filters.delete", "delete IP filters")


def may_read_audit(principal: Principal) -> bool:
    """The audit log: organization-wide, or of the groups the principal administers."""
    return principal.holds("api.audit-events.read") and (
        principal.organization_wide or bool(principal.administered_group_ids)
    )


def require_read_audit(principal: Principal) -> None:
    require(principal, "api.audit-events.read")
    if not may_read_audit(principal):
        raise Forbidden("Only organization and group admins read the audit log.")


def may_read_webhooks(principal: Principal) -> bool:
    """Webhook endpoints and their deliveries (which carry audit events): organization-wide."""
    return principal.holds("api.webhooks.read") and principal.organization_wide


def may_manage_webhooks(principal: Principal, action: str = "write") -> bool:
    """Read (``read``), change (``write``) or delete (``delete``) the organization's webhook
    endpoints."""
    return principal.holds(f"api.webhooks.{action}") and principal.organization_wide


def require_manage_webhooks(principal: Principal, action: str = "write") -> None:
    _organization_wide(principal, f"api.webhooks.{action}", "manage webhooks")

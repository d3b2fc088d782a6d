"""Every change to an API token: rights, policy, version, audit, in one transaction.

Console views, the API, admin actions and management commands call these and nothing else.
"""

from __future__ import annotations

import secrets as random_source
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from orgs import audit
from orgs.errors import Forbidden, NotFound, PolicyViolation, VersionConflict
from orgs.models import Group, Organization, User, UserKind
from orgs.principals import Principal
from policies.models import IpFilter, ScopePolicy, SecurityPolicy
from policies.rules import parse_allow_list
from tokens import permissions as catalog
from tokens import secrets as token_format
from tokens.models import ApiToken, TokenRole, TokenScope, TokenSecret, TokenStatus

MAX_GRACE = timedelta(days=7)
NAME_MAX_LENGTH = 100
REASON_MAX_LENGTH = 500
MAX_ALLOWED_ADDRESSES = 100


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()  # "no expiry given": the policy's default applies


@dataclass(frozen=True)
class IssuedToken:
    """A token and its secret, returned once by create and regenerate and never kept."""

    token: ApiToken
    secret: str = field(repr=False)


# Helpers -------------------------------------------------------------------------------------


def _current_pepper() -> tuple[str, bytes]:
    return settings.KEYWARD_TOKEN_PEPPERS[-1]


def _new_secret(token: ApiToken, now: datetime, secret: str | None = None) -> str:
    """Store the digest of a new secret (generated here unless given) and return the secret."""
    secret = secret or token_format.generate(token.scope)
    pepper_id, pepper = _current_pepper()
    TokenSecret.objects.create(
        token=token,
        digest=token_format.digest(secret, pepper),
        pepper_id=pepper_id,
        partial_token=token_format.partial(secret),
        created_at=now,
    )
    token.partial_token = token_format.partial(secret)
    return secret


def _scope_policy(organization: Organization, scope: str) -> ScopePolicy:
    """The organization's rules for one kind of token (one query, one join)."""
    field = {"organization": "organization_tokens", "group": "group_tokens"}.get(
        scope, "personal_tokens"
    )
    policy = SecurityPolicy.objects.select_related(field).get(organization=organization)
    return getattr(policy, field)


def _snapshot(token: ApiToken) -> dict[str, Any]:
    return {
        "name": token.name,
        "role": token.role,
        "permissions": sorted(token.permissions),
        "status": token.status,
        "revoked_reason": token.revoked_reason,
        "expires_at": token.expires_at,
        "allowed_addresses": token.allowed_addresses,
        "ip_filter": token.ip_filter.name if token.ip_filter_id and token.ip_filter else None,
        "partial_token": token.partial_token,
    }


def _record(actor: Principal, action: str, token: ApiToken, changes: dict | None = None) -> None:
    audit.record(
        actor=actor,
        action=action,
        organization=token.organization,
        group_id=token.group_id,
        object_type="api_token",
        object_id=token.pk,
        object_repr=str(token),
        changes=changes,
    )


def _touch(token: ApiToken, actor: Principal, now: datetime) -> None:
    token.version += 1
    token.modified_at = now
    token.modified_by = actor.user
    token.modified_by_name = actor.name[:150]


def _lock(token: ApiToken, expected_version: int | None) -> ApiToken:
    """Reload the token under a row lock and check the caller's version against it."""
    try:
        locked = (
            ApiToken.objects.select_for_update(of=("self",))
            .select_related("organization", "ip_filter")
            .get(pk=token.pk)
        )
    except ApiToken.DoesNotExist:
        raise NotFound("No such API token.") from None
    if expected_version is not None and locked.version != expected_version:
        raise VersionConflict(locked.version)
    return locked


def _require_permission(actor: Principal, permission: str) -> None:
    if not actor.has_permission(permission):
        raise Forbidden(f"This needs the permission {permission}.", permission=permission)


def _require_visible(actor: Principal, token: ApiToken) -> None:
    if not ApiToken.objects.visible_to(actor).filter(pk=token.pk).exists():
        raise NotFound("No such API token.")


def _acts_as_owner(actor: Principal, token: ApiToken) -> bool:
    """The owner of a personal token, in the console or through one of their personal tokens."""
    return (
        not actor.is_operator
        and actor.user is not None
        and actor.user.pk == token.user_id
        and (actor.token is None or actor.token.scope == TokenScope.PERSONAL)
    )


def _require_manage(actor: Principal, token: ApiToken, *, owner_only: bool = False) -> None:
    """Check the actor may change this token. ``owner_only``: also act as the token (regenerate,
    edit), which for a personal token only its owner may do."""
    _require_visible(actor, token)
    if token.scope == TokenScope.ORGANIZATION:
        allowed = actor.is_org_admin
    elif token.scope == TokenScope.GROUP:
        allowed = actor.is_org_admin or actor.administers_group(token.group_id)
    elif owner_only:
        allowed = _acts_as_owner(actor, token)
    else:
        allowed = _acts_as_owner(actor, token) or actor.is_org_admin
    if not allowed:
        raise Forbidden("You may not change this token.")


def _check_grant(actor: Principal, granted: Iterable[str], field_name: str) -> None:
    """Nobody grants a permission they do not hold."""
    missing = sorted(set(granted) - actor.permissions)
    if missing:
        raise ValidationError(
            {field_name: [f"You cannot grant permissions you do not hold: {', '.join(missing)}."]}
        )


def _validate_name(name: str) -> tuple[str, list[str]]:
    cleaned = (name or "").strip()
    if not cleaned:
        return cleaned, ["Give the token a name."]
    if len(cleaned) > NAME_MAX_LENGTH:
        return cleaned, [f"A name has at most {NAME_MAX_LENGTH} characters ({len(cleaned)} given)."]
    if any(ord(character) < 32 for character in cleaned):
        return cleaned, ["A name cannot contain control characters."]
    return cleaned, []


def _name_taken(
    organization: Organization,
    scope: str,
    name: str,
    *,
    group: Group | None,
    owner: User | None,
    exclude: int | None = None,
) -> bool:
    queryset = ApiToken.objects.filter(organization=organization, scope=scope, name__iexact=name)
    if scope == TokenScope.GROUP:
        queryset = queryset.filter(group=group)
    elif scope == TokenScope.PERSONAL:
        queryset = queryset.filter(user=owner)
    if exclude is not None:
        queryset = queryset.exclude(pk=exclude)
    return queryset.exists()


def _validate_permissions(role: str, permissions: Iterable[str], scope: str) -> list[str]:
    if role not in TokenRole.values:
        return []  # reported on the role field
    if role != TokenRole.CUSTOM:
        return []
    names = list(permissions)
    errors = []
    unknown = sorted(set(names) - catalog.ALL)
    if unknown:
        errors.append(f"Unknown permission: {', '.join(unknown)}.")
    invalid = sorted((set(names) & catalog.ALL) - catalog.valid_in(scope))
    if invalid:
        errors.append(f"Not valid for a {scope} token: {', '.join(invalid)}.")
    if not names:
        errors.append("Choose at least one permission.")
    return errors


def _technical_username(organization: Organization, name: str) -> str:
    base = slugify(name)[:40] or "token"
    return f"token.{organization.slug}.{base}.{random_source.token_hex(4)}"


# Create -------------------------------------------------------------------------------------


def create_token(
    *,
    actor: Principal,
    organization: Organization,
    name: str,
    scope: str = TokenScope.ORGANIZATION,
    group: Group | None = None,
    role: str = TokenRole.CUSTOM,
    permissions: Iterable[str] = (),
    expires_at: datetime | None = DEFAULT,
    allowed_addresses: Iterable[str] = (),
    ip_filter: IpFilter | None = None,
    now: datetime | None = None,
) -> IssuedToken:
    """Create a token and return it with its secret, which is never shown again."""
    now = now or timezone.now()
    permissions = sorted(set(permissions))
    allowed_addresses = [entry.strip() for entry in allowed_addresses if entry.strip()]
    if actor.organization is not None and actor.organization.pk != organization.pk:
        raise NotFound("No such organization.")
    if scope not in TokenScope.values:
        raise ValidationError({"scope": ["Choose organization, group or personal."]})

    # Who may create what.
    _require_permission(actor, "api.api-tokens.write")
    if scope == TokenScope.GROUP:
        if group is None:
            raise ValidationError({"group": ["A group token needs a group."]})
        if group.organization_id != organization.pk or not (
            actor.is_org_admin or actor.administers_group(group.pk)
        ):
            raise NotFound("No such group.")
    else:
        group = None
    if scope == TokenScope.ORGANIZATION and not actor.is_org_admin:
        raise Forbidden("Only organization admins create organization tokens.")
    if scope == TokenScope.PERSONAL and (
        actor.is_operator
        or actor.user is None
        or actor.user.kind != UserKind.HUMAN
        or not actor.is_member
    ):
        raise Forbidden("Personal tokens are created by their owner, a member of the organization.")

    policy = _scope_policy(organization, scope)
    if not policy.allowed:
        raise PolicyViolation(
            f"The security policy does not allow {scope} tokens.", setting=f"{scope}.allowed"
        )

    errors: dict[str, list[str]] = {}
    name, name_errors = _validate_name(name)
    if name_errors:
        errors["name"] = name_errors
    if role not in TokenRole.values:
        errors["role"] = ["Choose admin, member or custom."]
    permission_errors = _validate_permissions(role, permissions, scope)
    if permission_errors:
        errors["permissions"] = permission_errors
    if role != TokenRole.CUSTOM:
        permissions = []

    if expires_at is DEFAULT:
        expires_at = policy.latest_expiry(now)
    expiry_error = policy.expiry_error(expires_at, now)
    if expiry_error:
        errors["expiry"] = [expiry_error]

    networks, address_errors = parse_allow_list(allowed_addresses)
    if address_errors:
        errors["allowed_addresses"] = [str(error) for error in address_errors]
    elif len(networks) > MAX_ALLOWED_ADDRESSES:
        errors["allowed_addresses"] = [f"At most {MAX_ALLOWED_ADDRESSES} entries."]
    if ip_filter is not None and ip_filter.organization_id != organization.pk:
        errors["ip_filter"] = ["No such IP filter in this organization."]
    if not policy.custom_ip_allowed and (
        (ip_filter is not None and ip_filter.pk != policy.enforced_ip_filter_id) or networks
    ):
        errors.setdefault("ip_filter", []).append(
            "The security policy does not let tokens carry their own IP filter or addresses."
        )
    if policy.enforced_ip_filter_id is not None:
        if (
            policy.custom_ip_allowed
            and ip_filter is not None
            and ip_filter.pk != policy.enforced_ip_filter_id
        ):
            # One filter per token: another one would be silently replaced, so say so.
            errors.setdefault("ip_filter", []).append(
                f"The security policy enforces the IP filter "
                f"{policy.enforced_ip_filter.name!r} on {scope} tokens; choose it or none."
            )
        ip_filter = policy.enforced_ip_filter
    if errors:
        # Said with the other mistakes, so that one round fixes them all; otherwise the unique
        # index decides below, which also settles two creations at once, in one query less.
        owner = actor.user if scope == TokenScope.PERSONAL else None
        if "name" not in errors and _name_taken(
            organization, scope, name, group=group, owner=owner
        ):
            errors["name"] = [f"A {scope} token named {name!r} already exists."]
        raise ValidationError(errors)

    if role == TokenRole.CUSTOM:
        _check_grant(actor, permissions, "permissions")
    elif scope != TokenScope.PERSONAL:
        # A personal token's role is capped by its owner at every request; others are not.
        _check_grant(actor, catalog.for_role(role, scope), "role")

    try:
        with transaction.atomic():
            if scope == TokenScope.PERSONAL:
                user = actor.user
            else:
                user = User(
                    username=_technical_username(organization, name),
                    kind=UserKind.TECHNICAL,
                    display_name=name,
                )
                user.set_unusable_password()
                user.save()
            token = ApiToken(
                organization=organization,
                group=group,
                scope=scope,
                name=name,
                user=user,
                role=role,
                permissions=permissions,
                expires_at=expires_at,
                allowed_addresses=[str(network) for network in networks],
                ip_filter=ip_filter,
                created_at=now,
                created_by=actor.user,
                created_by_name=actor.name[:150],
                modified_at=now,
                modified_by=actor.user,
                modified_by_name=actor.name[:150],
            )
            secret = token_format.generate(scope)
            token.partial_token = token_format.partial(secret)
            token.save()
            _new_secret(token, now, secret)
            _record(actor, "token.created", token, audit.diff({}, _snapshot(token)))
    except IntegrityError:
        # Two creations with the same name at once: the database's unique index decides.
        raise ValidationError(
            {"name": [f"A {scope} token named {name!r} already exists."]}
        ) from None
    return IssuedToken(token=token, secret=secret)


# Changes ------------------------------------------------------------------------------------


def regenerate_token(
    *,
    actor: Principal,
    token: ApiToken,
    expected_version: int | None = None,
    grace: timedelta = timedelta(0),
    now: datetime | None = None,
) -> IssuedToken:
    """Issue a new secret; the old one dies at once, or when ``grace`` has passed."""
    now = now or timezone.now()
    _require_permission(actor, "api.api-tokens.write")
    _require_manage(actor, token, owner_only=True)
    if grace < timedelta(0) or grace > MAX_GRACE:
        raise ValidationError({"grace": ["A grace period is between 0 and 7 days."]})
    with transaction.atomic():
        token = _lock(token, expected_version)
        policy = _scope_policy(token.organization, token.scope)
        if not policy.allowed:
            raise PolicyViolation(
                f"The security policy does not allow {token.scope} tokens.",
                setting=f"{token.scope}.allowed",
            )
        if not policy.regeneration_allowed:
            raise PolicyViolation(
                "The security policy does not allow regenerating these tokens.",
                setting=f"{token.scope}.regeneration_allowed",
            )
        if grace > policy.max_grace:
            raise ValidationError(
                {
                    "grace": [
                        f"The security policy allows a grace period of at most "
                        f"{int(policy.max_grace.total_seconds())} seconds."
                    ]
                }
            )
        if token.status == TokenStatus.REVOKED:
            raise ValidationError({"status": ["Restore the token before regenerating it."]})
        before = _snapshot(token)
        old_secrets = TokenSecret.objects.filter(token=token)
        if grace > timedelta(0):
            # Only the current secret gets a grace period; secrets already ending end now.
            old_secrets.filter(ends_at__isnull=False).delete()
            old_secrets.update(ends_at=now + grace)
        else:
            old_secrets.delete()
        if token.expires_at is not None:
            # A regenerated token lives as long as the original was meant to, within policy.
            lifetime = max(token.expires_at - token.created_at, timedelta(minutes=1))
            latest = policy.latest_expiry(now)
            try:
                renewed = now + lifetime
            except OverflowError:  # an expiry near the end of the calendar stays where it is
                renewed = token.expires_at
            token.expires_at = min(renewed, latest) if latest else renewed
        secret = _new_secret(token, now)
        _touch(token, actor, now)
        token.save()
        changes = audit.diff(before, _snapshot(token))
        changes["grace_seconds"] = {"before": None, "after": int(grace.total_seconds())}
        _record(actor, "token.regenerated", token, changes)
    return IssuedToken(token=token, secret=secret)


def revoke_token(
    *,
    actor: Principal,
    token: ApiToken,
    expected_version: int | None = None,
    reason: str = "",
    now: datetime | None = None,
) -> ApiToken:
    """Disable the token until it is restored."""
    now = now or timezone.now()
    reason = (reason or "").strip()
    if len(reason) > REASON_MAX_LENGTH:
        raise ValidationError({"reason": [f"A reason has at most {REASON_MAX_LENGTH} characters."]})
    _require_permission(actor, "api.api-tokens.write")
    _require_manage(actor, token)
    with transaction.atomic():
        token = _lock(token, expected_version)
        if token.status == TokenStatus.REVOKED:
            raise ValidationError({"status": ["The token is already revoked."]})
        before = _snapshot(token)
        token.status = TokenStatus.REVOKED
        token.revoked_at = now
        token.revoked_reason = reason
        _touch(token, actor, now)
        token.save()
        _record(actor, "token.revoked", token, audit.diff(before, _snapshot(token)))
    return token


def restore_token(
    *,
    actor: Principal,
    token: ApiToken,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> ApiToken:
    """Make a revoked token work again (if its kind is still allowed)."""
    now = now or timezone.now()
    _require_permission(actor, "api.api-tokens.write")
    _require_manage(actor, token)
    with transaction.atomic():
        token = _lock(token, expected_version)
        if token.status != TokenStatus.REVOKED:
            raise ValidationError({"status": ["Only a revoked token can be restored."]})
        policy = _scope_policy(token.organization, token.scope)
        if not policy.allowed:
            raise PolicyViolation(
                f"The security policy does not allow {token.scope} tokens.",
                setting=f"{token.scope}.allowed",
            )
        before = _snapshot(token)
        token.status = TokenStatus.ACTIVE
        token.revoked_at = None
        token.revoked_reason = ""
        _touch(token, actor, now)
        token.save()
        _record(actor, "token.restored", token, audit.diff(before, _snapshot(token)))
    return token


def delete_token(*, actor: Principal, token: ApiToken, expected_version: int | None = None) -> None:
    """Delete the token for good; its technical user is deactivated but kept for history."""
    _require_permission(actor, "api.api-tokens.delete")
    _require_manage(actor, token)
    with transaction.atomic():
        token = _lock(token, expected_version)
        _record(actor, "token.deleted", token, audit.diff(_snapshot(token), {}))
        user = token.user
        token.delete()
        if user.kind == UserKind.TECHNICAL:
            User.objects.filter(pk=user.pk).update(is_active=False)


def rename_token(
    *,
    actor: Principal,
    token: ApiToken,
    name: str,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> ApiToken:
    """Give the token (and its technical user) a new name."""
    now = now or timezone.now()
    _require_permission(actor, "api.api-tokens.write")
    _require_manage(actor, token, owner_only=True)
    name, errors = _validate_name(name)
    if errors:
        raise ValidationError({"name": errors})
    try:
        with transaction.atomic():
            token = _lock(token, expected_version)
            if _name_taken(
                token.organization,
                token.scope,
                name,
                group=token.group,
                owner=token.user,
                exclude=token.pk,
            ):
                raise ValidationError(
                    {"name": [f"A {token.scope} token named {name!r} already exists."]}
                )
            before = _snapshot(token)
            token.name = name
            _touch(token, actor, now)
            token.save()
            if token.user.kind == UserKind.TECHNICAL:
                User.objects.filter(pk=token.user_id).update(display_name=name)
            _record(actor, "token.renamed", token, audit.diff(before, _snapshot(token)))
    except IntegrityError:
        raise ValidationError({"name": [f"A token named {name!r} already exists."]}) from None
    return token


def update_token_permissions(
    *,
    actor: Principal,
    token: ApiToken,
    role: str,
    permissions: Iterable[str] = (),
    expected_version: int | None = None,
    now: datetime | None = None,
) -> ApiToken:
    """Change the role or permission list, where the policy allows editing permissions."""
    now = now or timezone.now()
    permissions = sorted(set(permissions))
    _require_permission(actor, "api.api-tokens.write")
    _require_manage(actor, token, owner_only=True)
    errors: dict[str, list[str]] = {}
    if role not in TokenRole.values:
        errors["role"] = ["Choose admin, member or custom."]
    permission_errors = _validate_permissions(role, permissions, token.scope)
    if permission_errors:
        errors["permissions"] = permission_errors
    if errors:
        raise ValidationError(errors)
    if role != TokenRole.CUSTOM:
        permissions = []
    with transaction.atomic():
        token = _lock(token, expected_version)
        policy = _scope_policy(token.organization, token.scope)
        if not policy.permission_edits_allowed:
            raise PolicyViolation(
                "The security policy does not allow editing the permissions of these tokens.",
                setting=f"{token.scope}.permission_edits_allowed",
            )
        new_permissions = catalog.for_role(role, token.scope, permissions)
        if token.scope != TokenScope.PERSONAL or role == TokenRole.CUSTOM:
            added = new_permissions - token.granted_permissions()
            _check_grant(actor, added, "permissions" if role == TokenRole.CUSTOM else "role")
        before = _snapshot(token)
        token.role = role
        token.permissions = permissions
        _touch(token, actor, now)
        token.save()
        _record(actor, "token.permissions_changed", token, audit.diff(before, _snapshot(token)))
    return token


def permission_changes(
    token: ApiToken, role: str, permissions: Iterable[str]
) -> dict[str, list[str]]:
    """What an edit would add and remove, for a preview before saving."""
    current = token.granted_permissions()
    proposed = catalog.for_role(role, token.scope, list(permissions))
    return {"added": sorted(proposed - current), "removed": sorted(current - proposed)}

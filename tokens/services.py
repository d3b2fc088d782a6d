"""Every change to an API token: rights, policy, version, audit, in one transaction.

Console views, the API, admin actions and management commands call these and nothing else.
"""

from __future__ import annotations

import functools
import secrets as random_source
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django.utils.text import slugify

from access import catalog, rules
from access.errors import NotFound, PolicyViolation, VersionConflict
from access.principal import Principal
from orgs import audit, names
from orgs.columns import concrete_field
from orgs.inserts import insert_linked
from orgs.models import Group, Organization, User, UserKind
from policies.models import IpFilter, ScopePolicy, SecurityPolicy
from policies.rules import parse_allow_list
from tokens import token_format
from tokens.models import ApiToken, TokenRole, TokenScope, TokenSecret, TokenStatus

MAX_GRACE = timedelta(days=7)
NAME_MAX_LENGTH = 100
DESCRIPTION_MAX_LENGTH = 1000
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
    # After a regeneration with a grace period: when the previous secret stops working.
    previous_secret_ends_at: datetime | None = None


# Helpers -------------------------------------------------------------------------------------


def _current_pepper() -> tuple[str, bytes]:
    return settings.KEYWARD_TOKEN_PEPPERS[-1]


def _new_secret(token: ApiToken, now: datetime) -> str:
    """Store the digest of a new secret and return the secret."""
    secret = token_format.generate(token.scope)
    _secret_row(token, now, secret).save(force_insert=True)
    return secret


def _secret_row(token: ApiToken, now: datetime, secret: str) -> TokenSecret:
    """The unsaved row of a secret's digest (under the current pepper); the token's partial
    token set to match."""
    pepper_id, pepper = _current_pepper()
    token.partial_token = token_format.partial(secret)
    return TokenSecret(
        token=token,
        digest=token_format.digest(secret, pepper),
        pepper_id=pepper_id,
        partial_token=token.partial_token,
        created_at=now,
    )


_POLICY_FIELDS = {"organization": "organization_tokens", "group": "group_tokens"}


@functools.cache
def _scope_policy_sql(field: str) -> str:
    quote = connection.ops.quote_name
    security = SecurityPolicy._meta
    return (
        f"SELECT p.* FROM {quote(ScopePolicy._meta.db_table)} p "  # noqa: S608 (metadata)
        f"JOIN {quote(security.db_table)} s "
        f"ON s.{quote(concrete_field(SecurityPolicy, field).column)} = p.id "
        f"WHERE s.{quote(concrete_field(SecurityPolicy, 'organization').column)} = %s"
    )


def _scope_policy(organization: Organization, scope: str) -> ScopePolicy:
    """The organization's rules for one kind of token (one query, one join), written once:
    every token change reads it, and building it through the ORM cost more than running it."""
    field = _POLICY_FIELDS.get(scope, "personal_tokens")
    found = list(ScopePolicy.objects.raw(_scope_policy_sql(field), [organization.pk]))
    if not found:
        raise SecurityPolicy.DoesNotExist(f"No security policy for {organization.slug}.")
    return found[0]


def _snapshot(token: ApiToken) -> dict[str, Any]:
    return {
        "name": token.name,
        "description": token.description,
        "role": token.role,
        "permissions": sorted(token.permissions),
        "status": token.status,
        "revoked_reason": token.revoked_reason,
        "expires_at": token.expires_at,
        "allowed_addresses": token.allowed_addresses,
        "ip_filter": token.ip_filter.name if token.ip_filter_id and token.ip_filter else None,
        "partial_token": token.partial_token,
    }


def _record(
    actor: Principal, action: str, token: ApiToken, changes: dict[str, Any] | None = None
) -> None:
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


def _require_visible(actor: Principal, token: ApiToken) -> None:
    if not ApiToken.objects.visible_to(actor).filter(pk=token.pk).exists():
        raise NotFound("No such API token.")


def checked_text(
    actor: Principal,
    value: str | None,
    *,
    label: str,
    max_length: int,
    required: bool = True,
    multiline: bool = False,
) -> names.Cleaned:
    """Apply the one rule for names and free text (``orgs.names``) to what a person typed; a
    live token among it is treated as leaked at once, since they have just shown it to a form
    (the form's answer is still the error that says so)."""
    cleaned = names.clean(
        value, label=label, max_length=max_length, required=required, multiline=multiline
    )
    if cleaned.pasted_tokens:
        treat_pasted_as_leaked(actor=actor, secrets=cleaned.pasted_tokens)
    return cleaned


def pasted_token_errors(
    actor: Principal, fields: dict[str, tuple[str, str]]
) -> dict[str, list[str]]:
    """For each ``field: (label, value)`` holding a token's secret, the field's error; a live
    one is treated as leaked at once (it was just typed into a form, and would otherwise be
    kept and shown wherever it was typed)."""
    errors: dict[str, list[str]] = {}
    pasted: list[str] = []
    for name, (label, value) in fields.items():
        found = names.TOKEN_SHAPE.findall(value or "")
        if found:
            pasted += found
            errors[name] = [
                f"{label} cannot contain an API token. If it was a real token, it has been "
                "treated as leaked."
            ]
    if pasted:
        treat_pasted_as_leaked(actor=actor, secrets=pasted)
    return errors


def treat_pasted_as_leaked(
    *, actor: Principal, secrets: Iterable[str], now: datetime | None = None
) -> int:
    """Process secrets a person pasted into a form as leak reports from where they are
    (``tokens.leaks``: revoked, grace ended, or recorded, audited and mailed like any report).
    Returns how many matched; nothing about which ones goes back to the form."""
    from tokens import leaks  # leaks builds on these services

    # A token-shaped run longer than a token (a secret with letters typed right after it) is
    # also tried as the token it begins with: that secret was disclosed all the same.
    candidates = [
        candidate
        for raw in secrets
        for candidate in dict.fromkeys((raw, raw[: token_format.TOKEN_LENGTH]))
    ]
    outcomes = leaks.process_reports(
        [leaks.LeakReport(token=raw, source=leaks.PASTED_INTO_A_FORM) for raw in candidates],
        reporter_address=actor.address,
        reported_by=actor.name,
        now=now,
    )
    return sum(outcome.matched for outcome in outcomes)


def _validate_name(actor: Principal, name: str) -> tuple[str, list[str]]:
    cleaned = checked_text(actor, name, label="A name", max_length=NAME_MAX_LENGTH)
    return cleaned.value, cleaned.errors


def _validate_description(actor: Principal, description: str | None) -> tuple[str, list[str]]:
    cleaned = checked_text(
        actor,
        description,
        label="A description",
        max_length=DESCRIPTION_MAX_LENGTH,
        required=False,
        multiline=True,
    )
    return cleaned.value, cleaned.errors


def _name_taken(
    organization: Organization,
    scope: str,
    name: str,
    *,
    group: Group | None,
    owner: User | None,
    exclude: int | None = None,
) -> bool:
    queryset = ApiToken.objects.filter(
        organization=organization, scope=scope, name_key=names.name_key(name)
    )
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


@dataclass(frozen=True)
class _Addresses:
    """A token's IP filter and allowed addresses as the policy lets it have them."""

    ip_filter: IpFilter | None
    allowed_addresses: list[str]
    from_policy: bool
    errors: dict[str, list[str]]


def _clean_addresses(
    policy: ScopePolicy,
    organization: Organization,
    ip_filter: IpFilter | None,
    allowed_addresses: Iterable[str],
) -> _Addresses:
    """Check a filter and an allow-list against the policy; the enforced filter wins."""
    errors: dict[str, list[str]] = {}
    entries = [entry.strip() for entry in allowed_addresses if entry.strip()]
    networks, address_errors = parse_allow_list(entries)
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
    from_policy = False
    if policy.enforced_ip_filter is not None:
        if (
            policy.custom_ip_allowed
            and ip_filter is not None
            and ip_filter.pk != policy.enforced_ip_filter_id
        ):
            # One filter per token: another one would be silently replaced, so say so.
            errors.setdefault("ip_filter", []).append(
                f"The security policy enforces the IP filter "
                f"{policy.enforced_ip_filter.name!r} on {policy.scope} tokens; choose it or none."
            )
        ip_filter = policy.enforced_ip_filter
        from_policy = True
    return _Addresses(
        ip_filter=ip_filter,
        allowed_addresses=[str(network) for network in networks],
        from_policy=from_policy,
        errors=errors,
    )


# Create -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _NewToken:
    """What a creation asked for, checked against the rules and the policy."""

    name: str
    description: str
    role: str
    permissions: list[str]
    expires_at: datetime | None
    addresses: _Addresses


def _validated_new_token(
    actor: Principal,
    organization: Organization,
    policy: ScopePolicy,
    *,
    scope: str,
    group: Group | None,
    name: str,
    description: str,
    role: str,
    permissions: list[str],
    expires_at: datetime | None,
    allowed_addresses: Iterable[str],
    ip_filter: IpFilter | None,
    now: datetime,
) -> _NewToken:
    """Check every field of a new token at once and raise one ValidationError naming each
    field that is wrong, so that one round fixes them all."""
    errors: dict[str, list[str]] = {}
    name, name_errors = _validate_name(actor, name)
    if name_errors:
        errors["name"] = name_errors
    description, description_errors = _validate_description(actor, description)
    if description_errors:
        errors["description"] = description_errors
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
    addresses = _clean_addresses(policy, organization, ip_filter, allowed_addresses)
    errors.update(addresses.errors)
    if errors:
        # Said with the other mistakes; otherwise the unique index decides at creation, which
        # also settles two creations at once, in one query less.
        owner = actor.user if scope == TokenScope.PERSONAL else None
        if "name" not in errors and _name_taken(
            organization, scope, name, group=group, owner=owner
        ):
            errors["name"] = [f"{_article(scope)} {scope} token named {name!r} already exists."]
        raise ValidationError(errors)
    return _NewToken(
        name=name,
        description=description,
        role=role,
        permissions=permissions,
        expires_at=expires_at,
        addresses=addresses,
    )


def _insert_token(
    actor: Principal,
    organization: Organization,
    scope: str,
    group: Group | None,
    new: _NewToken,
    now: datetime,
) -> IssuedToken:
    """Write the token, its technical user (personal tokens act as their owner), its secret's
    digest and the audit event, in one transaction; the unique index settles a name taken
    meanwhile."""
    try:
        with transaction.atomic():
            rows: list[tuple[models.Model, dict[str, int]]] = []
            if scope == TokenScope.PERSONAL:
                user = actor.user
            else:
                user = User(
                    username=_technical_username(organization, new.name),
                    kind=UserKind.TECHNICAL,
                    display_name=new.name,
                )
                user.set_unusable_password()
                rows.append((user, {}))
            token = ApiToken(
                organization=organization,
                group=group,
                scope=scope,
                name=new.name,
                description=new.description,
                user=user,
                role=new.role,
                permissions=new.permissions,
                expires_at=new.expires_at,
                allowed_addresses=new.addresses.allowed_addresses,
                ip_filter=new.addresses.ip_filter,
                ip_filter_from_policy=new.addresses.from_policy,
                created_at=now,
                created_by=actor.user,
                created_by_name=actor.name[:150],
                modified_at=now,
                modified_by=actor.user,
                modified_by_name=actor.name[:150],
            )
            secret = token_format.generate(scope)
            secret_row = _secret_row(token, now, secret)
            # The user (if new), the token and its secret: one statement on PostgreSQL.
            rows.append((token, {"user_id": 0} if rows else {}))
            rows.append((secret_row, {"token_id": len(rows) - 1}))
            insert_linked(rows)
            _record(actor, "token.created", token, audit.diff({}, _snapshot(token)))
    except IntegrityError:
        # Two creations with the same name at once: the database's unique index decides.
        raise ValidationError(
            {"name": [f"{_article(scope)} {scope} token named {new.name!r} already exists."]}
        ) from None
    return IssuedToken(token=token, secret=secret)


def replacement_name(token: ApiToken) -> str:
    """A free name for a leaked token's replacement: its name with " (replacement)", numbered
    when that is taken too."""
    for number in range(1, 100):
        suffix = " (replacement)" if number == 1 else f" (replacement {number})"
        name = token.name[: NAME_MAX_LENGTH - len(suffix)] + suffix
        if not _name_taken(
            token.organization, token.scope, name, group=token.group, owner=token.user
        ):
            return name
    return token.name


def replacement_draft(*, actor: Principal, token: ApiToken) -> dict[str, Any]:
    """What the create form starts from to replace a leaked token: its name with a suffix, its
    role and permissions, its own IP filter and addresses (an enforced filter comes anyway). The
    replacement is then created like any token, its secret shown once."""
    _require_visible(actor, token)
    rules.require_replace_token(actor, token)
    return {
        "name": replacement_name(token),
        "role": token.role,
        "permissions": sorted(token.granted_permissions()),
        "ip_filter": None if token.ip_filter_from_policy else token.ip_filter_id,
        "allowed_addresses": "\n".join(token.allowed_addresses),
    }


def create_token(
    *,
    actor: Principal,
    organization: Organization,
    name: str,
    description: str = "",
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
    rules.require_same_organization(actor, organization.pk)
    if scope not in TokenScope.values:
        raise ValidationError({"scope": ["Choose organization, group or personal."]})
    if scope == TokenScope.GROUP:
        if group is None:
            raise ValidationError({"group": ["A group token needs a group."]})
        if group.organization_id != organization.pk:
            raise NotFound("No such group.")
    else:
        group = None
    rules.require_create_token(actor, scope, group.pk if group is not None else None)
    policy = _scope_policy(organization, scope)
    _require_allowed(policy, scope)
    new = _validated_new_token(
        actor,
        organization,
        policy,
        scope=scope,
        group=group,
        name=name,
        description=description,
        role=role,
        permissions=sorted(set(permissions)),
        expires_at=expires_at,
        allowed_addresses=allowed_addresses,
        ip_filter=ip_filter,
        now=now,
    )
    # Nobody creates a token stronger than themselves: they would hold its secret.
    rules.require_grant(
        actor,
        rules.new_token_permissions(actor, scope, new.role, new.permissions),
        "permissions" if new.role == TokenRole.CUSTOM else "role",
    )
    return _insert_token(actor, organization, scope, group, new, now)


# Changes ------------------------------------------------------------------------------------


def _manageable(
    actor: Principal, token: ApiToken, action: str, expected_version: int | None
) -> ApiToken:
    """Lock the token and check, on the row as it is now, that the actor may ``action`` it."""
    _require_visible(actor, token)
    locked = _lock(token, expected_version)
    rules.require_manage_token(actor, locked, action)
    return locked


def _require_allowed(policy: ScopePolicy, scope: str) -> None:
    if not policy.allowed:
        raise PolicyViolation(
            f"The security policy does not allow {scope} tokens.", setting=f"{scope}.allowed"
        )


def regenerate_token(
    *,
    actor: Principal,
    token: ApiToken,
    expected_version: int | None = None,
    grace: timedelta = timedelta(0),
    now: datetime | None = None,
) -> IssuedToken:
    """Issue a new secret; the old one dies at once, or when ``grace`` has passed (never after
    the token's own expiry). The expiry does not move; an expired token is not regenerated."""
    now = now or timezone.now()
    if grace < timedelta(0) or grace > MAX_GRACE:
        raise ValidationError({"grace": ["A grace period is between 0 and 7 days."]})
    with transaction.atomic():
        token = _manageable(actor, token, "regenerate", expected_version)
        policy = _scope_policy(token.organization, token.scope)
        _require_allowed(policy, token.scope)
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
        if token.is_expired(now):
            raise ValidationError(
                {
                    "expiry": [
                        f"The token expired on {token.expires_at:%Y-%m-%d %H:%M} UTC; an expired "
                        "token cannot be regenerated: create a new one."
                    ]
                }
            )
        before = _snapshot(token)
        old_secrets = TokenSecret.objects.filter(token=token)
        ends_at = None
        if grace > timedelta(0):
            ends_at = now + grace
            if token.expires_at is not None:
                ends_at = min(ends_at, token.expires_at)
            # Only the current secret gets a grace period; secrets already ending end now.
            old_secrets.filter(ends_at__isnull=False).delete()
            old_secrets.update(ends_at=ends_at)
        else:
            old_secrets.delete()
        secret = _new_secret(token, now)
        _touch(token, actor, now)
        token.save()
        changes = audit.diff(before, _snapshot(token))
        changes["grace_seconds"] = {"before": None, "after": int(grace.total_seconds())}
        if ends_at is not None:
            changes["previous_secret_ends_at"] = {"before": None, "after": ends_at.isoformat()}
        _record(actor, "token.regenerated", token, changes)
    return IssuedToken(token=token, secret=secret, previous_secret_ends_at=ends_at)


def revoke_token(
    *,
    actor: Principal,
    token: ApiToken,
    expected_version: int | None = None,
    reason: str = "",
    now: datetime | None = None,
) -> ApiToken:
    """Disable the token until it is restored. A kill switch: the write permission in scope is
    enough, however strong the token."""
    now = now or timezone.now()
    _require_visible(actor, token)
    checked = checked_text(
        actor,
        reason,
        label="A reason",
        max_length=REASON_MAX_LENGTH,
        required=False,
        multiline=True,
    )
    if checked.errors:
        raise ValidationError({"reason": checked.errors})
    reason = checked.value
    rules.require_revoke_token(actor, token)
    with transaction.atomic():
        token = _lock(token, expected_version)
        if token.status == TokenStatus.REVOKED:
            raise ValidationError({"status": ["The token is already revoked."]})
        _revoke(actor, token, reason, now)
    return token


def _revoke(actor: Principal, token: ApiToken, reason: str, now: datetime) -> None:
    """Revoke a locked token, audited (callers have checked the actor's right)."""
    before = _snapshot(token)
    token.status = TokenStatus.REVOKED
    token.revoked_at = now
    token.revoked_reason = reason[:REASON_MAX_LENGTH]
    token.revoked_by = actor.user
    token.revoked_by_name = actor.name[:150]
    _touch(token, actor, now)
    token.save()
    _record(actor, "token.revoked", token, audit.diff(before, _snapshot(token)))


def revoke_personal_tokens(
    *, actor: Principal, organization_id: int, user_id: int, reason: str
) -> int:
    """Revoke a person's active personal tokens in an organization, each audited; for the
    membership services when the person leaves (their role no longer backs the tokens).
    Runs inside the caller's transaction; returns how many were revoked."""
    now = timezone.now()
    tokens = (
        ApiToken.objects.select_for_update(of=("self",))
        .select_related("organization", "ip_filter")
        .filter(
            organization_id=organization_id,
            user_id=user_id,
            scope=TokenScope.PERSONAL,
            status=TokenStatus.ACTIVE,
        )
        .order_by("pk")
    )
    count = 0
    for token in tokens:
        _revoke(actor, token, reason, now)
        count += 1
    return count


def restore_token(
    *,
    actor: Principal,
    token: ApiToken,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> ApiToken:
    """Make a revoked token work again (if its kind is still allowed and the actor is at least
    as strong as the token)."""
    now = now or timezone.now()
    with transaction.atomic():
        token = _manageable(actor, token, "restore", expected_version)
        rules.require_restorable(token)
        if token.status != TokenStatus.REVOKED:
            raise ValidationError({"status": ["Only a revoked token can be restored."]})
        _require_allowed(_scope_policy(token.organization, token.scope), token.scope)
        before = _snapshot(token)
        token.status = TokenStatus.ACTIVE
        token.revoked_at = None
        token.revoked_reason = ""
        token.revoked_by = None
        token.revoked_by_name = ""
        _touch(token, actor, now)
        token.save()
        _record(actor, "token.restored", token, audit.diff(before, _snapshot(token)))
    return token


def delete_token(*, actor: Principal, token: ApiToken, expected_version: int | None = None) -> None:
    """Delete the token for good; its technical user is deactivated but kept for history."""
    with transaction.atomic():
        token = _manageable(actor, token, "delete", expected_version)
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
    name, errors = _validate_name(actor, name)
    if errors:
        raise ValidationError({"name": errors})
    try:
        with transaction.atomic():
            token = _manageable(actor, token, "rename", expected_version)
            if _name_taken(
                token.organization,
                token.scope,
                name,
                group=token.group,
                owner=token.user,
                exclude=token.pk,
            ):
                raise ValidationError(
                    {
                        "name": [
                            f"{_article(token.scope)} {token.scope} token named {name!r} "
                            "already exists."
                        ]
                    }
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


def describe_token(
    *,
    actor: Principal,
    token: ApiToken,
    description: str,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> ApiToken:
    """Change what the token says it is for (managed like its name)."""
    now = now or timezone.now()
    description, errors = _validate_description(actor, description)
    if errors:
        raise ValidationError({"description": errors})
    with transaction.atomic():
        token = _manageable(actor, token, "rename", expected_version)
        if description == token.description:
            return token
        before = _snapshot(token)
        token.description = description
        _touch(token, actor, now)
        token.save()
        _record(actor, "token.described", token, audit.diff(before, _snapshot(token)))
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
        token = _manageable(actor, token, "change_permissions", expected_version)
        policy = _scope_policy(token.organization, token.scope)
        if not policy.permission_edits_allowed:
            raise PolicyViolation(
                "The security policy does not allow editing the permissions of these tokens.",
                setting=f"{token.scope}.permission_edits_allowed",
            )
        rules.require_grant(
            actor,
            rules.new_token_permissions(actor, token.scope, role, permissions),
            "permissions" if role == TokenRole.CUSTOM else "role",
        )
        before = _snapshot(token)
        token.role = role
        token.permissions = permissions
        _touch(token, actor, now)
        token.save()
        _record(actor, "token.permissions_changed", token, audit.diff(before, _snapshot(token)))
    return token


def update_token_addresses(
    *,
    actor: Principal,
    token: ApiToken,
    ip_filter: IpFilter | None,
    allowed_addresses: Iterable[str],
    expected_version: int | None = None,
    now: datetime | None = None,
) -> ApiToken:
    """Change the token's IP filter and allowed addresses, where the policy lets tokens carry
    their own (an enforced filter stays)."""
    now = now or timezone.now()
    with transaction.atomic():
        token = _manageable(actor, token, "change_addresses", expected_version)
        policy = _scope_policy(token.organization, token.scope)
        if not policy.custom_ip_allowed:
            raise PolicyViolation(
                "The security policy does not let these tokens carry their own IP filter or "
                "addresses.",
                setting=f"{token.scope}.custom_ip_allowed",
            )
        addresses = _clean_addresses(policy, token.organization, ip_filter, allowed_addresses)
        if addresses.errors:
            raise ValidationError(addresses.errors)
        before = _snapshot(token)
        token.ip_filter = addresses.ip_filter
        token.ip_filter_from_policy = addresses.from_policy
        token.allowed_addresses = addresses.allowed_addresses
        changes = audit.diff(before, _snapshot(token))
        if not changes:
            return token
        _touch(token, actor, now)
        token.save()
        _record(actor, "token.addresses_changed", token, changes)
    return token


UNCHANGED: Any = _Default()  # "leave this as it is" in update_token


def update_token(
    *,
    actor: Principal,
    token: ApiToken,
    expected_version: int,
    name: str = UNCHANGED,
    description: str = UNCHANGED,
    role: str = UNCHANGED,
    permissions: Iterable[str] = UNCHANGED,
    ip_filter: IpFilter | None = UNCHANGED,
    allowed_addresses: Iterable[str] = UNCHANGED,
) -> ApiToken:
    """Change what is given (name, description, role and permissions, IP filter and allowed
    addresses) in one transaction, each part through its own service, each audited; nothing given or
    nothing different still checks the version."""
    # The text is checked before the transaction: a live token pasted into it is treated as
    # leaked in a transaction of its own, which the refusal below must not roll back.
    errors: dict[str, list[str]] = {}
    if name is not UNCHANGED:
        errors["name"] = _validate_name(actor, name)[1]
    if description is not UNCHANGED:
        errors["description"] = _validate_description(actor, description)[1]
    errors = {field_name: found for field_name, found in errors.items() if found}
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        current = _lock(token, expected_version)
        version = expected_version
        if name is not UNCHANGED and name != current.name:
            current = rename_token(actor=actor, token=current, name=name, expected_version=version)
            version = current.version
        if description is not UNCHANGED and description != current.description:
            current = describe_token(
                actor=actor, token=current, description=description, expected_version=version
            )
            version = current.version
        new_role = current.role if role is UNCHANGED else role
        new_permissions = (
            current.permissions if permissions is UNCHANGED else sorted(set(permissions))
        )
        if new_role != current.role or sorted(set(new_permissions)) != sorted(current.permissions):
            current = update_token_permissions(
                actor=actor,
                token=current,
                role=new_role,
                permissions=new_permissions,
                expected_version=version,
            )
            version = current.version
        if ip_filter is not UNCHANGED or allowed_addresses is not UNCHANGED:
            current = update_token_addresses(
                actor=actor,
                token=current,
                ip_filter=current.ip_filter if ip_filter is UNCHANGED else ip_filter,
                allowed_addresses=current.allowed_addresses
                if allowed_addresses is UNCHANGED
                else allowed_addresses,
                expected_version=version,
            )
    return current


@dataclass(frozen=True)
class PolicyRewrite:
    """One set-based change a security policy makes to tokens: the tokens it applies to (a
    condition on ``ApiToken``) and the fields it gives them."""

    applies_to: Q
    values: dict[str, Any]


@dataclass(frozen=True)
class RewriteBatch:
    """What one ``rewrite_for_policy`` call did: the last token id it looked at (None: no
    token matched, the work is done) and how many tokens it changed."""

    last_pk: int | None
    changed: int


# What a policy may change on a token, as ``_snapshot`` names it (and the field read for it).
_POLICY_STATE = {
    "status": "status",
    "revoked_reason": "revoked_reason",
    "expires_at": "expires_at",
    "allowed_addresses": "allowed_addresses",
    "ip_filter": "ip_filter__name",
}
_NAMING = ("pk", "name", "partial_token", "group_id")


def _policy_snapshots(tokens: Any, keys: list[str]) -> dict[int, dict[str, Any]]:
    """The ``keys`` of ``_snapshot`` of many tokens in one query, by id, with what names each
    token in the audit log."""
    fields = [_POLICY_STATE[key] for key in keys]
    rows = {}
    for row in tokens.order_by().values(*_NAMING, *fields):
        if "ip_filter" in keys:
            row["ip_filter"] = row.pop("ip_filter__name")
        rows[row["pk"]] = row
    return rows


def _any(rewrites: list[PolicyRewrite]) -> Q:
    condition = Q(pk__in=[])
    for rewrite in rewrites:
        condition |= rewrite.applies_to
    return condition


def _rewritten_fields(rewrites: list[PolicyRewrite]) -> dict[str, Case]:
    """Every field the rewrites set, as one ``CASE`` each: the first rewrite that applies to a
    row gives its value, else the row keeps its own. One UPDATE then writes each token once
    (one new row version, one entry in each index, on PostgreSQL), where an UPDATE per rewrite
    and one for the version wrote it up to four times."""
    cases: dict[str, list[When]] = {}
    for rewrite in rewrites:
        for name, value in rewrite.values.items():
            if isinstance(value, models.Model):
                value = value.pk
            cases.setdefault(name, []).append(
                When(rewrite.applies_to, then=Value(value, output_field=_output_field(name)))
            )
    return {
        name: Case(
            *whens,
            default=F(_attname(name)),
            output_field=_output_field(name),
        )
        for name, whens in cases.items()
    }


def _attname(name: str) -> str:
    """The column attribute of one of the token's concrete fields."""
    field = ApiToken._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field.attname


def _output_field(name: str) -> Any:
    field = ApiToken._meta.get_field(name)
    return field.target_field if field.is_relation else field  # type: ignore[union-attr]


def rewrite_for_policy(
    *,
    actor: audit.Actor,
    organization: Organization,
    candidates: Q,
    rewrites: Iterable[PolicyRewrite],
    now: datetime,
    after_pk: int = 0,
    limit: int = 1000,
) -> RewriteBatch:
    """Bring the next ``limit`` tokens (by id, after ``after_pk``) of the organization that
    match ``candidates`` in line with a security policy, in one transaction: each rewrite is
    one UPDATE over the tokens of that id range it applies to; each token changed gets its
    version bumped once and one audit event with its before and after ("token.revoked" if it
    was revoked, else "token.policy_applied"), all written in one insert.

    The policy services call this after checking the actor's right to change the policy.
    Rewrites are evaluated at once on each row (the first that applies gives a field its
    value); they must be idempotent (a token they changed no longer matches them), must change
    every token they apply to, and must apply only to ``candidates``, so that a batch repeated
    after a crash finds nothing left to do for the tokens it already changed.
    """
    rewrites = list(rewrites)
    # Only what the rewrites may change is read before and after: the audit says what changed.
    written = {name for rewrite in rewrites for name in rewrite.values}
    keys = [key for key in _POLICY_STATE if key in written]
    with transaction.atomic():
        pks = list(
            ApiToken.objects.filter(candidates, organization=organization, pk__gt=after_pk)
            .order_by("pk")
            .values_list("pk", flat=True)[:limit]
        )
        if not pks:
            return RewriteBatch(last_pk=None, changed=0)
        # An id range, not a list of ids: the same rows, and a statement built in a fraction
        # of the time. Locked first, so that the before and after read here are this batch's.
        in_range = ApiToken.objects.filter(
            organization=organization, pk__gt=after_pk, pk__lte=pks[-1]
        )
        before = _policy_snapshots(in_range.select_for_update(of=("self",)), keys)
        in_range.filter(_any(rewrites)).update(
            **_rewritten_fields(rewrites),
            version=F("version") + 1,
            modified_at=now,
            modified_by=actor.user,
            modified_by_name=actor.name[:150],
        )
        after = _policy_snapshots(in_range, keys)
        entries = []
        for pk, row in after.items():
            changes = audit.diff(
                {key: before[pk][key] for key in keys}, {key: row[key] for key in keys}
            )
            if not changes:
                continue
            revoked = changes.get("status", {}).get("after") == TokenStatus.REVOKED
            entries.append(
                audit.Entry(
                    action="token.revoked" if revoked else "token.policy_applied",
                    object_type="api_token",
                    object_id=pk,
                    object_repr=f"{row['name']} ({row['partial_token']})",
                    group_id=row["group_id"],
                    changes=changes,
                )
            )
        audit.record_many(actor=actor, organization=organization, entries=entries)
    return RewriteBatch(last_pk=pks[-1], changed=len(entries))


def _article(word: str) -> str:
    """'An organization', 'A group', 'A personal': the article English puts before a word."""
    return "An" if word[:1].lower() in "aeiou" else "A"


def permission_changes(
    token: ApiToken, role: str, permissions: Iterable[str]
) -> dict[str, list[str]]:
    """What an edit would add and remove, for a preview before saving."""
    current = token.granted_permissions()
    proposed = catalog.for_role(role, token.scope, list(permissions))
    return {"added": sorted(proposed - current), "removed": sorted(current - proposed)}

"""Every change to an IP filter or a security policy: rights, version, audit, one transaction.

Console views, the API, admin actions and commands call these and nothing else. A policy
change is previewed first (``preview_policy_change``); applying it
(``update_security_policy``) does exactly what the preview lists, token by token.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from access import rules
from access.errors import NotFound, VersionConflict
from access.principal import Principal
from orgs import audit, names
from orgs.durations import format_duration, parse_duration
from orgs.models import Organization
from policies import rules as ip_rules
from policies.models import SCOPES, IpFilter, ScopePolicy, SecurityPolicy
from tokens import services as token_services
from tokens.models import ApiToken, TokenStatus

NAME_MAX_LENGTH = 100
DESCRIPTION_MAX_LENGTH = 300
RULES_MAX_LENGTH = 20_000
MAX_GRACE_LIMIT = token_services.MAX_GRACE

BOOLEAN_SETTINGS = (
    "allowed",
    "expiry_required",
    "custom_ip_allowed",
    "permission_edits_allowed",
    "regeneration_allowed",
)
# In the order people read them: kind, lifetime, addresses, edits, regeneration.
SETTINGS = (
    "allowed",
    "max_lifetime",
    "expiry_required",
    "enforced_ip_filter",
    "custom_ip_allowed",
    "permission_edits_allowed",
    "regeneration_allowed",
    "max_grace",
)
SETTING_LABELS = {
    "allowed": "allowed",
    "max_lifetime": "maximum lifetime",
    "expiry_required": "expiry required",
    "enforced_ip_filter": "enforced IP filter",
    "custom_ip_allowed": "own IP filter or addresses allowed",
    "permission_edits_allowed": "permission edits allowed",
    "regeneration_allowed": "regeneration allowed",
    "max_grace": "longest grace period",
}


# Results ------------------------------------------------------------------------------------


USERS_SHOWN = 100


@dataclass(frozen=True)
class FilterUse:
    """Who uses a filter, as one viewer may know it: the tokens it may see (the first
    ``USERS_SHOWN``), how many of those there are, how many others it may not see, and the
    policy scopes that enforce the filter."""

    tokens: list[ApiToken]
    visible_count: int
    hidden_count: int
    policy_scopes: list[str]

    @property
    def in_use(self) -> bool:
        return bool(self.visible_count or self.hidden_count or self.policy_scopes)


class IpFilterInUse(ValidationError):
    """Deleting was refused: tokens or the security policy still use the filter.

    A ValidationError on ``ip_filter`` whose message lists the users; ``tokens`` and
    ``policy_scopes`` hold them for callers that show a list.
    """

    def __init__(self, *, ip_filter: IpFilter, use: FilterUse) -> None:
        self.ip_filter = ip_filter
        self.use = use
        self.summary = _in_use_message(ip_filter, use)
        super().__init__({"ip_filter": [self.summary]})


def _in_use_message(ip_filter: IpFilter, use: FilterUse) -> str:
    users = []
    if use.policy_scopes:
        users.append(
            "the security policy enforces it on "
            + " and ".join(f"{scope} tokens" for scope in use.policy_scopes)
        )
    total = use.visible_count + use.hidden_count
    if total:
        names = ", ".join(token.name for token in use.tokens[:10])
        shown = min(len(use.tokens), 10)
        rest = total - shown
        noun = "token uses" if total == 1 else "tokens use"
        detail = f" ({names}{f' and {rest} more' if rest else ''})" if names else ""
        users.append(f"{total} {noun} it{detail}")
    return f"The IP filter {ip_filter.name!r} is in use: " + "; ".join(users) + "."


@dataclass(frozen=True)
class SettingChange:
    """One setting of one scope, before and after, as people read it."""

    scope: str
    setting: str
    before: Any
    after: Any

    @property
    def label(self) -> str:
        return f"{self.scope} tokens: {SETTING_LABELS[self.setting]}"

    @property
    def before_text(self) -> str:
        return describe_setting(self.setting, self.before)

    @property
    def after_text(self) -> str:
        return describe_setting(self.setting, self.after)


@dataclass(frozen=True)
class TokenChange:
    """What applying a policy does to one token: ``before`` and ``after`` of one property."""

    token: ApiToken
    before: Any
    after: Any


@dataclass(frozen=True)
class PolicyImpact:
    """What a policy change does: its setting changes and every token it touches.

    ``revoked``: active tokens of a kind no longer allowed (revoked, not deleted).
    ``expiry_shortened``: tokens whose expiry moves to the new maximum (after = new expiry).
    ``ip_filter_enforced``: tokens that get the enforced IP filter (before/after = filter name).
    ``ip_filter_released``: tokens whose filter the policy had put there and no longer enforces;
    they lose it (before = filter name, after = None).
    ``custom_ip_removed``: tokens that lose their own filter or addresses (before/after =
    ``{"ip_filter": name | None, "allowed_addresses": [...]}``).
    ``without_expiry``: tokens that keep having no expiry although one becomes required
    (the requirement applies to new tokens; a maximum lifetime shortens existing ones).
    A token can be in several lists. Tokens already expired are never touched.
    """

    setting_changes: list[SettingChange] = field(default_factory=list)
    revoked: list[TokenChange] = field(default_factory=list)
    expiry_shortened: list[TokenChange] = field(default_factory=list)
    ip_filter_enforced: list[TokenChange] = field(default_factory=list)
    ip_filter_released: list[TokenChange] = field(default_factory=list)
    custom_ip_removed: list[TokenChange] = field(default_factory=list)
    without_expiry: list[TokenChange] = field(default_factory=list)
    policy_version: int = 1

    @property
    def touched_tokens(self) -> list[ApiToken]:
        """Every token a change applies to, once each, in list order."""
        seen: dict[int, ApiToken] = {}
        for change in (
            *self.revoked,
            *self.expiry_shortened,
            *self.ip_filter_enforced,
            *self.ip_filter_released,
            *self.custom_ip_removed,
        ):
            seen.setdefault(change.token.pk, change.token)
        return list(seen.values())

    @property
    def has_changes(self) -> bool:
        return bool(self.setting_changes)

    def summary(self, *, applied: bool = False) -> list[str]:
        """One sentence per kind of token change: "3 tokens would be revoked", or with
        ``applied`` "3 tokens were revoked"."""

        def say(changes: list[TokenChange], would: str, did_one: str, did_many: str) -> str:
            count = len(changes)
            noun = f"{count} token{'s' if count != 1 else ''}"
            if not applied:
                return f"{noun} {would}"
            return f"{noun} {did_one if count == 1 else did_many}"

        lines = []
        if self.expiry_shortened:
            latest = max(change.after for change in self.expiry_shortened)
            until = f"(to {latest:%Y-%m-%d %H:%M} UTC at the latest)"
            lines.append(
                say(
                    self.expiry_shortened,
                    f"would have their expiry shortened {until}",
                    f"had its expiry shortened {until}",
                    f"had their expiry shortened {until}",
                )
            )
        if self.revoked:
            lines.append(
                say(
                    self.revoked,
                    "of a disallowed kind would be revoked",
                    "of a disallowed kind was revoked",
                    "of a disallowed kind were revoked",
                )
            )
        if self.ip_filter_enforced:
            lines.append(
                say(
                    self.ip_filter_enforced,
                    "would get the enforced IP filter",
                    "got the enforced IP filter",
                    "got the enforced IP filter",
                )
            )
        if self.ip_filter_released:
            lines.append(
                say(
                    self.ip_filter_released,
                    "would lose the IP filter the policy no longer enforces",
                    "lost the IP filter the policy no longer enforces",
                    "lost the IP filter the policy no longer enforces",
                )
            )
        if self.custom_ip_removed:
            lines.append(
                say(
                    self.custom_ip_removed,
                    "would lose their own IP filter or addresses",
                    "lost its own IP filter or addresses",
                    "lost their own IP filter or addresses",
                )
            )
        return lines

    def fingerprint(self) -> str:
        """A short digest of the settings and token changes, to check a preview is current."""
        parts = [
            f"{change.scope}.{change.setting}={change.after_text}"
            for change in self.setting_changes
        ]
        for kind, changes in (
            ("revoke", self.revoked),
            ("expiry", self.expiry_shortened),
            ("filter", self.ip_filter_enforced),
            ("released", self.ip_filter_released),
            ("custom", self.custom_ip_removed),
        ):
            parts.extend(f"{kind}:{change.token.pk}" for change in changes)
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


class ImpactChanged(VersionConflict):
    """The tokens a policy change touches are not those the caller previewed."""

    def __init__(self, current_version: int) -> None:
        super().__init__(current_version)
        self.message = (
            "Tokens changed since the preview, so applying would not do what it showed. "
            "Review the new preview and apply again."
        )
        self.args = (self.message,)


def describe_setting(setting: str, value: Any) -> str:
    """A setting's value as the console and the audit log show it."""
    if setting in BOOLEAN_SETTINGS:
        return "yes" if value else "no"
    if setting == "max_lifetime":
        return format_duration(value) if value is not None else "unlimited"
    if setting == "max_grace":
        return format_duration(value) if value else "none"
    if setting == "enforced_ip_filter":
        return value.name if value is not None else "none"
    return str(value)


# Rights -------------------------------------------------------------------------------------


def _require_filter_visible(actor: Principal, ip_filter: IpFilter) -> None:
    if not IpFilter.objects.visible_to(actor).filter(pk=ip_filter.pk).exists():
        raise NotFound("No such IP filter.")


# IP filters ---------------------------------------------------------------------------------


def _filter_snapshot(ip_filter: IpFilter) -> dict[str, Any]:
    return {
        "name": ip_filter.name,
        "description": ip_filter.description,
        "rules_text": ip_filter.rules_text,
    }


def _record_filter(actor: Principal, action: str, ip_filter: IpFilter, changes: dict) -> None:
    audit.record(
        actor=actor,
        action=action,
        organization=ip_filter.organization,
        object_type="ip_filter",
        object_id=ip_filter.pk,
        object_repr=ip_filter.name,
        changes=changes,
    )


def _rule_message(rule_error: ip_rules.RuleError) -> str:
    if rule_error.line:
        return f"Line {rule_error.line}: {rule_error.message}."
    return f"{rule_error.message[:1].upper()}{rule_error.message[1:]}."


def _clean_filter_fields(
    actor: Principal,
    organization: Organization,
    *,
    name: str,
    description: str,
    rules_text: str,
    exclude: int | None = None,
) -> tuple[str, str, str]:
    """Validate a filter's fields; raise ValidationError naming every bad one (and rule line)."""
    errors: dict[str, list[Any]] = {}
    checked_name = token_services.checked_text(
        actor, name, label="A name", max_length=NAME_MAX_LENGTH
    )
    checked_description = token_services.checked_text(
        actor,
        description,
        label="A description",
        max_length=DESCRIPTION_MAX_LENGTH,
        required=False,
    )
    name, description = checked_name.value, checked_description.value
    rules_text = (rules_text or "").replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    if checked_name.errors:
        errors["name"] = checked_name.errors
    else:
        taken = IpFilter.objects.filter(organization=organization, name_key=names.name_key(name))
        if exclude is not None:
            taken = taken.exclude(pk=exclude)
        if taken.exists():
            errors["name"] = [
                f"An IP filter named {name!r}, or one that looks the same, already exists."
            ]
    if checked_description.errors:
        errors["description"] = checked_description.errors
    if len(rules_text) > RULES_MAX_LENGTH:
        errors["rules_text"] = [f"Rules are at most {RULES_MAX_LENGTH} characters."]
    else:
        try:
            parsed = ip_rules.parse_rules(rules_text)
        except ip_rules.RuleSyntaxError as error:
            # One error per bad line; ``params["line"]`` lets an editor mark the line. Django
            # %-formats a message that has params, so a '%' typed in a rule is doubled.
            errors["rules_text"] = [
                ValidationError(
                    _rule_message(rule_error).replace("%", "%%"),
                    code="invalid_rule",
                    params={"line": rule_error.line},
                )
                for rule_error in error.errors
            ]
        else:
            if not parsed:
                errors["rules_text"] = [
                    "Write at least one rule (a filter without rules denies every address; "
                    "write 'deny all' if that is what you want)."
                ]
    if errors:
        raise ValidationError(errors)
    return name, description, rules_text


def create_ip_filter(
    *,
    actor: Principal,
    organization: Organization,
    name: str,
    rules_text: str,
    description: str = "",
) -> IpFilter:
    """Create a named IP filter; bad rules raise ValidationError with one error per bad line.

    Needs ``api.ip-filters.write``.
    """
    rules.require_same_organization(actor, organization.pk)
    rules.require_write_ip_filters(actor)
    name, description, rules_text = _clean_filter_fields(
        actor, organization, name=name, description=description, rules_text=rules_text
    )
    now = timezone.now()
    try:
        with transaction.atomic():
            ip_filter = IpFilter.objects.create(
                organization=organization,
                name=name,
                description=description,
                rules_text=rules_text,
                created_at=now,
                created_by=actor.user,
                modified_at=now,
                modified_by=actor.user,
            )
            _record_filter(
                actor, "ip_filter.created", ip_filter, audit.diff({}, _filter_snapshot(ip_filter))
            )
    except IntegrityError:
        raise ValidationError({"name": [f"An IP filter named {name!r} already exists."]}) from None
    return ip_filter


def _lock_filter(ip_filter: IpFilter, expected_version: int | None) -> IpFilter:
    try:
        locked = (
            IpFilter.objects.select_for_update().select_related("organization").get(pk=ip_filter.pk)
        )
    except IpFilter.DoesNotExist:
        raise NotFound("No such IP filter.") from None
    if expected_version is not None and locked.version != expected_version:
        raise VersionConflict(locked.version)
    return locked


def update_ip_filter(
    *,
    actor: Principal,
    ip_filter: IpFilter,
    expected_version: int | None = None,
    name: str | None = None,
    rules_text: str | None = None,
    description: str | None = None,
) -> IpFilter:
    """Change a filter's name, description or rules (None keeps a field); effective at once
    for every token that uses it. Needs ``api.ip-filters.write``."""
    _require_filter_visible(actor, ip_filter)
    rules.require_write_ip_filters(actor)
    try:
        with transaction.atomic():
            locked = _lock_filter(ip_filter, expected_version)
            new_name, new_description, new_rules = _clean_filter_fields(
                actor,
                locked.organization,
                name=locked.name if name is None else name,
                description=locked.description if description is None else description,
                rules_text=locked.rules_text if rules_text is None else rules_text,
                exclude=locked.pk,
            )
            before = _filter_snapshot(locked)
            locked.name, locked.description, locked.rules_text = (
                new_name,
                new_description,
                new_rules,
            )
            changes = audit.diff(before, _filter_snapshot(locked))
            if "rules_text" in changes:
                rules.require_not_weaker_than_tokens(
                    actor,
                    ApiToken.objects.filter(ip_filter=locked).only(
                        "pk", "name", "scope", "role", "permissions", "user_id", "organization_id"
                    ),
                    "change the rules of this filter",
                )
            if changes:
                locked.version += 1
                locked.modified_at = timezone.now()
                locked.modified_by = actor.user
                locked.save()
                _record_filter(actor, "ip_filter.changed", locked, changes)
    except IntegrityError:
        taken = (name or ip_filter.name).strip()
        raise ValidationError({"name": [f"An IP filter named {taken!r} already exists."]}) from None
    return locked


def filter_users(ip_filter: IpFilter, viewer: Principal) -> FilterUse:
    """The tokens that carry this filter (only those the viewer may see are named) and the
    policy scopes that enforce it."""
    using = ApiToken.objects.filter(ip_filter=ip_filter)
    visible = ApiToken.objects.visible_to(viewer).filter(ip_filter=ip_filter)
    visible_count = visible.count()
    tokens = list(visible.select_related("group").order_by("name", "pk")[:USERS_SHOWN])
    policy = _load_policy(ip_filter.organization)
    scopes = [
        scope for scope in SCOPES if policy.for_scope(scope).enforced_ip_filter_id == ip_filter.pk
    ]
    return FilterUse(
        tokens=tokens,
        visible_count=visible_count,
        hidden_count=using.count() - visible_count,
        policy_scopes=scopes,
    )


def delete_ip_filter(
    *, actor: Principal, ip_filter: IpFilter, expected_version: int | None = None
) -> None:
    """Delete a filter no token and no policy scope uses; otherwise raise IpFilterInUse
    (a ValidationError on ``ip_filter``) listing them. Needs ``api.ip-filters.delete``."""
    _require_filter_visible(actor, ip_filter)
    rules.require_delete_ip_filters(actor)
    with transaction.atomic():
        locked = _lock_filter(ip_filter, expected_version)
        use = filter_users(locked, actor)
        if use.in_use:
            raise IpFilterInUse(ip_filter=locked, use=use)
        _record_filter(actor, "ip_filter.deleted", locked, audit.diff(_filter_snapshot(locked), {}))
        locked.delete()


def check_address(*, ip_filter: IpFilter, address: str) -> ip_rules.Decision:
    """Test an address against a filter: allowed or denied, and the rule (line) that decided.

    ``decision.rule`` is None when no rule matched (denied). An address that is not an IPv4
    or IPv6 address raises ValidationError on ``address``.
    """
    text = (address or "").strip()
    if not text:
        raise ValidationError({"address": ["Type an IPv4 or IPv6 address."]})
    try:
        parsed = ip_rules.parse_address(text[:100])
    except ValueError:
        raise ValidationError(
            {"address": [f"{text[:100]!r} is not an IPv4 or IPv6 address."]}
        ) from None
    return ip_rules.decide(ip_rules.parse_rules(ip_filter.rules_text), parsed)


# Security policy ----------------------------------------------------------------------------


def _load_policy(organization: Organization, *, lock: bool = False) -> SecurityPolicy:
    queryset = SecurityPolicy.objects.select_related(
        "organization",
        "organization_tokens__enforced_ip_filter",
        "group_tokens__enforced_ip_filter",
        "personal_tokens__enforced_ip_filter",
    )
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    return queryset.get(organization=organization)


def _parse_duration_value(value: Any, *, allow_zero: bool) -> timedelta | None:
    if value is None or isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if allow_zero and text == "0":
            return timedelta(0)
        return parse_duration(text)
    raise ValueError("write a duration such as 90m, 12h or 30d")


def _clean_changes(
    organization: Organization, policy: SecurityPolicy, changes: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Validate ``{scope: {setting: value}}``; raise ValidationError keyed ``scope.setting``."""
    if not isinstance(changes, dict):
        raise ValidationError({"changes": ["Give the changes as {scope: {setting: value}}."]})
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, dict[str, Any]] = {}
    for scope, settings in changes.items():
        if scope not in SCOPES:
            errors[str(scope)] = ["Choose organization, group or personal."]
            continue
        if not isinstance(settings, dict):
            errors[scope] = ["Give the settings of a scope as {setting: value}."]
            continue
        cleaned[scope] = {}
        for setting, value in settings.items():
            key = f"{scope}.{setting}"
            if setting not in SETTINGS:
                errors[key] = [f"Unknown setting; use one of {', '.join(SETTINGS)}."]
            elif setting in BOOLEAN_SETTINGS:
                if not isinstance(value, bool):
                    errors[key] = ["Give true or false."]
                else:
                    cleaned[scope][setting] = value
            elif setting in ("max_lifetime", "max_grace"):
                try:
                    duration = _parse_duration_value(value, allow_zero=setting == "max_grace")
                except ValueError as error:
                    errors[key] = [f"{str(error)[:1].upper()}{str(error)[1:]}."]
                    continue
                if setting == "max_lifetime":
                    if duration is not None and duration < timedelta(minutes=1):
                        errors[key] = ["A maximum lifetime is at least one minute (or unset)."]
                    else:
                        cleaned[scope][setting] = duration
                elif duration is None or not timedelta(0) <= duration <= MAX_GRACE_LIMIT:
                    errors[key] = [
                        f"A grace period is between 0 and {format_duration(MAX_GRACE_LIMIT)}."
                    ]
                else:
                    cleaned[scope][setting] = duration
            else:  # enforced_ip_filter
                try:
                    cleaned[scope][setting] = _resolve_filter(organization, value)
                except ValueError as error:
                    errors[key] = [str(error)]
    if errors:
        raise ValidationError(errors)
    return cleaned


def _resolve_filter(organization: Organization, value: Any) -> IpFilter | None:
    if value is None or value == "":
        return None
    if isinstance(value, IpFilter):
        filter_id: Any = value.pk
    elif isinstance(value, int | str) and not isinstance(value, bool):
        filter_id = value
    else:
        raise ValueError("Give the IP filter's id, or null for none.")
    try:
        return IpFilter.objects.get(organization=organization, pk=int(filter_id))
    except (IpFilter.DoesNotExist, TypeError, ValueError):
        raise ValueError("No such IP filter in this organization.") from None


def _proposed(scope_policy: ScopePolicy, settings: dict[str, Any]) -> dict[str, Any]:
    current = {
        setting: getattr(scope_policy, setting)
        for setting in SETTINGS
        if setting != "enforced_ip_filter"
    }
    current["enforced_ip_filter"] = scope_policy.enforced_ip_filter
    return {**current, **settings}


def _same(setting: str, before: Any, after: Any) -> bool:
    if setting == "enforced_ip_filter":
        return (before.pk if before else None) == (after.pk if after else None)
    return before == after


def _impact(
    organization: Organization,
    policy: SecurityPolicy,
    cleaned: dict[str, dict[str, Any]],
    now: datetime,
    *,
    lock: bool = False,
) -> tuple[PolicyImpact, dict[str, dict[str, Any]]]:
    """Work out the impact of the cleaned changes; also return each scope's new settings."""
    impact = PolicyImpact(policy_version=policy.version)
    proposed_by_scope: dict[str, dict[str, Any]] = {}
    for scope in SCOPES:
        scope_policy = policy.for_scope(scope)
        proposed = _proposed(scope_policy, cleaned.get(scope, {}))
        proposed_by_scope[scope] = proposed
        for setting in SETTINGS:
            before = getattr(scope_policy, setting)
            if not _same(setting, before, proposed[setting]):
                impact.setting_changes.append(
                    SettingChange(scope, setting, before, proposed[setting])
                )
        tokens = (
            ApiToken.objects.filter(organization=organization, scope=scope)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            .select_related("ip_filter", "group", "user")
            .order_by("name", "pk")
        )
        if lock:
            tokens = tokens.select_for_update(of=("self",))
        enforced = proposed["enforced_ip_filter"]
        max_lifetime = proposed["max_lifetime"]
        latest = now + max_lifetime if max_lifetime is not None else None
        for token in tokens:
            if not proposed["allowed"] and token.status == TokenStatus.ACTIVE:
                impact.revoked.append(TokenChange(token, TokenStatus.ACTIVE, TokenStatus.REVOKED))
            if latest is not None and (token.expires_at is None or token.expires_at > latest):
                impact.expiry_shortened.append(TokenChange(token, token.expires_at, latest))
            elif (
                proposed["expiry_required"]
                and not scope_policy.expiry_required
                and token.expires_at is None
            ):
                impact.without_expiry.append(TokenChange(token, None, None))
            if enforced is not None and token.ip_filter_id != enforced.pk:
                impact.ip_filter_enforced.append(
                    TokenChange(
                        token, token.ip_filter.name if token.ip_filter else None, enforced.name
                    )
                )
            elif enforced is None and token.ip_filter_from_policy and token.ip_filter is not None:
                impact.ip_filter_released.append(TokenChange(token, token.ip_filter.name, None))
            if not proposed["custom_ip_allowed"]:
                own = enforced is None and not token.ip_filter_from_policy
                own_filter = token.ip_filter if own else None
                if own_filter is not None or token.allowed_addresses:
                    impact.custom_ip_removed.append(
                        TokenChange(
                            token,
                            {
                                "ip_filter": own_filter.name if own_filter else None,
                                "allowed_addresses": list(token.allowed_addresses),
                            },
                            {"ip_filter": None, "allowed_addresses": []},
                        )
                    )
    return impact, proposed_by_scope


def preview_policy_change(
    *,
    actor: Principal,
    organization: Organization,
    changes: dict[str, dict[str, Any]],
    now: datetime | None = None,
) -> PolicyImpact:
    """Say what ``update_security_policy`` with these changes would do, changing nothing.

    ``changes`` is ``{scope: {setting: value}}`` with scope ``organization|group|personal``
    and settings ``allowed``, ``expiry_required``, ``custom_ip_allowed``,
    ``permission_edits_allowed``, ``regeneration_allowed`` (bool), ``max_lifetime`` (timedelta,
    duration text like ``90d``, or None for unlimited), ``max_grace`` (timedelta or text, at
    most 7 days), ``enforced_ip_filter`` (IpFilter, its id, or None). Bad values raise
    ValidationError keyed ``scope.setting``. Needs ``api.security-policies.write``.
    """
    now = now or timezone.now()
    rules.require_same_organization(actor, organization.pk)
    rules.require_change_policy(actor)
    policy = _load_policy(organization)
    cleaned = _clean_changes(organization, policy, changes)
    impact, _ = _impact(organization, policy, cleaned, now)
    return impact


def update_security_policy(
    *,
    actor: Principal,
    organization: Organization,
    changes: dict[str, dict[str, Any]],
    expected_version: int | None = None,
    expected_impact: str | None = None,
    now: datetime | None = None,
) -> PolicyImpact:
    """Change the policy and bring existing tokens in line, exactly as the preview says.

    ``changes`` as for ``preview_policy_change``. Tokens of a disallowed kind are revoked (not
    deleted), expiries beyond the new maximum shortened, the enforced filter set, own filters
    and addresses removed where no longer allowed; each token change is audited. With
    ``expected_impact`` (a preview's ``fingerprint()``), refuses with ImpactChanged if the
    tokens touched differ from the preview. Returns the impact that was applied.
    """
    now = now or timezone.now()
    rules.require_same_organization(actor, organization.pk)
    rules.require_change_policy(actor)
    with transaction.atomic():
        policy = _load_policy(organization, lock=True)
        if expected_version is not None and policy.version != expected_version:
            raise VersionConflict(policy.version)
        cleaned = _clean_changes(organization, policy, changes)
        impact, proposed_by_scope = _impact(organization, policy, cleaned, now, lock=True)
        if expected_impact is not None and impact.fingerprint() != expected_impact:
            raise ImpactChanged(policy.version)
        # Changing the address rules of tokens is managing them: not of tokens stronger than
        # the actor. Revoking and shortening only ever restrict, and stay open to the policy's
        # writers.
        rules.require_not_weaker_than_tokens(
            actor,
            [
                change.token
                for change in (
                    *impact.ip_filter_enforced,
                    *impact.ip_filter_released,
                    *impact.custom_ip_removed,
                )
            ],
            "change these tokens' IP filter or addresses",
        )
        if not impact.setting_changes and not impact.touched_tokens:
            return impact
        for scope in SCOPES:
            scope_policy = policy.for_scope(scope)
            for setting, value in proposed_by_scope[scope].items():
                setattr(scope_policy, setting, value)
            scope_policy.save()
        policy.version += 1
        policy.modified_at = now
        policy.modified_by = actor.user
        policy.save(update_fields=["version", "modified_at", "modified_by"])
        if impact.setting_changes:
            audit.record(
                actor=actor,
                action="security_policy.changed",
                organization=organization,
                object_type="security_policy",
                object_id=policy.pk,
                object_repr=f"Security policy of {organization.name}",
                changes={
                    f"{change.scope}.{change.setting}": {
                        "before": change.before_text,
                        "after": change.after_text,
                    }
                    for change in impact.setting_changes
                },
            )
        _apply_to_tokens(actor, policy, impact, now)
    return replace(impact, policy_version=policy.version)


def _apply_to_tokens(
    actor: Principal, policy: SecurityPolicy, impact: PolicyImpact, now: datetime
) -> None:
    """Change each touched token once, through the token services' policy entry point, so these
    events read like any other token change in the log."""
    revoked = {change.token.pk for change in impact.revoked}
    expiries = {change.token.pk: change.after for change in impact.expiry_shortened}
    enforced = {change.token.pk for change in impact.ip_filter_enforced}
    released = {change.token.pk for change in impact.ip_filter_released}
    custom_removed = {change.token.pk for change in impact.custom_ip_removed}
    for token in impact.touched_tokens:
        token_services.apply_policy(
            actor=actor,
            token=token,
            revoke_reason=f"The security policy no longer allows {token.scope} tokens."
            if token.pk in revoked
            else None,
            expires_at=expiries.get(token.pk),
            ip_filter=policy.for_scope(token.scope).enforced_ip_filter
            if token.pk in enforced
            else None,
            release_ip_filter=token.pk in released,
            remove_own_addresses=token.pk in custom_removed,
            now=now,
        )

"""What a security policy change does: its setting changes and, per kind of change, how many
existing tokens it touches and the first of them.

A kind of change (``ChangeKind``) is one thing a policy does to existing tokens: revoke them,
shorten their expiry, give them the enforced IP filter... Each says, per scope, which tokens it
applies to as one condition on ``ApiToken`` and what it sets on them, so that the preview counts
them with one query and the apply (``policies.services.apply``) rewrites them set-based. A new
kind is one more class in ``KINDS`` and one template in ``templates/policies/impact/``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from access import rules
from access.errors import VersionConflict
from access.principal import Principal
from orgs.durations import format_duration, parse_duration
from orgs.models import Organization
from policies.models import (
    REVOKE_UNUSED_MAX_DAYS,
    REVOKE_UNUSED_MIN_DAYS,
    SCOPES,
    IpFilter,
    ScopePolicy,
    SecurityPolicy,
)
from tokens import services as token_services
from tokens import unused
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
    "revoke_unused_days",
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
    "revoke_unused_days": "revoke tokens unused for",
}


# Settings -------------------------------------------------------------------------------------


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
    if setting == "revoke_unused_days":
        return f"{value} days" if value is not None else "off"
    return str(value)


def load_policy(organization: Organization, *, lock: bool = False) -> SecurityPolicy:
    queryset = SecurityPolicy.objects.with_scopes()
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    return queryset.get(organization=organization)


def parse_duration_value(value: Any, *, allow_zero: bool) -> timedelta | None:
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


def clean_changes(
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
                    duration = parse_duration_value(value, allow_zero=setting == "max_grace")
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
            elif setting == "revoke_unused_days":
                try:
                    cleaned[scope][setting] = _unused_days(value)
                except ValueError as error:
                    errors[key] = [str(error)]
            else:  # enforced_ip_filter
                try:
                    cleaned[scope][setting] = _resolve_filter(organization, value)
                except ValueError as error:
                    errors[key] = [str(error)]
    if errors:
        raise ValidationError(errors)
    return cleaned


def _unused_days(value: Any) -> int | None:
    """Off (None, "", "off", 0 or "0") or a whole number of days from 7 to 365 ("90" or
    "90d"). "0" typed in the console means off, as 0 does in the API."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "off")):
        return None
    if isinstance(value, str):
        text = value.strip().lower().removesuffix("d").strip()
        # isdecimal, not isdigit: superscripts such as "²" are digits that int() refuses.
        value = int(text) if text.isdecimal() else None
    if value == 0 and not isinstance(value, bool):
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not REVOKE_UNUSED_MIN_DAYS <= value <= REVOKE_UNUSED_MAX_DAYS
    ):
        raise ValueError(
            f"Give a number of days from {REVOKE_UNUSED_MIN_DAYS} to {REVOKE_UNUSED_MAX_DAYS}, "
            "or off."
        )
    return value


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


def proposed_settings(scope_policy: ScopePolicy, settings: dict[str, Any]) -> dict[str, Any]:
    current = {
        setting: getattr(scope_policy, setting)
        for setting in SETTINGS
        if setting != "enforced_ip_filter"
    }
    current["enforced_ip_filter"] = scope_policy.enforced_ip_filter
    return {**current, **settings}


# Kinds of change ----------------------------------------------------------------------------


SHOWN = 100  # tokens listed per kind of change; the count says how many there are in all


def not_expired(now: datetime) -> Q:
    return Q(expires_at__isnull=True) | Q(expires_at__gt=now)


@dataclass(frozen=True)
class TokenChange:
    """What applying a policy does to one token: ``before`` and ``after`` of one property."""

    token: ApiToken
    before: Any
    after: Any


class ChangeKind:
    """One kind of change a policy makes to existing tokens (see the module's note).

    ``key`` names it in the API and its template (``template``); ``would`` / ``did_one`` /
    ``did_many`` end the summary sentence ("3 tokens would be revoked"). ``applied`` is False
    for a kind that is only reported; ``manages`` marks a change to what restricts a token's
    use (its IP filter or addresses), which is managing the token: not of tokens stronger than
    the actor.
    """

    key = ""
    would = did_one = did_many = ""

    @property
    def template(self) -> str:
        """The preview's table of the tokens it touches: ``templates/policies/impact/``."""
        return f"policies/impact/{self.key}.html"

    applied = True
    manages = False

    def applies_to(
        self, scope: str, settings: dict[str, Any], previous: dict[str, Any], now: datetime
    ) -> Q | None:
        """The tokens of the scope this kind touches (None: none), besides "not expired"."""
        raise NotImplementedError

    def change(self, token: ApiToken, settings: dict[str, Any], now: datetime) -> TokenChange:
        """Before and after for one token it touches, as the preview lists it."""
        raise NotImplementedError

    def rewrites(
        self, scope: str, settings: dict[str, Any], now: datetime, actor: Any
    ) -> list[token_services.PolicyRewrite]:
        """What applying sets on the tokens it touches: idempotent, so that a token rewritten
        no longer matches ``applies_to``."""
        return []

    def detail(
        self, counts: dict[str, int], settings: dict[str, dict[str, Any]], now: datetime
    ) -> str:
        """Words added to the summary sentence (e.g. the latest new expiry)."""
        return ""


class ExpiryShortened(ChangeKind):
    key = "expiry_shortened"
    would = "would have their expiry shortened"
    did_one = "had its expiry shortened"
    did_many = "had their expiry shortened"

    def applies_to(self, scope, settings, previous, now):
        if settings["max_lifetime"] is None:
            return None
        latest = now + settings["max_lifetime"]
        return Q(expires_at__isnull=True) | Q(expires_at__gt=latest)

    def change(self, token, settings, now):
        return TokenChange(token, token.expires_at, now + settings["max_lifetime"])

    def rewrites(self, scope, settings, now, actor):
        return [
            token_services.PolicyRewrite(
                applies_to=self.applies_to(scope, settings, settings, now) or Q(pk__in=[]),
                values={"expires_at": now + settings["max_lifetime"]},
            )
        ]

    def detail(self, counts, settings, now):
        latest = max(
            now + settings[scope]["max_lifetime"] for scope, count in counts.items() if count
        )
        return f"(to {latest:%Y-%m-%d %H:%M} UTC at the latest)"


class Revoked(ChangeKind):
    key = "revoked"
    would = "of a disallowed kind would be revoked"
    did_one = "of a disallowed kind was revoked"
    did_many = "of a disallowed kind were revoked"

    def applies_to(self, scope, settings, previous, now):
        return None if settings["allowed"] else Q(status=TokenStatus.ACTIVE)

    def change(self, token, settings, now):
        return TokenChange(token, TokenStatus.ACTIVE, TokenStatus.REVOKED)

    def rewrites(self, scope, settings, now, actor):
        return [
            token_services.PolicyRewrite(
                applies_to=Q(status=TokenStatus.ACTIVE),
                values={
                    "status": TokenStatus.REVOKED,
                    "revoked_at": now,
                    "revoked_reason": f"The security policy no longer allows {scope} tokens.",
                    "revoked_by": actor.user,
                    "revoked_by_name": actor.name[:150],
                },
            )
        ]


class IpFilterEnforced(ChangeKind):
    key = "ip_filter_enforced"
    would = "would get the enforced IP filter"
    did_one = did_many = "got the enforced IP filter"
    manages = True

    def applies_to(self, scope, settings, previous, now):
        enforced = settings["enforced_ip_filter"]
        return None if enforced is None else ~Q(ip_filter=enforced.pk)

    def change(self, token, settings, now):
        before = token.ip_filter.name if token.ip_filter else None
        return TokenChange(token, before, settings["enforced_ip_filter"].name)

    def rewrites(self, scope, settings, now, actor):
        enforced = settings["enforced_ip_filter"]
        return [
            token_services.PolicyRewrite(
                applies_to=~Q(ip_filter=enforced.pk),
                values={"ip_filter": enforced, "ip_filter_from_policy": True},
            )
        ]


class IpFilterReleased(ChangeKind):
    """Tokens whose filter the policy had put there and no longer enforces lose it."""

    key = "ip_filter_released"
    would = "would lose the IP filter the policy no longer enforces"
    did_one = did_many = "lost the IP filter the policy no longer enforces"
    manages = True

    def applies_to(self, scope, settings, previous, now):
        if settings["enforced_ip_filter"] is not None:
            return None
        return Q(ip_filter_from_policy=True, ip_filter__isnull=False)

    def change(self, token, settings, now):
        return TokenChange(token, token.ip_filter.name, None)

    def rewrites(self, scope, settings, now, actor):
        return [
            token_services.PolicyRewrite(
                applies_to=Q(ip_filter_from_policy=True, ip_filter__isnull=False),
                values={"ip_filter": None, "ip_filter_from_policy": False},
            )
        ]


def _own_filter(settings: dict[str, Any]) -> Q:
    """A filter the token carries of its own accord (none while the policy enforces one)."""
    if settings["enforced_ip_filter"] is not None:
        return Q(pk__in=[])
    return Q(ip_filter_from_policy=False, ip_filter__isnull=False)


_HAS_ADDRESSES = ~Q(allowed_addresses=[])


class CustomIpRemoved(ChangeKind):
    """Tokens that lose their own filter or addresses (before/after =
    ``{"ip_filter": name | None, "allowed_addresses": [...]}``)."""

    key = "custom_ip_removed"
    would = "would lose their own IP filter or addresses"
    did_one = "lost its own IP filter or addresses"
    did_many = "lost their own IP filter or addresses"
    manages = True

    def applies_to(self, scope, settings, previous, now):
        if settings["custom_ip_allowed"]:
            return None
        return _own_filter(settings) | _HAS_ADDRESSES

    def change(self, token, settings, now):
        own = settings["enforced_ip_filter"] is None and not token.ip_filter_from_policy
        own_filter = token.ip_filter if own else None
        return TokenChange(
            token,
            {
                "ip_filter": own_filter.name if own_filter else None,
                "allowed_addresses": list(token.allowed_addresses),
            },
            {"ip_filter": None, "allowed_addresses": []},
        )

    def rewrites(self, scope, settings, now, actor):
        return [
            token_services.PolicyRewrite(
                applies_to=_own_filter(settings), values={"ip_filter": None}
            ),
            token_services.PolicyRewrite(
                applies_to=_HAS_ADDRESSES, values={"allowed_addresses": []}
            ),
        ]


class WithoutExpiry(ChangeKind):
    """Tokens that keep having no expiry although one becomes required: the requirement
    applies to new tokens; a maximum lifetime shortens existing ones. Reported only."""

    key = "without_expiry"
    applied = False

    def applies_to(self, scope, settings, previous, now):
        if (
            settings["max_lifetime"] is None
            and settings["expiry_required"]
            and not previous["expiry_required"]
        ):
            return Q(expires_at__isnull=True)
        return None

    def change(self, token, settings, now):
        return TokenChange(token, None, None)


class UnusedRevoked(ChangeKind):
    """Tokens a new "Revoke tokens unused for" has the next daily ``cleanup_tokens`` revoke
    (``tokens/unused.py``); saving changes none of them. Reported, and announced in the
    summary."""

    key = "unused_revoked"
    would = "would be revoked as unused by the next daily cleanup"
    did_one = did_many = "will be revoked as unused by the next daily cleanup"
    applied = False
    announced = True

    def applies_to(self, scope, settings, previous, now):
        days = settings["revoke_unused_days"]
        if days is None or days == previous["revoke_unused_days"]:
            return None
        return Q(status=TokenStatus.ACTIVE) & unused.unused_since(days, now)

    def change(self, token, settings, now):
        return TokenChange(token, token.last_used_at, settings["revoke_unused_days"])


# In the order the summary and the preview list them; applied in this order too.
KINDS: tuple[ChangeKind, ...] = (
    ExpiryShortened(),
    Revoked(),
    IpFilterEnforced(),
    IpFilterReleased(),
    CustomIpRemoved(),
    WithoutExpiry(),
    UnusedRevoked(),
)
KIND_BY_KEY = {kind.key: kind for kind in KINDS}


def kind_condition(
    kind: ChangeKind,
    settings: dict[str, dict[str, Any]],
    previous: dict[str, dict[str, Any]],
    now: datetime,
    scopes: tuple[str, ...] = SCOPES,
) -> Q | None:
    """The tokens (of any of the scopes) the kind touches, or None."""
    condition = None
    for scope in scopes:
        applies = kind.applies_to(scope, settings[scope], previous[scope], now)
        if applies is not None:
            part = Q(scope=scope) & applies
            condition = part if condition is None else condition | part
    return condition


# Results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KindImpact:
    """One kind of change: how many tokens it touches (per scope) and the first ``SHOWN``."""

    kind: ChangeKind
    count: int
    by_scope: dict[str, int]
    shown: list[TokenChange]
    detail: str = ""

    @property
    def key(self) -> str:
        return self.kind.key

    @property
    def more(self) -> int:
        """How many it touches beyond those shown."""
        return self.count - len(self.shown)

    def sentence(self, *, applied: bool = False) -> str:
        noun = f"{self.count} token{'s' if self.count != 1 else ''}"
        if not applied:
            words = self.kind.would
        else:
            words = self.kind.did_one if self.count == 1 else self.kind.did_many
        return f"{noun} {words}" + (f" {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class PolicyImpact:
    """What a policy change does: its setting changes and, per kind of change (``KINDS``
    order), how many tokens it touches and the first ``SHOWN`` of them.

    ``impact.revoked`` (any kind's key) is the list of that kind's tokens shown. A token can be
    touched by several kinds; ``touched_count`` counts it once. Tokens already expired are
    never touched.
    """

    setting_changes: list[SettingChange] = field(default_factory=list)
    kinds: list[KindImpact] = field(default_factory=list)
    touched_count: int = 0
    digest: str = ""
    policy_version: int = 1
    # After applying: what the batches did (``policies.services.apply.Progress``).
    progress: Any = None

    def __getattr__(self, name: str) -> list[TokenChange]:
        if name in KIND_BY_KEY:
            kind_impact = self.kind(name)
            return kind_impact.shown if kind_impact is not None else []
        raise AttributeError(name)

    def kind(self, key: str) -> KindImpact | None:
        for kind_impact in self.kinds:
            if kind_impact.key == key:
                return kind_impact
        return None

    @property
    def counts(self) -> dict[str, int]:
        return {kind_impact.key: kind_impact.count for kind_impact in self.kinds}

    @property
    def touched_tokens(self) -> list[ApiToken]:
        """The tokens shown as touched by an applied kind, once each, in list order (all of
        them while each kind touches at most ``SHOWN``)."""
        seen: dict[int, ApiToken] = {}
        for kind_impact in self.kinds:
            if kind_impact.kind.applied:
                for change in kind_impact.shown:
                    seen.setdefault(change.token.pk, change.token)
        return list(seen.values())

    @property
    def has_changes(self) -> bool:
        return bool(self.setting_changes)

    def summary(self, *, applied: bool = False) -> list[str]:
        """One sentence per applied kind of change that touches tokens: "3 tokens would be
        revoked", or with ``applied`` "3 tokens were revoked"."""
        return [
            kind_impact.sentence(applied=applied)
            for kind_impact in self.kinds
            if (kind_impact.kind.applied or getattr(kind_impact.kind, "announced", False))
            and kind_impact.count
        ]

    def fingerprint(self) -> str:
        """A short digest of the settings and of the tokens each kind touches, to check that a
        preview is still current."""
        return self.digest


def same_setting(setting: str, before: Any, after: Any) -> bool:
    if setting == "enforced_ip_filter":
        return (before.pk if before else None) == (after.pk if after else None)
    return before == after


def current_settings(policy: SecurityPolicy) -> dict[str, dict[str, Any]]:
    return {scope: proposed_settings(policy.for_scope(scope), {}) for scope in SCOPES}


def setting_changes(
    policy: SecurityPolicy, proposed: dict[str, dict[str, Any]]
) -> list[SettingChange]:
    changes = []
    for scope in SCOPES:
        scope_policy = policy.for_scope(scope)
        for setting in SETTINGS:
            before = getattr(scope_policy, setting)
            if not same_setting(setting, before, proposed[scope][setting]):
                changes.append(SettingChange(scope, setting, before, proposed[scope][setting]))
    return changes


def measure(
    organization: Organization,
    policy: SecurityPolicy,
    proposed: dict[str, dict[str, Any]],
    previous: dict[str, dict[str, Any]],
    now: datetime,
    *,
    shown: bool = True,
) -> PolicyImpact:
    """The impact of going from ``previous`` to ``proposed`` settings: counts per kind and
    scope, the number of distinct tokens touched and the fingerprint in one aggregate query
    over the organization's tokens, then (with ``shown``) the first ``SHOWN`` tokens of each kind
    that touches any (by name)."""
    changes = setting_changes(policy, proposed)
    tokens = ApiToken.objects.filter(organization=organization).filter(not_expired(now))
    aggregates: dict[str, Any] = {}
    conditions: dict[str, Q] = {}
    touched: Q | None = None
    for kind in KINDS:
        for scope in SCOPES:
            condition = kind_condition(kind, proposed, previous, now, scopes=(scope,))
            if condition is None:
                continue
            conditions[f"{kind.key}.{scope}"] = condition
            aggregates[f"{kind.key}.{scope}.count"] = Count("pk", filter=condition)
            if kind.applied:
                aggregates[f"{kind.key}.{scope}.sum"] = Sum("pk", filter=condition)
                aggregates[f"{kind.key}.{scope}.max"] = Max("pk", filter=condition)
                touched = condition if touched is None else touched | condition
    if touched is not None:
        aggregates["touched"] = Count("pk", filter=touched)
    # Aliases without dots: some backends quote them, all accept these.
    names = {key: f"a{index}" for index, key in enumerate(aggregates)}
    values = (
        tokens.order_by().aggregate(**{names[key]: value for key, value in aggregates.items()})
        if aggregates
        else {}
    )
    result = {key: values[names[key]] for key in aggregates}
    parts = [f"{change.scope}.{change.setting}={change.after_text}" for change in changes]
    kinds = []
    for kind in KINDS:
        by_scope = {
            scope: result.get(f"{kind.key}.{scope}.count") or 0
            for scope in SCOPES
            if f"{kind.key}.{scope}" in conditions
        }
        count = sum(by_scope.values())
        if kind.applied:
            parts.extend(
                f"{kind.key}.{scope}:{by_scope[scope]}:{result[f'{kind.key}.{scope}.sum'] or 0}:"
                f"{result[f'{kind.key}.{scope}.max'] or 0}"
                for scope in by_scope
            )
        if not count:
            continue
        kinds.append(
            KindImpact(
                kind=kind,
                count=count,
                by_scope=by_scope,
                shown=[],
                detail=kind.detail(by_scope, proposed, now),
            )
        )
    impact = PolicyImpact(
        setting_changes=changes,
        kinds=kinds,
        touched_count=result.get("touched") or 0,
        digest=hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16],
        policy_version=policy.version,
    )
    return list_first(impact, organization, proposed, previous, now) if shown else impact


def list_first(
    impact: PolicyImpact,
    organization: Organization,
    proposed: dict[str, dict[str, Any]],
    previous: dict[str, dict[str, Any]],
    now: datetime,
) -> PolicyImpact:
    """The impact with the first ``SHOWN`` tokens (by name) of each kind that touches any."""
    tokens = ApiToken.objects.filter(organization=organization).filter(not_expired(now))
    kinds = []
    for kind_impact in impact.kinds:
        kind = kind_impact.kind
        first = (
            tokens.filter(kind_condition(kind, proposed, previous, now))
            .select_related("ip_filter", "group", "user")
            .order_by("name", "pk")[:SHOWN]
        )
        shown = [kind.change(token, proposed[token.scope], now) for token in first]
        kinds.append(replace(kind_impact, shown=shown))
    return replace(impact, kinds=kinds)


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
    policy = load_policy(organization)
    cleaned = clean_changes(organization, policy, changes)
    previous = current_settings(policy)
    proposed = {
        scope: proposed_settings(policy.for_scope(scope), cleaned.get(scope, {}))
        for scope in SCOPES
    }
    return measure(organization, policy, proposed, previous, now)

"""API: IP filters (with an address test) and the security policy (with a preview).

Translation only: rights, validation, versions and audit live in policies.services.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Field, Path, Query, Router
from pydantic import ConfigDict, field_validator
from pydantic.alias_generators import to_camel

from access.errors import NotFound
from api.support import (
    MAX_ID,
    MAX_VERSION,
    CamelSchema,
    InputSchema,
    Page,
    Paging,
    api_fields,
    organization_of,
    paginate,
    permission_note,
    principal_of,
    requires,
    responses,
)
from orgs.durations import to_text
from orgs.principals import Principal
from policies import services
from policies.models import SCOPES, IpFilter, ScopePolicy, SecurityPolicy

router = Router(tags=["policies"])

FILTER_FIELDS = {"rules_text": "rules", "ip_filter": "id"}
ObjectId = Path(..., ge=1, le=MAX_ID)
Scope = Literal["organization", "group", "personal"]
# The service's setting names and the API's.
SETTING_NAMES = {
    "allowed": "allowed",
    "max_lifetime": "maxLifetime",
    "expiry_required": "expiryRequired",
    "enforced_ip_filter": "enforcedIpFilterId",
    "custom_ip_allowed": "customIpAllowed",
    "permission_edits_allowed": "permissionEditsAllowed",
    "regeneration_allowed": "regenerationAllowed",
    "max_grace": "maxGrace",
    "revoke_unused_days": "revokeUnusedDays",
}


# IP filter schemas ---------------------------------------------------------------------------


def _one_line_rules(rules: list[str] | None) -> list[str] | None:
    if rules is not None and any("\n" in rule or "\r" in rule for rule in rules):
        raise ValueError("write one rule per item, without line breaks")
    return rules


class IpFilterOut(CamelSchema):
    id: int
    name: str
    description: str
    rules: list[str] = Field(description="allow|deny <address|cidr|all>; first match wins.")
    version: int
    created_at: datetime
    updated_at: datetime

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 4,
                    "name": "office",
                    "description": "Office and VPN",
                    "rules": ["allow 203.0.113.0/24", "allow 2001:db8::/32", "deny all"],
                    "version": 2,
                    "createdAt": "2026-10-01T09:00:00Z",
                    "updatedAt": "2026-11-02T16:20:00Z",
                }
            ]
        }
    )


class IpFilterFilters(InputSchema):
    name: str | None = Field(None, max_length=200, description="Part of the name.")


class IpFilterCreateIn(InputSchema):
    name: str = Field(max_length=1000)
    description: str = Field("", max_length=1000)
    rules: list[str] = Field(max_length=1000, description="One rule per item.")

    _rules_one_line = field_validator("rules")(_one_line_rules)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "office",
                    "description": "Office and VPN",
                    "rules": ["allow 203.0.113.0/24", "deny all"],
                }
            ]
        }
    )


class IpFilterPatchIn(InputSchema):
    version: int = Field(ge=1, le=MAX_VERSION)
    name: str | None = Field(None, max_length=1000)
    description: str | None = Field(None, max_length=1000)
    rules: list[str] | None = Field(None, max_length=1000)

    _rules_one_line = field_validator("rules")(_one_line_rules)

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"version": 2, "rules": ["allow 10.0.0.0/8", "deny all"]}]}
    )


class VersionQuery(InputSchema):
    version: int | None = Field(
        None, ge=1, le=MAX_VERSION, description="Refuse (409) if it changed since."
    )


class AddressTestIn(InputSchema):
    address: str = Field(max_length=100, examples=["203.0.113.17"])

    model_config = ConfigDict(json_schema_extra={"examples": [{"address": "203.0.113.17"}]})


class AddressTestOut(CamelSchema):
    address: str
    allowed: bool
    rule: str | None = Field(description="The rule that decided; null when none matched.")
    line: int | None = Field(description="Its line (item) number, from 1.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "address": "203.0.113.17",
                    "allowed": True,
                    "rule": "allow 203.0.113.0/24",
                    "line": 1,
                }
            ]
        }
    )


# Security policy schemas ---------------------------------------------------------------------


class ScopePolicyOut(CamelSchema):
    allowed: bool
    max_lifetime: str | None = Field(description="e.g. 30d; null means unlimited.")
    expiry_required: bool
    enforced_ip_filter_id: int | None
    custom_ip_allowed: bool
    permission_edits_allowed: bool
    regeneration_allowed: bool
    max_grace: str = Field(description="Longest grace period when regenerating, e.g. 7d or 0.")
    revoke_unused_days: int | None = Field(
        description="Active tokens unused (never used: since creation) this many days are "
        "revoked by the daily cleanup; null: off."
    )


SCOPE_POLICY_EXAMPLE: dict[str, Any] = {
    "allowed": True,
    "maxLifetime": "30d",
    "expiryRequired": True,
    "enforcedIpFilterId": None,
    "customIpAllowed": True,
    "permissionEditsAllowed": True,
    "regenerationAllowed": True,
    "maxGrace": "7d",
    "revokeUnusedDays": None,
}


class SecurityPolicyOut(CamelSchema):
    version: int
    updated_at: datetime
    organization: ScopePolicyOut = Field(description="Rules for organization tokens.")
    group: ScopePolicyOut = Field(description="Rules for group tokens.")
    personal: ScopePolicyOut = Field(description="Rules for personal tokens.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "version": 3,
                    "updatedAt": "2026-11-02T16:20:00Z",
                    "organization": {**SCOPE_POLICY_EXAMPLE, "maxLifetime": None},
                    "group": {**SCOPE_POLICY_EXAMPLE, "maxLifetime": "90d"},
                    "personal": SCOPE_POLICY_EXAMPLE,
                }
            ]
        }
    )


class ScopeChangesIn(InputSchema):
    """Only the settings given change; null unsets maxLifetime and enforcedIpFilterId."""

    allowed: bool | None = None
    max_lifetime: str | None = Field(None, max_length=32, examples=["90d"])
    expiry_required: bool | None = None
    enforced_ip_filter_id: int | None = Field(None, ge=1, le=MAX_ID)
    custom_ip_allowed: bool | None = None
    permission_edits_allowed: bool | None = None
    regeneration_allowed: bool | None = None
    max_grace: str | None = Field(None, max_length=32, examples=["1d", "0"])
    revoke_unused_days: int | None = Field(
        None, ge=0, le=100_000, description="7 to 365 days; 0 or null turns it off."
    )


class PolicyChangesIn(InputSchema):
    organization: ScopeChangesIn | None = None
    group: ScopeChangesIn | None = None
    personal: ScopeChangesIn | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"personal": {"maxLifetime": "7d"}, "group": {"allowed": False}}]
        }
    )


class PolicyPatchIn(PolicyChangesIn):
    version: int = Field(ge=1, le=MAX_VERSION)
    expected_impact: str | None = Field(
        None,
        max_length=64,
        description="A preview's fingerprint: refuse (409) if the tokens touched differ.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "version": 3,
                    "personal": {"maxLifetime": "7d"},
                    "expectedImpact": "9f2c4e1ab0d37c55",
                }
            ]
        }
    )


class SettingChangeOut(CamelSchema):
    scope: Scope
    setting: str
    before: str
    after: str


class TokenChangeOut(CamelSchema):
    token_id: int
    name: str
    scope: Scope
    partial_token: str
    before: Any
    after: Any


class ImpactOut(CamelSchema):
    policy_version: int
    fingerprint: str = Field(description="Send as expectedImpact when applying.")
    summary: list[str]
    setting_changes: list[SettingChangeOut]
    touched_count: int = Field(
        description="Existing tokens the change rewrites (each counted once, whatever it does "
        "to them)."
    )
    counts: dict[str, int] = Field(
        description="Per kind of change (revoked, expiryShortened, ipFilterEnforced, "
        "ipFilterReleased, customIpRemoved, withoutExpiry), how many tokens it touches; kinds "
        "that touch none are left out. Each kind's list below holds its first 100 tokens by "
        "name."
    )
    revoked: list[TokenChangeOut]
    expiry_shortened: list[TokenChangeOut]
    ip_filter_enforced: list[TokenChangeOut]
    ip_filter_released: list[TokenChangeOut] = Field(
        description="Tokens that lose the IP filter the policy had put on them and no longer "
        "enforces."
    )
    custom_ip_removed: list[TokenChangeOut]
    without_expiry: list[TokenChangeOut] = Field(
        description="Tokens that keep no expiry although one becomes required for new tokens."
    )
    unused_revoked: list[TokenChangeOut] = Field(
        description="Tokens the next daily cleanup revokes under a new revokeUnusedDays "
        "(before: last use, null if never; after: the days). Saving does not change them."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "policyVersion": 3,
                    "fingerprint": "9f2c4e1ab0d37c55",
                    "summary": ["1 token would have their expiry shortened"],
                    "settingChanges": [
                        {
                            "scope": "personal",
                            "setting": "maxLifetime",
                            "before": "30 days",
                            "after": "7 days",
                        }
                    ],
                    "touchedCount": 1,
                    "counts": {"expiryShortened": 1},
                    "revoked": [],
                    "expiryShortened": [
                        {
                            "tokenId": 9,
                            "name": "laptop",
                            "scope": "personal",
                            "partialToken": "kwu_…Q2fA",
                            "before": "2026-12-20T00:00:00Z",
                            "after": "2026-11-30T08:00:00Z",
                        }
                    ],
                    "ipFilterEnforced": [],
                    "customIpRemoved": [],
                    "withoutExpiry": [],
                    "unusedRevoked": [],
                }
            ]
        }
    )


# Translation ---------------------------------------------------------------------------------


def _filter_out(ip_filter: IpFilter) -> dict[str, Any]:
    return {
        "id": ip_filter.pk,
        "name": ip_filter.name,
        "description": ip_filter.description,
        "rules": ip_filter.rules_text.splitlines(),
        "version": ip_filter.version,
        "created_at": ip_filter.created_at,
        "updated_at": ip_filter.modified_at,
    }


def _get_filter(principal: Principal, filter_id: int) -> IpFilter:
    ip_filter = IpFilter.objects.visible_to(principal).filter(pk=filter_id).first()
    if ip_filter is None:
        raise NotFound("No such IP filter.")
    return ip_filter


def _rules_text(rules: list[str] | None) -> str | None:
    return None if rules is None else "\n".join(rules)


def _duration_text(duration: timedelta | None) -> str | None:
    if duration is None:
        return None
    if not duration:
        return "0"
    try:
        return to_text(duration)
    except ValueError:
        return f"{int(duration.total_seconds() // 60)}m"


def _scope_policy_out(scope_policy: ScopePolicy) -> dict[str, Any]:
    return {
        "allowed": scope_policy.allowed,
        "max_lifetime": _duration_text(scope_policy.max_lifetime),
        "expiry_required": scope_policy.expiry_required,
        "enforced_ip_filter_id": scope_policy.enforced_ip_filter_id,
        "custom_ip_allowed": scope_policy.custom_ip_allowed,
        "permission_edits_allowed": scope_policy.permission_edits_allowed,
        "regeneration_allowed": scope_policy.regeneration_allowed,
        "max_grace": _duration_text(scope_policy.max_grace) or "0",
        "revoke_unused_days": scope_policy.revoke_unused_days,
    }


def _policy_out(principal: Principal) -> dict[str, Any]:
    policy = SecurityPolicy.objects.for_organization(organization_of(principal))
    return {
        "version": policy.version,
        "updated_at": policy.modified_at,
        **{scope: _scope_policy_out(policy.for_scope(scope)) for scope in SCOPES},
    }


def _changes(payload: PolicyChangesIn) -> dict[str, dict[str, Any]]:
    """``{scope: {setting: value}}`` in the service's names, for the settings given."""
    api_to_service = {
        "enforced_ip_filter_id": "enforced_ip_filter",
    }
    changes: dict[str, dict[str, Any]] = {}
    for scope in SCOPES:
        settings: ScopeChangesIn | None = getattr(payload, scope)
        if settings is None:
            continue
        changes[scope] = {
            api_to_service.get(name, name): getattr(settings, name)
            for name in settings.model_fields_set
        }
    return changes


def _setting_errors(error: ValidationError) -> ValidationError:
    """``personal.max_lifetime`` -> ``personal.maxLifetime``, as the client wrote it."""
    if not hasattr(error, "error_dict"):
        return error
    renamed = {}
    for key, errors in error.error_dict.items():
        scope, _, setting = key.partition(".")
        renamed[f"{scope}.{SETTING_NAMES.get(setting, to_camel(setting))}" if setting else key] = (
            errors
        )
    return ValidationError(renamed)


def _token_changes(changes: list[services.TokenChange]) -> list[dict[str, Any]]:
    return [
        {
            "token_id": change.token.pk,
            "name": change.token.name,
            "scope": change.token.scope,
            "partial_token": change.token.partial_token,
            "before": change.before,
            "after": change.after,
        }
        for change in changes
    ]


def _impact_out(impact: services.PolicyImpact) -> dict[str, Any]:
    return {
        "policy_version": impact.policy_version,
        "fingerprint": impact.fingerprint(),
        "summary": impact.summary(),
        "setting_changes": [
            {
                "scope": change.scope,
                "setting": SETTING_NAMES[change.setting],
                "before": change.before_text,
                "after": change.after_text,
            }
            for change in impact.setting_changes
        ],
        "touched_count": impact.touched_count,
        "counts": {to_camel(key): count for key, count in impact.counts.items()},
        "revoked": _token_changes(impact.revoked),
        "expiry_shortened": _token_changes(impact.expiry_shortened),
        "ip_filter_enforced": _token_changes(impact.ip_filter_enforced),
        "ip_filter_released": _token_changes(impact.ip_filter_released),
        "custom_ip_removed": _token_changes(impact.custom_ip_removed),
        "without_expiry": _token_changes(impact.without_expiry),
        "unused_revoked": _token_changes(impact.unused_revoked),
    }


# IP filters ----------------------------------------------------------------------------------


@router.get(
    "/ip-filters",
    auth=requires("api.ip-filters.read"),
    response=responses({200: Page[IpFilterOut]}),
    by_alias=True,
    tags=["ip-filters"],
    summary="List IP filters",
    description=permission_note("api.ip-filters.read"),
)
def list_ip_filters(
    request: HttpRequest, filters: Query[IpFilterFilters], paging: Query[Paging]
) -> dict[str, Any]:
    ip_filters = IpFilter.objects.visible_to(principal_of(request))
    if filters.name:
        ip_filters = ip_filters.filter(name__icontains=filters.name)
    page = paginate(ip_filters.order_by("name", "pk"), paging)
    page["items"] = [_filter_out(ip_filter) for ip_filter in page["items"]]
    return page


@router.post(
    "/ip-filters",
    auth=requires("api.ip-filters.write"),
    response=responses({201: IpFilterOut}),
    by_alias=True,
    tags=["ip-filters"],
    summary="Create an IP filter",
    description="Bad rules are named by item number. " + permission_note("api.ip-filters.write"),
)
def create_ip_filter(request: HttpRequest, payload: IpFilterCreateIn) -> Any:
    principal = principal_of(request)
    with api_fields(**FILTER_FIELDS):
        ip_filter = services.create_ip_filter(
            actor=principal,
            organization=organization_of(principal),
            name=payload.name,
            description=payload.description,
            rules_text="\n".join(payload.rules),
        )
    return 201, _filter_out(ip_filter)


@router.get(
    "/ip-filters/{id}",
    auth=requires("api.ip-filters.read"),
    response=responses({200: IpFilterOut}),
    by_alias=True,
    tags=["ip-filters"],
    summary="Read an IP filter",
    description=permission_note("api.ip-filters.read"),
)
def read_ip_filter(request: HttpRequest, id: int = ObjectId) -> dict[str, Any]:
    return _filter_out(_get_filter(principal_of(request), id))


@router.patch(
    "/ip-filters/{id}",
    auth=requires("api.ip-filters.write"),
    response=responses({200: IpFilterOut}),
    by_alias=True,
    tags=["ip-filters"],
    summary="Change an IP filter",
    description="Effective at once for every token that uses it; needs the `version` you read. "
    + permission_note("api.ip-filters.write"),
)
def update_ip_filter(
    request: HttpRequest, payload: IpFilterPatchIn, id: int = ObjectId
) -> dict[str, Any]:
    principal = principal_of(request)
    with api_fields(**FILTER_FIELDS):
        ip_filter = services.update_ip_filter(
            actor=principal,
            ip_filter=_get_filter(principal, id),
            expected_version=payload.version,
            name=payload.name,
            description=payload.description,
            rules_text=_rules_text(payload.rules),
        )
    return _filter_out(ip_filter)


@router.delete(
    "/ip-filters/{id}",
    auth=requires("api.ip-filters.delete"),
    response=responses({204: None}),
    tags=["ip-filters"],
    summary="Delete an IP filter no token or policy uses",
    description=permission_note("api.ip-filters.delete"),
)
def delete_ip_filter(
    request: HttpRequest, query: Query[VersionQuery], id: int = ObjectId
) -> tuple[int, None]:
    principal = principal_of(request)
    with api_fields(**FILTER_FIELDS):
        services.delete_ip_filter(
            actor=principal, ip_filter=_get_filter(principal, id), expected_version=query.version
        )
    return 204, None


@router.post(
    "/ip-filters/{id}/test",
    auth=requires("api.ip-filters.read"),
    response=responses({200: AddressTestOut}),
    by_alias=True,
    tags=["ip-filters"],
    summary="Test an address against an IP filter",
    description="Says whether the filter allows the address and which rule decided. "
    + permission_note("api.ip-filters.read"),
)
def test_address(request: HttpRequest, payload: AddressTestIn, id: int = ObjectId) -> Any:
    ip_filter = _get_filter(principal_of(request), id)
    decision = services.check_address(ip_filter=ip_filter, address=payload.address)
    return {
        "address": payload.address.strip(),
        "allowed": decision.allowed,
        "rule": str(decision.rule) if decision.rule is not None else None,
        "line": decision.rule.line if decision.rule is not None else None,
    }


# Security policy -----------------------------------------------------------------------------


@router.get(
    "/security-policy",
    auth=requires("api.security-policies.read"),
    response=responses({200: SecurityPolicyOut}),
    by_alias=True,
    tags=["security-policy"],
    summary="Read the security policy",
    description=permission_note("api.security-policies.read"),
)
def read_security_policy(request: HttpRequest) -> dict[str, Any]:
    return _policy_out(principal_of(request))


@router.post(
    "/security-policy/preview",
    auth=requires("api.security-policies.write"),
    response=responses({200: ImpactOut}),
    by_alias=True,
    tags=["security-policy"],
    summary="Preview a security policy change",
    description="What applying these changes would do to the settings and to existing tokens; "
    "changes nothing. " + permission_note("api.security-policies.write"),
)
def preview_security_policy(request: HttpRequest, payload: PolicyChangesIn) -> dict[str, Any]:
    principal = principal_of(request)
    try:
        impact = services.preview_policy_change(
            actor=principal, organization=organization_of(principal), changes=_changes(payload)
        )
    except ValidationError as error:
        raise _setting_errors(error) from None
    return _impact_out(impact)


@router.patch(
    "/security-policy",
    auth=requires("api.security-policies.write"),
    response=responses({200: SecurityPolicyOut}),
    by_alias=True,
    tags=["security-policy"],
    summary="Change the security policy",
    description="Brings existing tokens in line exactly as the preview says (revokes, shortens "
    "expiries, sets or removes IP filters), each change audited. Needs the `version` you read; "
    "with `expectedImpact` it refuses (409) if the tokens touched differ from the preview. "
    + permission_note("api.security-policies.write"),
)
def update_security_policy(request: HttpRequest, payload: PolicyPatchIn) -> dict[str, Any]:
    principal = principal_of(request)
    try:
        services.update_security_policy(
            actor=principal,
            organization=organization_of(principal),
            changes=_changes(payload),
            expected_version=payload.version,
            expected_impact=payload.expected_impact,
        )
    except ValidationError as error:
        raise _setting_errors(error) from None
    return _policy_out(principal)

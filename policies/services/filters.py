"""IP filters: create, change, delete, test an address; who uses one.

Console views, the API, admin actions and commands call these and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from access import rules
from access.errors import NotFound, VersionConflict
from access.principal import Principal
from orgs import audit, names
from orgs.models import Organization
from policies import rules as ip_rules
from policies.models import SCOPES, IpFilter
from policies.services.impact import load_policy
from tokens import services as token_services
from tokens.models import ApiToken

NAME_MAX_LENGTH = 100
DESCRIPTION_MAX_LENGTH = 300
RULES_MAX_LENGTH = 20_000

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
    # A live token pasted into the text is treated as leaked before the transaction: the
    # refusal would roll back a revocation made inside it.
    pasted = token_services.pasted_token_errors(
        actor,
        {
            "name": ("A name", name or ""),
            "description": ("A description", description or ""),
            "rules_text": ("The rules", rules_text or ""),
        },
    )
    if pasted:
        raise ValidationError(pasted)
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
    policy = load_policy(ip_filter.organization)
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

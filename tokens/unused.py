"""Auto-revoke of unused tokens by the security policy: a scope's **Revoke tokens unused for**
(``ScopePolicy.revoke_unused_days``, 7 to 365 days, or off).

``cleanup_tokens`` applies it daily (no cron line of its own); the policy page counts what it
would revoke before the setting is saved. A token never used counts from its creation. Each
revocation goes through ``revoke_token``, so it is audited like any other, with the reason
``Unused for N days``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet

from access.errors import DomainError
from orgs.models import Organization
from orgs.principals import Principal
from policies.models import SecurityPolicy
from tokens.models import ApiToken
from tokens.services import revoke_token

BATCH_SIZE = 1000


def reason(days: int) -> str:
    return f"Unused for {days} days"


def unused_since(days: int, now: datetime) -> Q:
    """Not used (nor, never used, created) within the last ``days`` days."""
    return unused_before(now - timedelta(days=days))


def unused_before(cutoff: datetime) -> Q:
    """Not used (nor, never used, created) since ``cutoff``: the one definition of unused, for
    the policy's setting and ``cleanup_tokens --unused-for`` alike."""
    return Q(last_used_at__lte=cutoff) | Q(last_used_at__isnull=True, created_at__lte=cutoff)


def unused_tokens(organization_id: int, scope: str, days: int, now: datetime) -> QuerySet[ApiToken]:
    """Active, unexpired tokens of one scope of one organization that the setting revokes."""
    return (
        ApiToken.objects.active(now)
        .filter(organization_id=organization_id, scope=scope)
        .filter(unused_since(days, now))
        .order_by("pk")
    )


@dataclass(frozen=True)
class ScopeSetting:
    organization_id: int
    scope: str
    days: int


def settings_in_force(organization: Organization | None = None) -> Iterator[ScopeSetting]:
    """Every (organization, scope) whose policy revokes unused tokens."""
    policies = SecurityPolicy.objects.with_scopes().filter(
        Q(organization_tokens__revoke_unused_days__isnull=False)
        | Q(group_tokens__revoke_unused_days__isnull=False)
        | Q(personal_tokens__revoke_unused_days__isnull=False)
    )
    if organization is not None:
        policies = policies.filter(organization=organization)
    for policy in policies.order_by("organization_id"):
        for scope in ("organization", "group", "personal"):
            days = policy.for_scope(scope).revoke_unused_days
            if days is not None:
                yield ScopeSetting(policy.organization_id, scope, days)


def revoke_unused_by_policy(
    *,
    actor: Principal,
    now: datetime,
    organization: Organization | None = None,
    exclude: QuerySet[ApiToken] | None = None,
    on_revoked: Callable[[ApiToken], None] | None = None,
) -> tuple[int, int]:
    """Revoke, one by one through ``revoke_token``, every token its scope's policy says is
    unused for too long; return (revoked, skipped because changed meanwhile). ``exclude``
    leaves out tokens another step of the same run handles."""
    revoked = skipped = 0
    for setting in settings_in_force(organization):
        queryset = unused_tokens(setting.organization_id, setting.scope, setting.days, now)
        if exclude is not None:
            queryset = queryset.exclude(pk__in=exclude.values("pk"))
        last_id = 0
        while True:
            batch = list(
                queryset.filter(pk__gt=last_id).only("pk", "scope", "group_id", "organization_id")[
                    :BATCH_SIZE
                ]
            )
            if not batch:
                break
            for token in batch:
                try:
                    revoke_token(actor=actor, token=token, reason=reason(setting.days), now=now)
                except (ValidationError, DomainError):
                    skipped += 1  # revoked or deleted meanwhile by someone else
                else:
                    revoked += 1
                    if on_revoked is not None:
                        on_revoked(token)
            last_id = batch[-1].pk
    return revoked, skipped


def planned(
    *,
    now: datetime,
    organization: Organization | None = None,
    exclude: QuerySet[ApiToken] | None = None,
) -> Iterator[tuple[ApiToken, int]]:
    """The tokens ``revoke_unused_by_policy`` would revoke now, with the days of their setting."""
    for setting in settings_in_force(organization):
        queryset = unused_tokens(setting.organization_id, setting.scope, setting.days, now)
        if exclude is not None:
            queryset = queryset.exclude(pk__in=exclude.values("pk"))
        for token in queryset.select_related("organization", "user").iterator(chunk_size=1000):
            yield token, setting.days

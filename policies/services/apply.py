"""Applying a security policy change: the policy first, then the tokens, batch by batch.

``update_security_policy`` commits the new settings, the policy's audit event and a
``PolicyApplication`` in one short transaction. From that moment authentication enforces the new
policy on every token, rewritten or not (``tokens/auth.py``: a disallowed kind, an enforced IP
filter the token does not carry, an expiry beyond the new maximum lifetime), so the batches that
follow open no window. Each batch is one transaction over at most ``BATCH_SIZE`` tokens (by id):
one UPDATE per kind of change, one version bump, one insert of one audit event per token.

Why one event per token and not one per batch: the token's own page, the audit log's token
filter, webhooks and SIEMs read a token's history from events about that token
(``object_type="api_token"``); a batch event naming a thousand ids would be invisible to all of
them. Written in one insert per batch, they cost about a fifth of the apply's time
(bench/RESULTS.md, section 9).

A worker killed midway leaves the application unfinished; the next run (``finish_unfinished``:
the worker, ``manage.py finish_policy_changes``) takes it up. Nothing is done twice: a batch's
rewrites and events commit together, and a token already rewritten no longer matches.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.utils import timezone

from access import rules
from access.errors import VersionConflict
from access.principal import Principal
from orgs import audit
from orgs.batches import no_wait_for_disk
from orgs.models import Organization
from policies.models import SCOPES, PolicyApplication, SecurityPolicy
from policies.services.impact import (
    KINDS,
    ImpactChanged,
    PolicyImpact,
    clean_changes,
    current_settings,
    kind_condition,
    list_first,
    load_policy,
    measure,
    not_expired,
    proposed_settings,
)
from tokens import services as token_services
from tokens.models import ApiToken

logger = logging.getLogger("keyward.policies")

BATCH_SIZE = 1000  # tokens per transaction: about 0.1 s on the benchmark machine


@dataclass
class Progress:
    """What ``finish`` did: tokens changed, batches, the longest batch transaction."""

    tokens_changed: int = 0
    batches: int = 0
    longest_transaction: float = 0.0
    superseded: bool = False
    unfinished: bool = False  # a batch failed: the worker finishes the rest


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
    tokens touched differ from the preview. Returns the impact that was applied (counted
    before the tokens were rewritten).
    """
    now = now or timezone.now()
    rules.require_same_organization(actor, organization.pk)
    rules.require_change_policy(actor)
    started = time.perf_counter()
    with transaction.atomic():
        policy = load_policy(organization, lock=True)
        if expected_version is not None and policy.version != expected_version:
            raise VersionConflict(policy.version)
        cleaned = clean_changes(organization, policy, changes)
        previous = current_settings(policy)
        proposed = {
            scope: proposed_settings(policy.for_scope(scope), cleaned.get(scope, {}))
            for scope in SCOPES
        }
        # Counted here, listed after the commit: the list is for people, the count guards.
        impact = measure(organization, policy, proposed, previous, now, shown=False)
        if expected_impact is not None and impact.fingerprint() != expected_impact:
            raise ImpactChanged(policy.version)
        # Changing the address rules of tokens is managing them: not of tokens stronger than
        # the actor. Revoking and shortening only ever restrict, and stay open to the policy's
        # writers.
        managed = _touched_by(KINDS, proposed, previous, now, manages=True)
        if managed is not None:
            rules.require_not_weaker_than_token_set(
                actor,
                ApiToken.objects.filter(managed, organization=organization),
                "change these tokens' IP filter or addresses",
            )
        if not impact.setting_changes and not impact.touched_count:
            return list_first(impact, organization, proposed, previous, now)
        for scope in SCOPES:
            scope_policy = policy.for_scope(scope)
            for setting, value in proposed[scope].items():
                setattr(scope_policy, setting, value)
            # The moment from which the maximum lifetime caps tokens that exist now: the
            # same ``now`` the rewrite of their expiry counts from.
            scope_policy.lifetime_from = now if scope_policy.max_lifetime is not None else None
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
        # An earlier change still being applied is covered by this one: the tokens it had
        # left are those the new settings touch, if they still should be touched.
        PolicyApplication.objects.filter(policy=policy, finished_at__isnull=True).update(
            finished_at=now, superseded=True
        )
        actor_copy = audit.Actor.of(actor)
        application = PolicyApplication.objects.create(
            policy=policy,
            version=policy.version,
            started_at=now,
            actor=actor_copy.user,
            actor_name=actor_copy.name,
            actor_kind=actor_copy.kind,
            via_token_id=actor_copy.via_token_id,
            via_token_name=actor_copy.via_token_name,
            via_token_partial=actor_copy.via_token_partial,
            address=actor_copy.address,
        )
    first = time.perf_counter() - started
    # Before any batch runs: the tokens as they were, with the settings now in force.
    impact = list_first(impact, organization, proposed, previous, now)
    try:
        progress = finish(application)
    except DatabaseError:
        # The policy is in force; the tokens left are the worker's (finish_unfinished).
        logger.exception("Applying policy version %s stopped midway", application.version)
        progress = Progress(unfinished=True)
    progress.longest_transaction = max(progress.longest_transaction, first)
    return replace(impact, policy_version=policy.version, progress=progress)


def _touched_by(
    kinds: tuple,
    settings: dict[str, dict[str, Any]],
    previous: dict[str, dict[str, Any]],
    now: datetime,
    *,
    manages: bool = False,
) -> Q | None:
    """The unexpired tokens any applied kind touches (only those that manage, if asked)."""
    touched = None
    for kind in kinds:
        if not kind.applied or (manages and not kind.manages):
            continue
        condition = kind_condition(kind, settings, previous, now)
        if condition is not None:
            touched = condition if touched is None else touched | condition
    return touched & not_expired(now) if touched is not None else None


def _rewrites(
    settings: dict[str, dict[str, Any]], now: datetime, actor: audit.Actor
) -> list[token_services.PolicyRewrite]:
    """Every kind's rewrites, each limited to its scope and to tokens unexpired at ``now``, in
    ``KINDS`` order."""
    rewrites = []
    for kind in KINDS:
        if not kind.applied:
            continue
        for scope in SCOPES:
            if kind.applies_to(scope, settings[scope], settings[scope], now) is None:
                continue
            for rewrite in kind.rewrites(scope, settings[scope], now, actor):
                rewrites.append(
                    token_services.PolicyRewrite(
                        applies_to=Q(scope=scope) & not_expired(now) & rewrite.applies_to,
                        values=rewrite.values,
                    )
                )
    return rewrites


def _actor(application: PolicyApplication) -> audit.Actor:
    return audit.Actor(
        user=application.actor,
        name=application.actor_name,
        kind=application.actor_kind,
        via_token_id=application.via_token_id,
        via_token_name=application.via_token_name,
        via_token_partial=application.via_token_partial,
        address=application.address,
    )


def finish(application: PolicyApplication) -> Progress:
    """Rewrite, batch by batch, the tokens the committed policy still touches, as of the
    change's moment; mark the application finished (or superseded, when the policy changed
    again meanwhile: the later change does the rest)."""
    progress = Progress()
    policy = SecurityPolicy.objects.with_scopes().get(pk=application.policy_id)
    now = application.started_at
    settings = current_settings(policy)
    actor = _actor(application)
    candidates = _touched_by(KINDS, settings, settings, now)
    rewrites = _rewrites(settings, now, actor)
    after_pk = 0
    while candidates is not None:
        started = time.perf_counter()
        with transaction.atomic():
            # A crash may lose this batch whole; the change stays unfinished and the next
            # run (finish_unfinished) redoes it.
            no_wait_for_disk()
            # The batch runs under the policy's row lock, so that it never writes for a
            # policy version another change has just replaced.
            current = (
                SecurityPolicy.objects.select_for_update()
                .filter(pk=policy.pk, version=application.version)
                .exists()
            )
            if not current:
                progress.superseded = True
                break
            batch = token_services.rewrite_for_policy(
                actor=actor,
                organization=policy.organization,
                candidates=candidates,
                rewrites=rewrites,
                now=now,
                after_pk=after_pk,
                limit=BATCH_SIZE,
            )
            if batch.changed:
                PolicyApplication.objects.filter(pk=application.pk).update(
                    tokens_changed=F("tokens_changed") + batch.changed
                )
        progress.longest_transaction = max(
            progress.longest_transaction, time.perf_counter() - started
        )
        if batch.last_pk is None:
            break
        after_pk = batch.last_pk
        progress.batches += 1
        progress.tokens_changed += batch.changed
    PolicyApplication.objects.filter(pk=application.pk, finished_at__isnull=True).update(
        finished_at=timezone.now(), superseded=progress.superseded
    )
    return progress


def finish_unfinished(*, limit: int | None = None) -> int:
    """Finish policy changes a crash left half applied (oldest first); how many."""
    finished = 0
    unfinished = PolicyApplication.objects.filter(finished_at__isnull=True).order_by("pk")
    for application in unfinished[:limit] if limit is not None else unfinished:
        finish(application)
        finished += 1
    return finished

"""Leaked tokens: the one way a token found where it should not be is processed.

The report endpoint (``POST /api/v1/leaked-tokens``), the console's **Report a leaked token**,
``manage.py report_leaked_tokens`` and a live secret pasted into a form (``checked_text``) all
come here. For each reported token whose checksum is valid and whose digest is one of a token's
secrets, in a transaction of its own with the secret's row locked:

- the current secret of an active token: the token is revoked at once (reason
  ``Leaked: <url or source>``) and marked leaked, so it is never restored;
- an old secret still in its grace period: the grace ends now; the current secret keeps working;
- a revoked or expired token, or an old secret already ended: the leak is recorded.

Each secret's leak acts once: later reports of it (twenty scanners at once) change nothing.
Each first report writes one ``token.leaked`` audit event, actor "leak report", and queues an
e-mail to the organization's admins (and a personal token's owner). The secret itself goes
nowhere: not in the event, the e-mail, the reason or a log line; reported URLs and sources have
anything shaped like a token masked.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from mail import outbox
from orgs import audit
from orgs.models import OrganizationMembership, Role
from orgs.principals import Principal
from tokens import token_format
from tokens.logging import mask
from tokens.models import ApiToken, TokenScope, TokenSecret, TokenStatus

logger = logging.getLogger("keyward.leaks")

ACTOR_LABEL = "leak report"
URL_MAX_LENGTH = 2000
SOURCE_MAX_LENGTH = 200
WHERE_MAX_LENGTH = 480  # "Leaked: " + this fits the 500 characters of a revocation reason
PASTED_INTO_A_FORM = "pasted into a form"


class Outcome(StrEnum):
    """What a report did. Only the reporter's count (and a verified reporter's label) leave
    the server; these are for tests, the command and the audit event."""

    NO_MATCH = "no_match"
    REVOKED = "revoked"
    GRACE_ENDED = "grace_ended"
    RECORDED = "recorded"  # revoked or expired already, or an old secret already ended
    ALREADY_REPORTED = "already_reported"

    @property
    def matched(self) -> bool:
        return self is not Outcome.NO_MATCH


@dataclass(frozen=True)
class LeakReport:
    """One reported token and where it was seen (both optional)."""

    token: str = field(repr=False)
    url: str = ""
    source: str = ""


def _clean(text: str | None, max_length: int) -> str:
    """Reporter text as it may be stored and shown: one line, no token, bounded."""
    return outbox.one_line(mask(text or ""), max_length)


def where_of(report: LeakReport) -> str:
    """``url``, else ``source``, else "reported", as the reason and the badge say it."""
    return (
        _clean(report.url, WHERE_MAX_LENGTH)
        or _clean(report.source, WHERE_MAX_LENGTH)
        or "reported"
    )


def process_reports(
    reports: Iterable[LeakReport],
    *,
    reporter_address: str | None,
    reported_by: str = "",
    now: datetime | None = None,
) -> list[Outcome]:
    """Process each report in its own transaction; return each one's outcome, in order. A
    token reported twice in one batch is processed once (the first report's url and source),
    so repeating a dead token's secret a hundred times cannot amplify the time a match takes."""
    seen: dict[str, Outcome] = {}
    outcomes = []
    for report in reports:
        if report.token not in seen:
            seen[report.token] = process_report(
                report, reporter_address=reporter_address, reported_by=reported_by, now=now
            )
        outcomes.append(seen[report.token])
    return outcomes


def process_report(
    report: LeakReport,
    *,
    reporter_address: str | None,
    reported_by: str = "",
    now: datetime | None = None,
) -> Outcome:
    """Act on one reported token (see the module's docstring) and say what was done."""
    now = now or timezone.now()
    raw = report.token.strip() if isinstance(report.token, str) else ""
    try:
        token_format.parse(raw)
    except token_format.MalformedToken:
        return Outcome.NO_MATCH
    digests = [token_format.digest(raw, pepper) for _, pepper in settings.KEYWARD_TOKEN_PEPPERS]
    found = TokenSecret.objects.filter(digest__in=digests).values_list("token_id", flat=True)
    token_id = found.first()
    if token_id is None:
        return Outcome.NO_MATCH  # most reports, answered without a lock or a transaction
    with transaction.atomic():
        # The token first, then its secret: the order the token services lock them in
        # (regenerating, deleting), so that a report during either waits instead of
        # deadlocking with it.
        token = (
            ApiToken.objects.select_for_update(of=("self",))
            .select_related("organization", "ip_filter", "user")
            .filter(pk=token_id)
            .first()
        )
        secret = (
            TokenSecret.objects.select_for_update(of=("self",))
            .filter(digest__in=digests, token_id=token_id)
            .first()
        )
        if token is None or secret is None:  # regenerated or deleted meanwhile
            return Outcome.NO_MATCH
        if secret.leaked_at is not None:
            return Outcome.ALREADY_REPORTED
        outcome = _act(token, secret, report, reporter_address, reported_by, now)
    logger.info(
        "Leak report matched token %s of organization %s: %s",
        token.pk,
        token.organization_id,
        outcome.value,
    )
    return outcome


def _act(
    token: ApiToken,
    secret: TokenSecret,
    report: LeakReport,
    reporter_address: str | None,
    reported_by: str,
    now: datetime,
) -> Outcome:
    # The token services own the snapshot, version and audit helpers; they call this module
    # for pasted secrets, so it is imported here rather than at the top.
    from tokens import services

    where = where_of(report)
    reporter = Principal.operator(
        organization=token.organization, label=ACTOR_LABEL, address=reporter_address
    )
    before = services._snapshot(token) | {"leaked": token.leaked_at is not None}
    secret.leaked_at = now
    fields = ["leaked_at"]
    if secret.ends_at is None:
        token.leaked_at = now
        token.leaked_where = where
        if token.status == TokenStatus.ACTIVE and not token.is_expired(now):
            token.status = TokenStatus.REVOKED
            token.revoked_at = now
            token.revoked_reason = f"Leaked: {where}"[: services.REASON_MAX_LENGTH]
            token.revoked_by = None
            token.revoked_by_name = reporter.name[:150]
            outcome = Outcome.REVOKED
        else:
            outcome = Outcome.RECORDED
        which = "current"
    elif secret.is_valid(now):
        secret.ends_at = now
        fields.append("ends_at")
        outcome = Outcome.GRACE_ENDED
        which = "previous"
    else:
        outcome = Outcome.RECORDED
        which = "previous"
    secret.save(update_fields=fields)
    services._touch(token, reporter, now)
    token.save()
    changes = audit.diff(
        before, services._snapshot(token) | {"leaked": token.leaked_at is not None}
    )
    changes["leak"] = {
        "before": None,
        "after": {
            "outcome": outcome.value,
            "secret": which,
            "secret_partial": secret.partial_token,
            "url": _clean(report.url, URL_MAX_LENGTH),
            "source": _clean(report.source, SOURCE_MAX_LENGTH),
            **({"reported_by": reported_by[:150]} if reported_by else {}),
        },
    }
    services._record(reporter, "token.leaked", token, changes)
    _notify(token, secret, outcome, report, where, now)
    return outcome


def _recipients(token: ApiToken) -> list[str]:
    addresses = set(
        OrganizationMembership.objects.filter(
            organization_id=token.organization_id, role=Role.ADMIN, user__is_active=True
        )
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    if token.scope == TokenScope.PERSONAL and token.user.is_active and token.user.email:
        addresses.add(token.user.email)
    return sorted(addresses)


def _notify(
    token: ApiToken,
    secret: TokenSecret,
    outcome: Outcome,
    report: LeakReport,
    where: str,
    now: datetime,
) -> None:
    """Queue the e-mail in this transaction: it goes once the leak is committed."""
    organization = token.organization
    done = {
        Outcome.REVOKED: "Keyward revoked it at once. It can never be restored: delete it and "
        "create a replacement from its page in the console, then put the new secret where the "
        "old one was used.",
        Outcome.GRACE_ENDED: f"The leaked secret ({secret.partial_token}) was the previous one, "
        "still in its grace period after a regeneration; that grace ended at once. The current "
        "secret keeps working.",
        Outcome.RECORDED: "It no longer worked (revoked, expired, or an old secret already "
        "ended), so nothing else changed; the leak is recorded on the token.",
    }[outcome]
    link = settings.KEYWARD_CONSOLE_URL.rstrip("/") + reverse(
        "tokens:detail", kwargs={"org_slug": organization.slug, "token_id": token.pk}
    )
    subject = f"[Keyward] API token {token.name} of {organization.name} leaked"
    lines = [
        f"A secret of the {token.scope} API token {token.name} ({secret.partial_token}) of "
        f"{organization.name} was reported leaked at {now:%Y-%m-%d %H:%M} UTC.",
        "",
        f"Where: {where}",
    ]
    source = _clean(report.source, SOURCE_MAX_LENGTH)
    if source and source != where:
        lines.append(f"Source: {source}")
    lines += ["", done, "", f"The token: {link}"]
    outbox.queue(
        to=_recipients(token), subject=subject, body="\n".join(lines), purpose="token_leaked"
    )

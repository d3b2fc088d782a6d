"""The event types an endpoint can subscribe to, and how a subscription matches an event.

An endpoint's ``events`` is a list of patterns: an event type (``token.revoked``), every type
of one kind (``token.*``), or every audit event (``*``). Plain data and pure functions.
"""

from __future__ import annotations

from collections.abc import Iterable

EVERYTHING = "*"
TEST_EVENT = "webhook.test"
MAX_PATTERNS = 50

# Every audit action Keyward writes, by kind, with what it means. A new audit action gets a line
# here so that endpoints can subscribe to it by name (``kind.*`` and ``*`` already cover it).
CATALOG: dict[str, str] = {
    "token.created": "A token was created.",
    "token.regenerated": "A token got a new secret (the old one may keep a grace period).",
    "token.revoked": "A token was revoked.",
    "token.restored": "A revoked token was restored.",
    "token.deleted": "A token was deleted for good.",
    "token.renamed": "A token was renamed.",
    "token.described": "A token's description changed.",
    "token.permissions_changed": "A token's role or permissions changed.",
    "token.addresses_changed": "A token's IP filter or allowed addresses changed.",
    "token.leaked": "A token's secret was reported or found in public, or pasted into a form.",
    "token.expiring": "A token expires soon: its reminder went out (7 days and 1 day before).",
    "token.policy_applied": "A security policy change altered a token.",
    "tokens.cleaned_up": "cleanup_tokens deleted or revoked tokens.",
    "tokens.deleted": "cleanup_tokens deleted a batch of old tokens; the event lists them.",
    "security_policy.changed": "The security policy changed.",
    "ip_filter.created": "An IP filter was created.",
    "ip_filter.changed": "An IP filter's name, description or rules changed.",
    "ip_filter.deleted": "An IP filter was deleted.",
    "organization.created": "The organization was created.",
    "organization.renamed": "The organization was renamed.",
    "member.added": "A person joined the organization.",
    "member.role_changed": "A member's role changed.",
    "member.removed": "A person was removed from the organization.",
    "group.created": "A group was created.",
    "group.updated": "A group was renamed.",
    "group.deleted": "A group was deleted.",
    "group_member.added": "A person joined a group.",
    "group_member.role_changed": "A group member's role changed.",
    "group_member.removed": "A person left a group.",
    "webhook.created": "A webhook endpoint was registered.",
    "webhook.updated": "A webhook endpoint's address, events, description or state changed.",
    "webhook.secret_rotated": "A webhook endpoint's signing secret was rotated.",
    "webhook.deactivated": "A webhook endpoint was turned off after failing for 24 hours.",
    "webhook.deleted": "A webhook endpoint was deleted.",
    "webhook.redelivered": "Someone asked for a delivery to be sent again.",
}
KINDS: tuple[str, ...] = tuple(dict.fromkeys(name.split(".")[0] for name in CATALOG))


def matches(patterns: Iterable[str], event_type: str) -> bool:
    """Whether a subscription (a list of patterns) covers this event type."""
    kind = event_type.split(".", 1)[0]
    for pattern in patterns:
        if pattern in (EVERYTHING, event_type) or pattern == f"{kind}.*":
            return True
    return False


def _is_kind_wildcard(pattern: str) -> bool:
    return pattern.endswith(".*") and pattern[:-2] in KINDS


def clean(patterns: Iterable[object]) -> tuple[list[str], list[str]]:
    """Normalize a subscription: ``(patterns, errors)``; patterns sorted and without repeats."""
    cleaned: set[str] = set()
    errors: list[str] = []
    for raw in patterns:
        pattern = raw.strip() if isinstance(raw, str) else ""
        if not pattern:
            errors.append("An event type cannot be empty.")
        elif pattern == EVERYTHING or pattern in CATALOG or _is_kind_wildcard(pattern):
            cleaned.add(pattern)
        else:
            shown = pattern if len(pattern) <= 60 else pattern[:60] + "…"
            errors.append(
                f"{shown!r} is not an event type: use one such as token.revoked, "
                "a kind such as token.*, or * for every event."
            )
    if not cleaned and not errors:
        errors.append("Choose at least one event type (or * for every event).")
    if len(cleaned) > MAX_PATTERNS:
        errors.append(f"Subscribe to at most {MAX_PATTERNS} event types.")
    if EVERYTHING in cleaned:
        cleaned = {EVERYTHING}
    return sorted(cleaned), errors

"""What a principal may see: one filter per model, which its ``visible_to`` queryset applies.

Each function returns a ``Q`` over the model's own fields, so this module needs no model. An
object outside the filter does not exist for the principal: a 404, never a 403.
"""

from __future__ import annotations

from django.db.models import Q

from access import catalog
from access.principal import Principal

NOTHING = Q(pk__in=[])


def _organization(principal: Principal, field: str = "organization") -> Q | None:
    """The organization filter, or None for an operator over every organization."""
    if principal.is_operator and principal.organization is None:
        return None
    if principal.organization is None:
        return NOTHING
    return Q(**{field: principal.organization.pk})


def _within(principal: Principal, field: str, narrower: Q) -> Q:
    organization = _organization(principal, field)
    if organization is None:
        return Q()
    return organization & narrower


def tokens(principal: Principal) -> Q:
    """An organization-wide principal sees every token of the organization; a group token the
    tokens of its group; a person their own personal tokens and those of the groups they
    administer."""
    if principal.organization_wide:
        return _within(principal, "organization", Q())
    if principal.token_scope == catalog.GROUP:
        return _within(principal, "organization", Q(group__in=principal.administered_group_ids))
    if not principal.is_member:
        return NOTHING
    return _within(
        principal,
        "organization",
        Q(scope=catalog.PERSONAL, user=principal.user)
        | Q(scope=catalog.GROUP, group__in=principal.administered_group_ids),
    )


def groups(principal: Principal) -> Q:
    """Every group for an organization-wide principal; otherwise the groups it belongs to."""
    if principal.organization_wide:
        return _within(principal, "organization", Q())
    return _within(principal, "organization", Q(pk__in=principal.member_group_ids))


def organization_members(principal: Principal) -> Q:
    """The organization's memberships; below organization-wide reach, those of the people in
    the groups the principal administers."""
    if principal.organization_wide:
        return _within(principal, "organization", Q())
    return _within(
        principal,
        "organization",
        Q(user__group_memberships__group__in=principal.administered_group_ids),
    )


def group_members(principal: Principal) -> Q:
    """Memberships of the groups the principal administers (all groups organization-wide)."""
    if principal.organization_wide:
        return _within(principal, "group__organization", Q())
    return _within(principal, "group__organization", Q(group__in=principal.administered_group_ids))


def audit_events(principal: Principal) -> Q:
    """The organization's log organization-wide; otherwise the events of administered groups."""
    if principal.organization_wide:
        return _within(principal, "organization", Q())
    return _within(principal, "organization", Q(group_id__in=principal.administered_group_ids))


def ip_filters(principal: Principal) -> Q:
    """IP filters belong to the organization: everyone acting in it sees them."""
    if principal.is_operator or principal.token is not None or principal.is_member:
        return _within(principal, "organization", Q())
    return NOTHING


def token_activity(principal: Principal) -> Q:
    """The events shown beside a token: what the principal may read of the audit log, and
    always what it did itself (a member sees their own doings, not an admin's name and
    address)."""
    own = Q(actor=principal.user) if principal.user is not None else NOTHING
    if principal.holds("api.audit-events.read"):
        return audit_events(principal) | own
    return own


def webhook_endpoints(principal: Principal) -> Q:
    """An organization's webhook endpoints; their deliveries carry its audit events, so only
    organization-wide principals see them (their permissions say whether they may read)."""
    if principal.organization_wide:
        return _within(principal, "organization", Q())
    return NOTHING


def invitations(principal: Principal) -> Q:
    """The organization's invitations, for an organization-wide principal (those who invite);
    nobody else sees whom an organization invited."""
    if principal.organization_wide:
        return _within(principal, "organization", Q())
    return NOTHING


def invitations_addressed_to(user: object) -> Q:
    """The invitations a person may answer: to their e-mail address (compared without case),
    or to their username when their account existed as the invitation was made (a username
    taken later does not inherit it)."""
    email = (getattr(user, "email", "") or "").strip()
    username = getattr(user, "username", "")
    by_name = Q(username=username, created_at__gte=getattr(user, "date_joined", None))
    if not email:
        return by_name & ~Q(username="")
    return (Q(email__iexact=email) & ~Q(email="")) | (by_name & ~Q(username=""))


def groups_with_readable_events(principal: Principal) -> Q:
    """The groups whose part of the audit log the principal reads: every group organization-wide,
    otherwise those it administers."""
    if principal.organization_wide:
        return _within(principal, "organization", Q())
    return _within(principal, "organization", Q(pk__in=principal.administered_group_ids))


def audit_exports(principal: Principal) -> Q:
    """An audit export holds what its requester could read when they asked: theirs alone."""
    if principal.user is None:
        return NOTHING
    return _within(principal, "organization", Q(requested_by=principal.user))

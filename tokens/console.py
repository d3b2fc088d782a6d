"""What every console page of an organization shows about tokens: the banner of those
expiring soon, and no token pasted into a form shown back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Q
from django.http import HttpRequest, QueryDict
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.views.decorators.debug import sensitive_variables

from orgs import names
from tokens import services
from tokens.models import ApiToken, TokenScope

EXPIRING_WITHIN = timedelta(days=7)
BANNER_LIMIT = 10


def expiring_tokens(principal: Any) -> dict[str, Any]:
    """The viewer's own tokens and, for admins, those of what they manage (the access layer's
    visibility) that expire within 7 days, soonest first; others' personal tokens are theirs
    to renew, so they are left out."""
    tokens = (
        ApiToken.objects.visible_to(principal)
        .expiring_within(EXPIRING_WITHIN, timezone.now())
        .exclude(Q(scope=TokenScope.PERSONAL) & ~Q(user=principal.user))
        .select_related("group")
        .order_by("expires_at", "pk")
    )
    shown = list(tokens[: BANNER_LIMIT + 1])
    return {
        "tokens": shown[:BANNER_LIMIT],
        "more": tokens.count() - BANNER_LIMIT if len(shown) > BANNER_LIMIT else 0,
    }


def expiring_tokens_banner(request: HttpRequest) -> dict[str, Any]:
    """Context for base.html's banner; queried only when a full page draws it."""
    principal = getattr(request, "principal", None)
    if principal is None or getattr(request, "organization", None) is None:
        return {}
    return {"expiring": SimpleLazyObject(lambda: expiring_tokens(principal))}


@sensitive_variables("pasted", "data")
def withhold_pasted_tokens(principal: Any, form: Any, fields: tuple[str, ...]) -> None:
    """A console form answered with errors never shows a token pasted into one of its free-text
    ``fields`` again (it is masked), and a live one is treated as leaked even when another
    field failed before the services saw it (a secret the services already processed is found
    already reported, and nothing changes twice)."""
    if form is None or not isinstance(form.data, QueryDict):
        return
    data = form.data.copy()
    pasted: list[str] = []
    for field in fields:
        values = data.getlist(field)
        found = [secret for value in values for secret in names.TOKEN_SHAPE.findall(value)]
        if found:
            pasted += found
            data.setlist(field, [_masked(value) for value in values])
    if pasted:
        services.treat_pasted_as_leaked(actor=principal, secrets=pasted)
        form.data = data


def _masked(text: str) -> str:
    return names.TOKEN_SHAPE.sub(lambda match: f"{match.group(0)[:4]}[masked]", text)

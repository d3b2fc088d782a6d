"""What every console page of an organization shows about tokens: the banner of those
expiring soon, and no token pasted into a form shown back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.views.decorators.debug import sensitive_variables
from django_htmx.http import HttpResponseClientRedirect

from orgs import names
from orgs.console import is_partial
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


SEARCHED_SECRET_MESSAGE = (
    "That was an API token, not a search: it was not searched for. If it was a real token, "
    "it has been treated as leaked (revoked, its owner told). Remove it from your "
    "browser's history."
)


def secrets_in_query(query: QueryDict) -> list[str]:
    """Every token-shaped string in a query's names and values (each value of a repeated name,
    not only the last one ``get`` gives)."""
    return [
        secret
        for key, values in query.lists()
        for text in (key, *values)
        for secret in names.TOKEN_SHAPE.findall(text)
    ]


def query_without_secrets(query: QueryDict, drop: tuple[str, ...] = ()) -> QueryDict:
    """The query less every parameter that holds a token-shaped string (and those in ``drop``)."""
    kept = QueryDict(mutable=True)
    for key, values in query.lists():
        if key in drop or names.TOKEN_SHAPE.search(key):
            continue
        if any(names.TOKEN_SHAPE.search(value) for value in values):
            continue
        kept.setlist(key, values)
    return kept


@sensitive_variables("pasted")
def refuse_secrets_in_query(
    request: Any, principal: Any, url: str, drop: tuple[str, ...] = ("count",)
) -> HttpResponse | None:
    """A GET page's filter that was given a token's secret (any box, any parameter): not
    searched for, not shown back, and treated as leaked like one pasted into any form (it has
    just gone into a URL: the browser's history, proxies' logs). The answer, when there is one,
    sends the browser to ``url`` without it (``HX-Redirect`` for an HTMX request), so that the
    address bar and the history entry lose it too. None: the query holds no secret."""
    pasted = secrets_in_query(request.GET)
    if not pasted:
        return None
    services.treat_pasted_as_leaked(actor=principal, secrets=pasted)
    messages.warning(request, SEARCHED_SECRET_MESSAGE)
    query = query_without_secrets(request.GET, drop)
    target = f"{url}?{query.urlencode()}" if query else url
    if is_partial(request):
        return HttpResponseClientRedirect(target)
    return HttpResponseRedirect(target)

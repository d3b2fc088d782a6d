"""Token secrets a person disclosed to a console page, and what the page does about them.

orgs lies beneath tokens, so it does not treat a secret as leaked itself: it sends
``secrets_disclosed`` (actor, secrets) and tokens, which connects to it when it starts
(``tokens.apps``), treats each as leaked like a secret pasted into any form.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.dispatch import Signal
from django.http import HttpResponse, HttpResponseRedirect, QueryDict
from django.views.decorators.debug import sensitive_variables
from django_htmx.http import HttpResponseClientRedirect

from orgs import names
from orgs.console import is_partial

# Sent with ``actor`` (the principal) and ``secrets`` (token-shaped strings they disclosed).
secrets_disclosed = Signal()

SEARCHED_SECRET_MESSAGE = (
    "That was an API token, not a search: it was not searched for. If it was a real token, "
    "it has been treated as leaked (revoked, its owner told). Remove it from your "
    "browser's history."
)


@sensitive_variables("secrets")
def disclose(actor: Any, secrets: list[str]) -> None:
    """Announce secrets a person just disclosed (tokens treats them as leaked)."""
    if secrets:
        secrets_disclosed.send(sender=None, actor=actor, secrets=secrets)


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
    disclose(principal, pasted)
    messages.warning(request, SEARCHED_SECRET_MESSAGE)
    query = query_without_secrets(request.GET, drop)
    target = f"{url}?{query.urlencode()}" if query else url
    if is_partial(request):
        return HttpResponseClientRedirect(target)
    return HttpResponseRedirect(target)

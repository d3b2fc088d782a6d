"""HTMX requests and what the console around them needs: a sign-in page loaded as a whole page,
and status messages delivered to the page's live region as soon as they are written."""

from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import resolve_url
from django_htmx.http import trigger_client_event

from orgs import names
from orgs.disclosed import query_without_secrets

# The client event that carries them; static/keyward.js puts them in the live region.
MESSAGES_EVENT = "messages"
# A response with one of these makes htmx load a whole page, which shows the messages itself.
_PAGE_LOADS = ("HX-Redirect", "HX-Location", "HX-Refresh")


def without_tokens(url: str) -> str:
    """A same-site address less any query parameter that holds a token's secret (a path that
    holds one is no address to go back to: the home page instead)."""
    parts = urlsplit(url)
    if names.TOKEN_SHAPE.search(parts.path):
        return "/"
    query = query_without_secrets(QueryDict(parts.query))
    return urlunsplit(parts._replace(query=query.urlencode(safe="/"), fragment=""))


def next_without_tokens(url: str) -> str:
    """A sign-in page's ``next`` as given, or without what holds a token's secret."""
    return without_tokens(url) if url and names.TOKEN_SHAPE.search(url) else url


def login_location_without_tokens(location: str) -> str:
    """The sign-in redirect of a signed-out visitor carries the page asked for as ``next``: a
    secret typed into that page's filter (``/o/acme/tokens/?q=kwo_...``) would go into the
    ``Location``, the sign-in page's form and the server's and proxies' logs of the next
    request. The page comes back without it."""
    parts = urlsplit(location)
    query = QueryDict(parts.query, mutable=True)
    target = query.get("next", "")
    if not names.TOKEN_SHAPE.search(target):
        return location
    query["next"] = without_tokens(target)
    return urlunsplit(parts._replace(query=query.urlencode(safe="/")))


class HtmxLoginRedirectMiddleware:
    """The sign-in redirect: without any token's secret in its ``next``, and for an HTMX
    request an ``HX-Redirect``, so that the sign-in page loads as a whole page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code in (301, 302) and response.headers.get("Location", "").startswith(
            resolve_url(settings.LOGIN_URL)
        ):
            response.headers["Location"] = login_location_without_tokens(response["Location"])
        if getattr(request, "htmx", False) and response.status_code in (301, 302):
            location = response.headers.get("Location", "")
            if location.startswith(resolve_url(settings.LOGIN_URL)):
                redirect = HttpResponse(status=204)
                redirect.headers["HX-Redirect"] = location
                return redirect
        return response


class HtmxMessagesMiddleware:
    """Send the messages an HTMX request queued with its own response (``HX-Trigger:
    messages``), so the page shows and announces them now, not on the next full page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        htmx = getattr(request, "htmx", None)
        if (
            not htmx
            or htmx.history_restore_request
            or 300 <= response.status_code < 400
            or any(header in response.headers for header in _PAGE_LOADS)
        ):
            return response
        queued = [
            {"text": str(message), "level": message.level_tag or "info"}
            for message in messages.get_messages(request)
        ]
        if queued:
            trigger_client_event(response, MESSAGES_EVENT, {"messages": queued})
        return response

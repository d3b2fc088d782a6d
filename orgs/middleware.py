"""HTMX requests and what the console around them needs: a sign-in page loaded as a whole page,
and status messages delivered to the page's live region as soon as they are written."""

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django_htmx.http import trigger_client_event

# The client event that carries them; static/keyward.js puts them in the live region.
MESSAGES_EVENT = "messages"
# A response with one of these makes htmx load a whole page, which shows the messages itself.
_PAGE_LOADS = ("HX-Redirect", "HX-Location", "HX-Refresh")


class HtmxLoginRedirectMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
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

"""Headers every response carries that Django's SecurityMiddleware does not set."""

import base64
import hashlib
import html
import re
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from api.support import TOKEN_EXPIRY_HEADER, expiry_header_value


class SecurityHeadersMiddleware:
    """Add the Content-Security-Policy and Permissions-Policy headers.

    A header is all we need: the console has no inline script, so no nonces (django-csp's
    reason to exist) are required. Django's own development error pages do have inline code;
    in DEBUG they get a policy that allows exactly that code, by its hashes.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = settings.KEYWARD_CONTENT_SECURITY_POLICY
        if settings.DEBUG and is_technical_page(response):
            policy = allowing_inline_code_of(response.content, policy)
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=(), clipboard-write=(self)"
        )
        return response


class TokenExpiryHeaderMiddleware:
    """Tell API clients when their token expires (``Keyward-Token-Expiry``), on every response
    to a request a token authenticated, so that they can renew it in time."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        expires_at = getattr(request, "keyward_token_expires_at", None)
        if expires_at is not None:
            response.headers[TOKEN_EXPIRY_HEADER] = expiry_header_value(expires_at)
        return response


# Django's development error pages (technical 404 and 500) carry their style and script inline.
_TECHNICAL_MARK = b'<meta name="robots" content="NONE,NOARCHIVE">'
_INLINE_STYLE = re.compile(rb"<style[^>]*>(.*?)</style>", re.DOTALL)
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL)
_EVENT_HANDLER = re.compile(rb"\son[a-z]+=\"([^\"]*)\"")


def is_technical_page(response: HttpResponse) -> bool:
    """Whether this is one of Django's development error pages (only ever sent in DEBUG)."""
    return (
        not response.streaming
        and response.get("Content-Type", "").startswith("text/html")
        and _TECHNICAL_MARK in response.content[:2000]
    )


def _hash(code: bytes) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(code).digest()).decode() + "'"


def allowing_inline_code_of(content: bytes, policy: str) -> str:
    """The policy, allowing exactly the inline style, script and event handlers of this page
    by their hashes (no 'unsafe-inline'), so a development error page shows styled."""
    styles = {_hash(block) for block in _INLINE_STYLE.findall(content)}
    scripts = {_hash(block) for block in _INLINE_SCRIPT.findall(content)}
    handlers = {
        _hash(html.unescape(handler.decode()).encode())
        for handler in _EVENT_HANDLER.findall(content)
    }
    if styles:
        policy = policy.replace("style-src 'self'", " ".join(["style-src 'self'", *sorted(styles)]))
    if scripts or handlers:
        extra = sorted(scripts) + (["'unsafe-hashes'", *sorted(handlers)] if handlers else [])
        policy = policy.replace("script-src 'self'", " ".join(["script-src 'self'", *extra]))
    return policy


class DatabaseUnavailableMiddleware:
    """Answer 503 with a plain page (no details) while the database cannot be reached.

    The page is rendered without a request context: the usual one would query the database
    for the signed-in user.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        response = HttpResponse(render_to_string("503.html"), status=503)
        response.headers["Retry-After"] = "5"
        return response


class ApiErrorShapeMiddleware:
    """Give the API's own shape to the errors Django and ninja answer before our handlers run:
    an unknown path under /api/ (404) and a method a path does not take (405)."""

    MESSAGES = {
        404: ("not_found", "Not found."),
        405: ("method_not_allowed", "Method not allowed."),
    }

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            request.path.startswith("/api/")
            and response.status_code in self.MESSAGES
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            code, message = self.MESSAGES[response.status_code]
            shaped = JsonResponse(
                {"error": {"code": code, "message": message}}, status=response.status_code
            )
            if "Allow" in response:
                shaped["Allow"] = response["Allow"]
            return shaped
        return response

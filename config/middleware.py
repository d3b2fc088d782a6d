"""Headers every response carries that Django's SecurityMiddleware does not set."""

from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from api.support import TOKEN_EXPIRY_HEADER, expiry_header_value


class SecurityHeadersMiddleware:
    """Add the Content-Security-Policy and Permissions-Policy headers.

    A header is all we need: the console has no inline script, so no nonces (django-csp's
    reason to exist) are required.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault(
            "Content-Security-Policy", settings.KEYWARD_CONTENT_SECURITY_POLICY
        )
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

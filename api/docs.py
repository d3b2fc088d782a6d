"""The API's schema and interactive docs for anonymous readers: built once per process, served
with an ETag and caching headers, and limited per address.

Building the OpenAPI schema costs about 160 ms of CPU; rebuilt on every anonymous request, six
clients slowed every authenticated request twelvefold (issue 22).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified, JsonResponse

from policies.addresses import client_address

logger = logging.getLogger("keyward.api")

_built: dict[str, tuple[str, bytes, str]] = {}  # path -> (etag, body, content type)
_lock = threading.Lock()
_cache_failing = False


def _too_many(request: HttpRequest) -> bool:
    """Count this address's anonymous docs requests in the current minute (shared through
    Redis when configured); a cache that fails lets the request through."""
    global _cache_failing
    limit = settings.KEYWARD_DOCS_REQUESTS_PER_MINUTE
    key = f"keyward:docs:{client_address(request) or 'unknown'}"
    try:
        if cache.add(key, 1, timeout=60):
            count = 1
        else:
            try:
                count = cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.add(key, 1, timeout=60)
                count = 1
    except Exception:  # the cache is down: serve, and say so once per outage
        if not _cache_failing:
            logger.warning("The cache is unavailable; the docs rate limit is off until it returns.")
        _cache_failing = True
        return False
    _cache_failing = False
    return count > limit


def public_docs(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap ninja's schema and docs views: rate limit per address; build each answer once."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response: HttpResponse
        if _too_many(request):
            response = JsonResponse(
                {
                    "error": {
                        "code": "too_many_requests",
                        "message": "Too many requests for the API's documentation from your "
                        "address; try again in a minute.",
                    }
                },
                status=429,
            )
            response.headers["Retry-After"] = "60"
            return response
        built = _built.get(request.path)
        if built is None:
            with _lock:
                built = _built.get(request.path)
                if built is None:
                    response = view(request, *args, **kwargs)
                    if response.status_code != 200:
                        return response
                    body = response.content
                    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
                    built = (etag, body, response.headers.get("Content-Type", ""))
                    _built[request.path] = built
        etag, body, content_type = built
        if etag in request.headers.get("If-None-Match", ""):
            response = HttpResponseNotModified()
        else:
            response = HttpResponse(body, content_type=content_type)
        response.headers["ETag"] = etag
        response.headers["Cache-Control"] = "public, max-age=300"
        return response

    return wrapper

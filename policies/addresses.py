"""The client address of a request.

Only the socket address counts unless it belongs to a proxy named in
``KEYWARD_TRUSTED_PROXIES``; then django-ipware reads the forwarding headers that proxy sets.
A forged ``X-Forwarded-For`` from anyone else is ignored.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from ipware import get_client_ip

from policies.rules import parse_address


class _Forwarded:
    """The part of a request django-ipware reads: its META."""

    def __init__(self, meta: dict[str, str]) -> None:
        self.META = meta


def client_address(request: HttpRequest) -> str | None:
    """The address a request comes from, normalized (IPv4-mapped IPv6 unwrapped).

    ``KEYWARD_TRUSTED_PROXIES`` lists the proxy hops in front of Keyward, outermost first
    (each an address or CIDR). The socket peer is appended to the forwarded chain, so the
    chain only counts when the peer itself is the last trusted proxy; then the hop before
    the proxies is the client. Anything else falls back to the socket address.
    """
    remote = request.META.get("REMOTE_ADDR", "") or ""
    address = remote
    forwarded_for = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if settings.KEYWARD_TRUSTED_PROXIES and forwarded_for and remote:
        chain = f"{forwarded_for}, {remote}"
        forwarded, _routable = get_client_ip(
            _Forwarded({"HTTP_X_FORWARDED_FOR": chain, "REMOTE_ADDR": remote}),
            proxy_order="left-most",
            proxy_trusted_ips=settings.KEYWARD_TRUSTED_PROXIES,
            request_header_order=["HTTP_X_FORWARDED_FOR"],
        )
        if forwarded:
            address = forwarded
    try:
        return str(parse_address(address))
    except ValueError:
        return None

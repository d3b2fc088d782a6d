"""The client address of a request.

Only the socket address counts unless it belongs to a proxy named in
``KEYWARD_TRUSTED_PROXIES``; then django-ipware reads the forwarding headers that proxy sets.
A forged ``X-Forwarded-For`` from anyone else is ignored.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest
from ipware import get_client_ip

from policies.rules import parse_address


def _is_trusted_proxy(address: str) -> bool:
    try:
        parsed = parse_address(address)
    except ValueError:
        return False
    for entry in settings.KEYWARD_TRUSTED_PROXIES:
        try:
            network = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            continue
        if parsed.version == network.version and parsed in network:
            return True
    return False


def client_address(request: HttpRequest) -> str | None:
    """The address a request comes from, normalized (IPv4-mapped IPv6 unwrapped)."""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    address = remote
    if settings.KEYWARD_TRUSTED_PROXIES and _is_trusted_proxy(remote):
        forwarded, _routable = get_client_ip(
            request,
            proxy_order="right-most",
            proxy_trusted_ips=settings.KEYWARD_TRUSTED_PROXIES,
        )
        if forwarded:
            address = forwarded
    try:
        return str(parse_address(address))
    except ValueError:
        return None

"""The client address of a request.

Only the socket address counts unless it belongs to a proxy named in
``KEYWARD_TRUSTED_PROXIES``; then the ``X-Forwarded-For`` chain is read from the right, one
trusted proxy at a time, and the first hop that is not a trusted proxy is the client. A forged
``X-Forwarded-For`` from anyone else is ignored, and a forged prefix sent through a trusted
proxy is skipped (the proxy appends the real peer after it).

We walk the chain ourselves rather than through django-ipware: its strict chain matching gives
up when a client sends its own header through the proxy, and giving up meant using the
proxy's own address, which a filter allowing the internal network would let through.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

from policies.rules import Address, Network, parse_address

MAX_HOPS = 20
# The network one IPv6 subscriber is given whole (RFC 6177), and may take any address of.
IPV6_SUBSCRIBER_PREFIX = 64


@lru_cache(maxsize=8)
def _trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    # Lenient on host bits: "192.0.2.7/24" in a setting means that proxy's block.
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def _is_trusted(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_address(request: HttpRequest) -> str | None:
    """The address a request comes from, normalized (IPv4-mapped IPv6 unwrapped), or None.

    ``KEYWARD_TRUSTED_PROXIES`` lists the proxies in front of Keyward (addresses or CIDR
    blocks). While the current hop is a trusted proxy, the hop it forwarded for (the right-most
    remaining ``X-Forwarded-For`` entry) replaces it. None when the socket address is unusable,
    or a trusted proxy forwarded something that is not an address.
    """
    try:
        current = parse_address(request.META.get("REMOTE_ADDR", "") or "")
    except ValueError:
        return None
    trusted = _trusted_networks(tuple(settings.KEYWARD_TRUSTED_PROXIES or ()))
    if not trusted or not _is_trusted(current, trusted):
        return str(current)
    forwarded_for = request.META.get("HTTP_X_FORWARDED_FOR", "") or ""
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()][-MAX_HOPS:]
    for hop in reversed(hops):
        try:
            current = parse_address(hop)
        except ValueError:
            return None
        if not _is_trusted(current, trusted):
            break
    return str(current)


def subscriber_of(address: str | None) -> str:
    """Whom an address's attempts count against, for a limit per client: an IPv4 address
    itself (everyone behind one NAT counts as one), an IPv6 address's /64 (one subscriber could
    otherwise take a new address per request), "unknown" without an address."""
    if not address:
        return "unknown"
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/{IPV6_SUBSCRIBER_PREFIX}", strict=False))
    return str(parsed)


def lockout_address(request: HttpRequest) -> str | None:
    """The address sign-in lockouts count against (django-axes): the client address, or for
    IPv6 the first address of its /64, so that one subscriber rotating through its network
    meets the same lockout (axes keeps an address, not a network)."""
    address = client_address(request)
    if address is None:
        return None
    parsed = ipaddress.ip_address(address)
    if parsed.version == 6:
        network = ipaddress.ip_network(f"{parsed}/{IPV6_SUBSCRIBER_PREFIX}", strict=False)
        return str(network.network_address)
    return address

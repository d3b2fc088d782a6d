"""Where a webhook may be sent: URL rules and the address classes that are never reached.

The worker resolves the host itself, checks every address it resolves to, and connects only to
an address it checked, so neither a URL nor a DNS answer can point it at the server's own
network. Pure functions apart from ``resolve_host`` (the system resolver, patched in tests).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
URL_MAX_LENGTH = 2000

SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: embeds an IPv4 address
NAT64_LOCAL_USE = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: local translators
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")  # RFC 3056: embeds an IPv4 address


class DestinationRefused(Exception):
    """A webhook URL that must not be used; ``message`` says why, for the ``url`` field."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Destination:
    """A checked URL: where to connect (``addresses``, in order) and what to ask for there."""

    url: str
    scheme: str
    host: str  # as sent in Host and SNI: lowercase, IDNA-encoded, no brackets
    port: int
    addresses: tuple[str, ...]
    allowed_host: bool


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 form carries (mapped, compatible, 6to4, NAT64), and its name."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped, "an IPv4-mapped form of"
    if address in SIX_TO_FOUR and address.sixtofour is not None:
        return address.sixtofour, "a 6to4 form of"
    if address in NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "a NAT64 form of"
    if int(address) >> 32 == 0 and int(address) > 1:
        # ::a.b.c.d, the deprecated IPv4-compatible form (:: and ::1 are handled as themselves).
        return ipaddress.IPv4Address(int(address)), "an IPv4-compatible form of"
    return None


def refusal(address: IPAddress) -> str | None:
    """Why a webhook must never connect to this address ("a private address"), or None."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "a scoped (link-local) address"
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner, form = embedded
            reason = refusal(inner)
            return f"{form} {reason}" if reason else None
        if address in NAT64_LOCAL_USE:
            return "a local-use NAT64 address"
        if address.is_site_local:
            return "a site-local address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in SHARED_ADDRESS_SPACE:
        return "a shared (carrier-grade NAT) address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "not a public address"
    return None


def shown(address: IPAddress) -> str:
    """An address as people write it (``::ffff:127.0.0.1``, not ``::ffff:7f00:1``)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


def resolve_host(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for a host, in its order, each once."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def normalize_host(host: str) -> str:
    """A host as matched against the allowed list and sent in Host: lowercase, IDNA, no dot."""
    host = host.strip().lower().rstrip(".")
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        raise DestinationRefused(f"{host!r} is not a valid host name.") from None


def is_allowed_host(host: str, allowed_hosts: Iterable[str]) -> bool:
    allowed = set()
    for item in allowed_hosts:
        try:
            allowed.add(normalize_host(item.strip("[]")))
        except DestinationRefused:
            continue
    return host in allowed


def parse_url(url: str, *, https_only: bool, allowed_hosts: Iterable[str]) -> Destination:
    """Check a URL's form (no address checks yet); raise DestinationRefused saying why."""
    text = (url or "").strip()
    if not text:
        raise DestinationRefused("Give the URL the events are sent to.")
    if len(text) > URL_MAX_LENGTH:
        raise DestinationRefused(f"A URL has at most {URL_MAX_LENGTH} characters.")
    if any(character.isspace() or ord(character) < 32 for character in text):
        raise DestinationRefused("A URL cannot contain spaces or control characters.")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise DestinationRefused("This is not a valid URL.") from None
    if port == 0:
        raise DestinationRefused("Port 0 cannot be connected to.")
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise DestinationRefused("Use an https:// URL.")
    if not parts.hostname:
        raise DestinationRefused("The URL needs a host name.")
    if parts.username is not None or parts.password is not None:
        raise DestinationRefused(
            "Put no user name or password in the URL: verify deliveries with their signature."
        )
    if parts.fragment:
        raise DestinationRefused("A URL sent to cannot have a #fragment.")
    host = normalize_host(parts.hostname)
    if not host:
        raise DestinationRefused("The URL needs a host name.")
    allowed = is_allowed_host(host, allowed_hosts)
    if https_only and scheme != "https" and not allowed:
        raise DestinationRefused("Use an https:// URL: plain http is refused in production.")
    return Destination(
        url=text,
        scheme=scheme,
        host=host,
        port=port or (443 if scheme == "https" else 80),
        addresses=(),
        allowed_host=allowed,
    )


def check_url(
    url: str,
    *,
    https_only: bool,
    allowed_hosts: Iterable[str],
    resolve: Callable[[str, int], list[str]] | None = None,
) -> Destination:
    """Check a URL and every address its host resolves to; raise DestinationRefused if any
    is refused (unless the host is allowed). The result names the addresses to connect to."""
    destination = parse_url(url, https_only=https_only, allowed_hosts=allowed_hosts)
    resolve = resolve or resolve_host
    try:
        literal = ipaddress.ip_address(destination.host)
    except ValueError:
        literal = None
    if literal is not None:
        found = [str(literal)]
    else:
        try:
            found = resolve(destination.host, destination.port)
        except (OSError, UnicodeError):
            raise DestinationRefused(
                f"The host {destination.host} does not resolve; check its name."
            ) from None
        if not found:
            raise DestinationRefused(f"The host {destination.host} has no address.")
    if not destination.allowed_host:
        for text in found:
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                raise DestinationRefused(
                    f"The host {destination.host} resolves to {text!r}, not an address."
                ) from None
            reason = refusal(address)
            if reason:
                where = (
                    f"{shown(address)} is {reason}"
                    if literal is not None
                    else f"{destination.host} resolves to {shown(address)}, {reason}"
                )
                raise DestinationRefused(
                    f"{where}: webhooks go only to public addresses (an operator can allow a "
                    "host with KEYWARD_WEBHOOK_ALLOWED_HOSTS)."
                )
    return Destination(
        url=destination.url,
        scheme=destination.scheme,
        host=destination.host,
        port=destination.port,
        addresses=tuple(found),
        allowed_host=destination.allowed_host,
    )

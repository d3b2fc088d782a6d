"""IP filter rules: parse ``allow|deny <address|cidr|all>`` lines and decide on an address.

Pure functions, no Django: the first rule that matches decides, and no match means denied.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Action = Literal["allow", "deny"]

MAX_RULES = 500


@dataclass(frozen=True)
class Rule:
    action: Action
    network: Network | None  # None means every address ("all")
    line: int

    def matches(self, address: Address) -> bool:
        if self.network is None:
            return True
        return address.version == self.network.version and address in self.network

    @property
    def target(self) -> str:
        return "all" if self.network is None else format_network(self.network)

    def __str__(self) -> str:
        return f"{self.action} {self.target}"


@dataclass(frozen=True)
class RuleError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class RuleSyntaxError(ValueError):
    """One or more lines are not valid rules; ``errors`` names each line and what is wrong."""

    def __init__(self, errors: list[RuleError]) -> None:
        self.errors = errors
        super().__init__("; ".join(str(error) for error in errors))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: Rule | None  # None when no rule matched (denied)


def format_network(network: Network) -> str:
    """Write a network the way we store it: a single address without its prefix length."""
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def parse_address(text: str) -> Address:
    """Parse a client address, unwrapping IPv4-mapped IPv6 (``::ffff:10.0.0.1`` is 10.0.0.1)."""
    address = ipaddress.ip_address(text.strip())
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            address = ipaddress.IPv6Address(str(address).split("%", 1)[0])
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
    return address


def parse_network(text: str) -> Network:
    """Parse an address or CIDR block; raise ValueError with a message a person can act on."""
    candidate = text.strip()
    if not candidate:
        raise ValueError("an address or CIDR block is missing")
    if "%" in candidate:
        raise ValueError(f"{candidate!r} has an IPv6 zone; write the address without '%zone'")
    try:
        network = ipaddress.ip_network(candidate, strict=True)
    except ValueError as error:
        if "has host bits set" in str(error):
            loose = ipaddress.ip_network(candidate, strict=False)
            raise ValueError(
                f"{candidate!r} has host bits set; did you mean {format_network(loose)}?"
            ) from None
        raise ValueError(f"{candidate!r} is not an IPv4 or IPv6 address or CIDR block") from None
    # ::ffff:10.0.0.0/104 written by hand means 10.0.0.0/8: match what clients send.
    if (
        isinstance(network, ipaddress.IPv6Network)
        and network.network_address.ipv4_mapped
        and network.prefixlen >= 96
    ):
        mapped = network.network_address.ipv4_mapped
        network = ipaddress.IPv4Network(f"{mapped}/{network.prefixlen - 96}")
    return network


def parse_rules(text: str) -> list[Rule]:
    """Parse rule lines; ``#`` starts a comment, blank lines are skipped.

    Raises RuleSyntaxError listing every bad line, so an editor can mark them all at once.
    """
    rules: list[Rule] = []
    errors: list[RuleError] = []
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        action: Action
        match words[0].lower():
            case "allow":
                action = "allow"
            case "deny":
                action = "deny"
            case _:
                errors.append(RuleError(number, f"starts with {words[0]!r}; use 'allow' or 'deny'"))
                continue
        if len(words) != 2:
            errors.append(
                RuleError(number, f"write '{action} <address|cidr|all>' with exactly one target")
            )
            continue
        target = words[1]
        if target.lower() == "all":
            rules.append(Rule(action, None, number))
            continue
        try:
            rules.append(Rule(action, parse_network(target), number))
        except ValueError as error:
            errors.append(RuleError(number, str(error)))
    if len(rules) > MAX_RULES:
        errors.append(RuleError(0, f"a filter holds at most {MAX_RULES} rules"))
    if errors:
        raise RuleSyntaxError(errors)
    return rules


def format_rules(rules: list[Rule]) -> str:
    """Write rules back in canonical form, one per line."""
    return "\n".join(str(rule) for rule in rules)


def decide(rules: list[Rule], address: str | Address) -> Decision:
    """Return the first matching rule's verdict; no match is a denial."""
    if isinstance(address, str):
        try:
            address = parse_address(address)
        except ValueError:
            return Decision(False, None)
    elif isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for rule in rules:
        if rule.matches(address):
            return Decision(rule.action == "allow", rule)
    return Decision(False, None)


def parse_allow_list(entries: list[str]) -> tuple[list[Network], list[RuleError]]:
    """Parse an inline allow-list (one address or CIDR per entry); errors carry 1-based lines."""
    networks: list[Network] = []
    errors: list[RuleError] = []
    for number, entry in enumerate(entries, start=1):
        if not entry.strip():
            continue
        try:
            networks.append(parse_network(entry))
        except ValueError as error:
            errors.append(RuleError(number, str(error)))
    return networks, errors


def address_in(networks: list[Network], address: str | Address) -> bool:
    """True when the list is empty (anywhere) or the address is inside one of the networks."""
    if not networks:
        return True
    if isinstance(address, str):
        try:
            address = parse_address(address)
        except ValueError:
            return False
    return any(address.version == net.version and address in net for net in networks)

"""Whom a per-client limit counts an address against."""

import pytest

from policies.addresses import subscriber_of


@pytest.mark.parametrize(
    ("address", "counted_as"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        (None, "unknown"),
        ("", "unknown"),
    ],
)
def test_limits_count_an_ipv4_address_or_an_ipv6_subscriber_s_64(address, counted_as):
    assert subscriber_of(address) == counted_as

"""Where webhooks may go: every refused address class, URL rules, and DNS answers."""

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhooks.addresses import DestinationRefused, check_url, refusal

# One address per class the worker must never reach, with the words the refusal uses.
REFUSED = {
    "127.0.0.1": "loopback",
    "127.255.0.9": "loopback",
    "::1": "loopback",
    "10.1.2.3": "private",
    "172.16.5.4": "private",
    "192.168.1.1": "private",
    "fc00::1": "private",
    "fd12:3456::1": "private",
    "169.254.169.254": "link-local",  # cloud metadata
    "fe80::1": "link-local",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "ff02::1": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "0.0.0.0": "unspecified",
    "::": "unspecified",
    "100.64.0.1": "carrier-grade NAT",
    "100.127.255.254": "carrier-grade NAT",
    "fec0::1": "site-local",
    "192.0.2.10": "private",  # documentation
    "198.18.0.1": "private",  # benchmarking
    "::ffff:127.0.0.1": "IPv4-mapped form of a loopback",
    "::ffff:10.0.0.1": "IPv4-mapped form of a private",
    "::ffff:169.254.169.254": "IPv4-mapped form of a link-local",
    "::127.0.0.1": "IPv4-compatible form of a loopback",
    "2002:7f00:1::1": "6to4 form of a loopback",
    "2002:a9fe:a9fe::1": "6to4 form of a link-local",
    "64:ff9b::a00:1": "NAT64 form of a private",
    "64:ff9b::7f00:1": "NAT64 form of a loopback",
    "64:ff9b:1::1": "local-use NAT64",
    "2001:db8::1": "private",  # documentation
}
PUBLIC = ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", sorted(REFUSED))
def test_every_non_public_address_class_is_refused_with_its_name(address):
    assert REFUSED[address] in refusal(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_accepted(address):
    assert refusal(ipaddress.ip_address(address)) is None


@given(st.ip_addresses(v=4))
def test_an_ipv4_address_and_its_mapped_ipv6_form_get_the_same_answer(address):
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    assert (refusal(address) is None) == (refusal(mapped) is None)


def resolve_to(*addresses):
    return lambda host, port: list(addresses)


def check(url, *, https_only=False, allowed=(), resolve=None):
    return check_url(
        url, https_only=https_only, allowed_hosts=allowed, resolve=resolve or resolve_to("8.8.8.8")
    )


@pytest.mark.parametrize("address", sorted(REFUSED))
def test_a_url_naming_a_refused_address_is_refused(address):
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(DestinationRefused) as refused:
        check(f"https://{host}/hook")
    assert REFUSED[address] in refused.value.message


@pytest.mark.parametrize("address", sorted(REFUSED))
def test_a_name_that_resolves_to_a_refused_address_is_refused(address):
    with pytest.raises(DestinationRefused) as refused:
        check("https://hooks.example.com/x", resolve=resolve_to(address))
    assert "hooks.example.com resolves to" in refused.value.message
    assert REFUSED[address] in refused.value.message


def test_one_refused_address_among_public_ones_refuses_the_name():
    with pytest.raises(DestinationRefused):
        check("https://hooks.example.com/", resolve=resolve_to("8.8.8.8", "10.0.0.1"))


def test_a_name_that_does_not_resolve_is_refused_with_the_reason():
    def nowhere(host, port):
        raise OSError("Name or service not known")

    with pytest.raises(DestinationRefused, match="does not resolve"):
        check("https://nowhere.example.com/", resolve=nowhere)


def test_the_checked_addresses_are_the_ones_to_connect_to():
    destination = check("https://hooks.example.com:8443/in?x=1", resolve=resolve_to("8.8.8.8"))
    assert destination.addresses == ("8.8.8.8",)
    assert destination.host == "hooks.example.com" and destination.port == 8443


def test_an_allowed_host_skips_the_address_checks_and_the_https_rule():
    destination = check(
        "http://127.0.0.1:9000/hook", https_only=True, allowed=["127.0.0.1"], resolve=None
    )
    assert destination.addresses == ("127.0.0.1",) and destination.allowed_host


def test_allowed_hosts_match_the_host_not_a_prefix_or_suffix():
    with pytest.raises(DestinationRefused):
        check("http://127.0.0.10/", allowed=["127.0.0.1"])
    with pytest.raises(DestinationRefused):
        check(
            "https://evil-internal.example.com/",
            allowed=["internal.example.com"],
            resolve=resolve_to("10.0.0.1"),
        )


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("", "Give the URL"),
        ("ftp://hooks.example.com/", "https://"),
        ("file:///etc/passwd", "https://"),
        ("gopher://hooks.example.com/", "https://"),
        ("https://", "host name"),
        ("https://user:pass@hooks.example.com/", "no user name or password"),
        ("https://hooks.example.com/#frag", "#fragment"),
        ("https://hooks.example.com:99999/", "not a valid URL"),
        ("https://hooks.example.com:0/", "Port 0"),
        ("https://hooks.example.com/ path", "spaces"),
        ("https://hooks.example.com/\x00", "control"),
        ("https://" + "a" * 2000 + ".com/", "at most 2000"),
        ("https://" + "a" * 64 + ".example.com/", "not a valid host name"),
    ],
)
def test_malformed_urls_are_refused_saying_why(url, words):
    with pytest.raises(DestinationRefused) as refused:
        check(url)
    assert words in refused.value.message


def test_production_refuses_plain_http_unless_the_host_is_allowed():
    with pytest.raises(DestinationRefused, match="https"):
        check("http://hooks.example.com/", https_only=True)
    assert check("https://hooks.example.com/", https_only=True).scheme == "https"


def test_a_host_is_compared_and_sent_lowercase_and_idna_encoded():
    destination = check("https://HOOKS.Bücher.example.com./x")
    assert destination.host == "hooks.xn--bcher-kva.example.com"

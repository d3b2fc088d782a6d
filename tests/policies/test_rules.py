"""The IP rule parser and matcher: pure functions, fuzzed with hypothesis."""

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.rules import (
    RuleSyntaxError,
    address_in,
    decide,
    format_network,
    format_rules,
    parse_address,
    parse_allow_list,
    parse_network,
    parse_rules,
)

ipv4_networks = st.builds(
    lambda address, prefix: ipaddress.IPv4Network((address, prefix), strict=False),
    st.integers(min_value=0, max_value=2**32 - 1),
    st.integers(min_value=0, max_value=32),
)
ipv6_networks = st.builds(
    lambda address, prefix: ipaddress.IPv6Network((address, prefix), strict=False),
    st.integers(min_value=0, max_value=2**128 - 1),
    st.integers(min_value=0, max_value=128),
).filter(
    # IPv4-mapped blocks are rewritten to IPv4 on purpose; tested on their own below.
    lambda network: not (network.network_address.ipv4_mapped and network.prefixlen >= 96)
)
targets = st.one_of(
    st.just("all"),
    ipv4_networks.map(format_network),
    ipv6_networks.map(format_network),
)
rule_lines = st.tuples(st.sampled_from(["allow", "deny"]), targets).map(" ".join)


@given(st.lists(rule_lines, min_size=1, max_size=30))
def test_any_sequence_of_valid_rules_round_trips_through_format_rules(lines):
    text = "\n".join(lines)
    rules = parse_rules(text)
    assert format_rules(rules) == text
    assert parse_rules(format_rules(rules)) == rules
    assert [rule.line for rule in rules] == list(range(1, len(lines) + 1))


@given(
    st.lists(rule_lines, min_size=1, max_size=10),
    st.lists(st.sampled_from(["", "   ", "# a comment", "\t# indented comment"]), max_size=5),
)
def test_comments_and_blank_lines_are_skipped_but_keep_line_numbers(lines, noise):
    text = "\n".join(noise + lines)
    rules = parse_rules(text)
    assert len(rules) == len(lines)
    assert rules[0].line == len(noise) + 1


garbage = st.text(
    alphabet=st.characters(
        exclude_categories=["Cs"],
        exclude_characters="\n\r#\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029",
    ),
    min_size=1,
    max_size=40,
).filter(lambda text: text.strip() and text.split()[0].lower() not in ("allow", "deny"))


@given(st.lists(rule_lines, max_size=8), garbage, st.lists(rule_lines, max_size=8))
def test_any_garbage_line_is_rejected_with_its_number(before, junk, after):
    text = "\n".join([*before, junk, *after])
    with pytest.raises(RuleSyntaxError) as raised:
        parse_rules(text)
    assert [error.line for error in raised.value.errors] == [len(before) + 1]
    assert f"line {len(before) + 1}:" in str(raised.value)


@given(
    st.sampled_from(["allow", "deny"]),
    st.text(alphabet="0123456789abcdefxyz.:/-", min_size=1, max_size=30),
)
def test_a_bad_target_is_rejected_and_never_crashes(action, target):
    try:
        rules = parse_rules(f"{action} {target}")
    except RuleSyntaxError as error:
        assert error.errors[0].line == 1
    else:
        assert len(rules) == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("permit 10.0.0.0/8", "use 'allow' or 'deny'"),
        ("allow", "exactly one target"),
        ("allow 10.0.0.1 10.0.0.2", "exactly one target"),
        ("allow 10.0.0.1/8", "host bits set; did you mean 10.0.0.0/8?"),
        ("deny 300.1.1.1", "is not an IPv4 or IPv6 address"),
        ("deny fe80::1%eth0", "IPv6 zone"),
        ("allow 10.0.0.0/33", "is not an IPv4 or IPv6 address"),
    ],
)
def test_each_kind_of_mistake_says_what_is_wrong(line, message):
    with pytest.raises(RuleSyntaxError) as raised:
        parse_rules(f"# header\n{line}")
    assert raised.value.errors[0].line == 2
    assert message in raised.value.errors[0].message


def test_every_bad_line_is_reported_at_once():
    with pytest.raises(RuleSyntaxError) as raised:
        parse_rules("allow 10.0.0.0/8\nbogus\nallow 1.2.3.4\ndeny nope")
    assert [error.line for error in raised.value.errors] == [2, 4]


def test_actions_and_all_are_case_insensitive_and_comments_may_trail_a_rule():
    rules = parse_rules("ALLOW 10.0.0.0/8  # office\nDeny ALL")
    assert [str(rule) for rule in rules] == ["allow 10.0.0.0/8", "deny all"]


def test_the_first_matching_rule_decides():
    rules = parse_rules("deny 10.0.0.5\nallow 10.0.0.0/8\ndeny all")
    denied = decide(rules, "10.0.0.5")
    assert not denied.allowed and denied.rule.line == 1
    allowed = decide(rules, "10.200.0.1")
    assert allowed.allowed and allowed.rule.line == 2
    assert decide(rules, "192.0.2.1").rule.line == 3


def test_an_address_no_rule_matches_is_denied():
    decision = decide(parse_rules("allow 10.0.0.0/8"), "192.0.2.1")
    assert decision.allowed is False and decision.rule is None


def test_ipv4_rules_never_match_ipv6_addresses_and_vice_versa():
    rules = parse_rules("allow 0.0.0.0/0\nallow 2001:db8::/32")
    assert decide(rules, "203.0.113.1").allowed
    assert decide(rules, "2001:db8::42").allowed
    assert not decide(rules, "2001:dead::1").allowed


def test_ipv4_mapped_ipv6_addresses_match_ipv4_rules():
    rules = parse_rules("allow 10.0.0.0/8")
    assert decide(rules, "::ffff:10.1.2.3").allowed
    assert decide(rules, ipaddress.IPv6Address("::ffff:10.1.2.3")).allowed
    assert not decide(rules, "::ffff:11.1.2.3").allowed


def test_an_ipv4_mapped_block_written_as_ipv6_means_its_ipv4_block():
    assert parse_network("::ffff:10.0.0.0/104") == ipaddress.IPv4Network("10.0.0.0/8")
    assert decide(parse_rules("allow ::ffff:10.0.0.0/104"), "10.9.9.9").allowed


def test_zone_less_ipv6_addresses_are_handled_and_zones_stripped_from_clients():
    rules = parse_rules("allow fe80::/10")
    assert decide(rules, "fe80::1").allowed
    assert parse_address("fe80::1%eth0") == ipaddress.IPv6Address("fe80::1")
    assert decide(rules, "fe80::1%eth0").allowed


def test_a_single_address_is_stored_without_its_prefix_length():
    assert str(parse_rules("allow 10.0.0.1/32")[0]) == "allow 10.0.0.1"
    assert str(parse_rules("allow 2001:db8::1/128")[0]) == "allow 2001:db8::1"


def test_an_unparsable_client_address_is_denied_not_an_error():
    assert decide(parse_rules("allow all"), "not-an-address").allowed is False
    assert address_in([parse_network("10.0.0.0/8")], "nonsense") is False


@given(ipv4_networks, st.integers(min_value=0, max_value=2**32 - 1))
def test_matching_agrees_with_the_standard_library(network, value):
    address = ipaddress.IPv4Address(value)
    rules = parse_rules(f"allow {format_network(network)}")
    assert decide(rules, str(address)).allowed == (address in network)


def test_an_inline_allow_list_reports_bad_entries_by_position():
    networks, errors = parse_allow_list(["10.0.0.0/8", "", "nonsense"])
    assert networks == [ipaddress.IPv4Network("10.0.0.0/8")]
    assert [error.line for error in errors] == [3]


def test_an_empty_allow_list_allows_anywhere():
    assert address_in([], "203.0.113.9")

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokens import token_format

PEPPER = b"p" * 32


@pytest.mark.parametrize(
    "scope,prefix", [("organization", "kwo_"), ("group", "kwg_"), ("personal", "kwu_")]
)
def test_a_generated_token_has_the_scope_prefix_and_parses_back_to_its_scope(scope, prefix):
    token = token_format.generate(scope)
    assert token.startswith(prefix)
    assert len(token) == 4 + 43 + 6
    assert token_format.parse(token) == scope


def test_the_body_is_base62_and_differs_every_time():
    tokens = {token_format.generate("organization") for _ in range(200)}
    assert len(tokens) == 200
    assert all(set(token[4:]) <= set(token_format.ALPHABET) for token in tokens)


def test_the_checksum_catches_every_single_character_change():
    token = token_format.generate("group")
    for position in range(len(token)):
        for replacement in set(string.ascii_letters + string.digits + "_") - {token[position]}:
            changed = token[:position] + replacement + token[position + 1 :]
            with pytest.raises(token_format.MalformedToken):
                token_format.parse(changed)


def test_a_truncated_or_extended_token_is_malformed():
    token = token_format.generate("personal")
    for candidate in (token[:-1], token + "a", token[1:], ""):
        with pytest.raises(token_format.MalformedToken):
            token_format.parse(candidate)


@given(st.text(max_size=80))
def test_parsing_any_string_either_gives_a_scope_or_says_malformed(text):
    try:
        scope = token_format.parse(text)
    except token_format.MalformedToken:
        return
    assert scope in token_format.PREFIXES


def test_the_digest_depends_on_the_pepper_and_is_not_the_token():
    token = token_format.generate("organization")
    first, second = token_format.digest(token, PEPPER), token_format.digest(token, b"q" * 32)
    assert first != second
    assert len(first) == 64 and token not in first


def test_the_partial_form_shows_only_the_prefix_and_last_four_characters():
    token = token_format.generate("organization")
    assert token_format.partial(token) == f"kwo_…{token[-4:]}"

"""docs/secret-scanning.md publishes a pattern, a checksum check, a gitleaks rule and a
TruffleHog detector. Read from the page itself, they find every real token and nothing else."""

import re
import string
import tomllib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tokens import token_format

PAGE = (Path(__file__).resolve().parents[2] / "docs" / "secret-scanning.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", PAGE, flags=re.DOTALL)


def published_python() -> dict:
    namespace: dict = {}
    exec(blocks("python")[0], namespace)
    return namespace


FIND = published_python()["find_keyward_tokens"]
REGEX = blocks("regex")[0].strip()
GITLEAKS = tomllib.loads(blocks("toml")[0])["rules"][0]
# The detector's two facts, read without a YAML library (none is among our dependencies).
TRUFFLEHOG = {
    "regex": {"token": re.findall(r"token: '(.*)'", blocks("yaml")[0])[0]},
    "keywords": re.findall(r"^ +- (kw\w+)$", blocks("yaml")[0], flags=re.MULTILINE),
}

scopes = st.sampled_from(sorted(token_format.PREFIXES))
real_tokens = st.builds(token_format.generate, scopes)
# Text around tokens: anything, but a token stands between non-word characters.
separators = st.text(
    alphabet=st.characters(exclude_categories=["Cs"]).filter(
        lambda c: not (c.isalnum() or c == "_")
    ),
    min_size=1,
    max_size=3,
)
noise = st.text(max_size=60)


def is_token(text: str) -> bool:
    try:
        token_format.parse(text)
    except token_format.MalformedToken:
        return False
    return True


def test_every_published_rule_uses_the_same_pattern():
    assert GITLEAKS["regex"] == REGEX
    assert TRUFFLEHOG["regex"]["token"] == REGEX
    assert sorted(GITLEAKS["keywords"]) == sorted(TRUFFLEHOG["keywords"])
    assert sorted(GITLEAKS["keywords"]) == sorted(token_format.PREFIXES.values())


def test_the_published_checksum_is_keywards():
    checksum = published_python()["keyward_checksum"]
    for scope in token_format.PREFIXES:
        token = token_format.generate(scope)
        assert checksum(token[:-6]) == token_format.checksum(token[:-6]) == token[-6:]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(noise, real_tokens), max_size=5), noise, separators, separators)
def test_the_check_finds_exactly_the_real_tokens_in_any_text(pieces, tail, before, after):
    text = "".join(f"{prefix}{before}{token}{after}" for prefix, token in pieces) + tail
    tokens = [token for _prefix, token in pieces]
    assert FIND(text) == tokens
    # The bare pattern (gitleaks, TruffleHog) finds each of them too.
    found = re.findall(REGEX, text)
    assert all(token in found for token in tokens)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_whatever_the_check_finds_in_any_text_is_a_real_token(text):
    assert all(is_token(found) for found in FIND(text))


@settings(max_examples=300, deadline=None)
@given(
    real_tokens,
    st.integers(min_value=0, max_value=token_format.TOKEN_LENGTH - 1),
    st.sampled_from(string.digits + string.ascii_letters),
)
def test_a_token_with_one_character_changed_is_not_found(token, index, replacement):
    changed = token[:index] + replacement + token[index + 1 :]
    if changed == token:
        return
    assert FIND(f" {changed} ") == []


@settings(max_examples=200, deadline=None)
@given(real_tokens, st.sampled_from(["", "x", "_", "9"]), st.sampled_from(["", "x", "_", "9"]))
def test_a_token_inside_a_longer_word_is_not_found(token, before, after):
    if not before and not after:
        return
    assert FIND(f"{before}{token}{after}") == []


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"\Akw[ogu]_[0-9A-Za-z]{49}\Z"))
def test_look_alikes_pass_the_pattern_and_only_real_ones_pass_the_check(candidate):
    assert re.fullmatch(REGEX, candidate)
    assert (FIND(candidate) == [candidate]) == is_token(candidate)

"""One rule for every name and free text people type (tokens, groups, organizations, IP filters,
webhooks, descriptions, reasons). Pure functions.

- NFC-normalized and trimmed; any other space character becomes a plain space.
- No C0/C1 control characters or DEL (a description or reason may keep line breaks and tabs),
  no bidirectional controls (a right-to-left override makes ``exe.png`` read ``gnp.exe``), no
  zero-width or other invisible format characters.
- Nothing shaped like a Keyward token: a secret pasted into a name would be shown in lists,
  exports and the append-only audit log for good. The caller hears which values were tokens
  (``Cleaned.pasted_tokens``) so that live ones can be treated as leaked.
- ``name_key``: two names that look alike once normalized and reduced to their confusable
  skeleton (Unicode TR39), whatever their case, have the same key; a scope keeps one of them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
# Shaped like a token: a scope prefix and at least 40 base62 characters (the format has 49).
TOKEN_SHAPE = re.compile(r"kw[ogu]_[0-9A-Za-z]{40,}")
_CONFUSABLES = Path(__file__).with_name("data") / "confusables.tsv"


@dataclass(frozen=True)
class Cleaned:
    """A value as stored, what is wrong with it (empty when nothing), and any token-shaped
    strings it held."""

    value: str
    errors: list[str] = field(default_factory=list)
    pasted_tokens: list[str] = field(default_factory=list, repr=False)


def _describe(character: str) -> str:
    name = unicodedata.name(character, "")
    return f"U+{ord(character):04X}" + (f" {name}" if name else "")


def clean(
    value: str | None,
    *,
    label: str,
    max_length: int,
    required: bool = True,
    multiline: bool = False,
) -> Cleaned:
    """Normalize ``value`` and say, in words for the person who typed it, what breaks the rule.
    ``label`` names the field in messages ("A name", "A description")."""
    text = unicodedata.normalize("NFC", value or "")
    if multiline:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    allowed_controls = "\n\t" if multiline else ""
    text = "".join(
        " " if unicodedata.category(character) == "Zs" and character != " " else character
        for character in text
    )
    text = text.strip()
    errors: list[str] = []
    if required and not text:
        errors.append(f"{label} is required.")
    if len(text) > max_length:
        errors.append(f"{label} has at most {max_length} characters ({len(text)} given).")
    controls = [
        character
        for character in text
        if character not in allowed_controls
        and (unicodedata.category(character) == "Cc" or character == "\x7f")
    ]
    if controls:
        errors.append(f"{label} cannot contain control characters ({_describe(controls[0])}).")
    bidi = [character for character in text if character in BIDI_CONTROLS]
    if bidi:
        errors.append(
            f"{label} cannot contain text-direction controls ({_describe(bidi[0])}): they make "
            "text read differently from what it is."
        )
    invisible = [
        character
        for character in text
        if unicodedata.category(character) == "Cf" and character not in BIDI_CONTROLS
    ]
    if invisible:
        errors.append(f"{label} cannot contain invisible characters ({_describe(invisible[0])}).")
    pasted = TOKEN_SHAPE.findall(text)
    if pasted:
        errors.append(
            f"{label} cannot contain an API token: never paste a token into a name or a "
            "description, where everyone who reads it would see it. If it was a real token, "
            "it has been treated as leaked."
        )
    return Cleaned(value=text, errors=errors, pasted_tokens=pasted)


@cache
def _prototypes() -> dict[str, str]:
    table: dict[str, str] = {}
    for line in _CONFUSABLES.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        source, target = line.split("\t")
        table[chr(int(source, 16))] = "".join(chr(int(point, 16)) for point in target.split())
    return table


def skeleton(text: str) -> str:
    """The TR39 skeleton: NFD, each character replaced by its prototype, NFD again."""
    prototypes = _prototypes()
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize(
        "NFD", "".join(prototypes.get(character, character) for character in decomposed)
    )


def name_key(name: str) -> str:
    """What makes two names the same within a scope: the skeleton of the case-folded name (so
    "Deploy", "DEPLOY", "Dеploy" with a Cyrillic е and "Deploy" with a no-break space are one
    name)."""
    return skeleton(unicodedata.normalize("NFC", name).casefold().strip())

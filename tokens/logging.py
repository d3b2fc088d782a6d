"""A logging filter that masks anything shaped like a Keyward token before it is written."""

from __future__ import annotations

import logging
import re

from tokens.token_format import BODY_LENGTH, CHECKSUM_LENGTH

TOKEN_SHAPE = re.compile(rf"kw[ogu]_[0-9A-Za-z]{{{BODY_LENGTH + CHECKSUM_LENGTH}}}")


def mask(text: str) -> str:
    return TOKEN_SHAPE.sub(lambda match: f"{match.group(0)[:4]}[masked]", text)


class MaskTokensFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg = masked
            record.args = ()
        return True

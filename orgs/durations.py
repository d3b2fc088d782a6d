"""Durations and expiries as people write them: ``90m``, ``12h``, ``30d``, ``2027-01-15``.
Pure functions."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
UNIT_NAMES = {"m": "minute", "h": "hour", "d": "day"}
MAX_DURATION = timedelta(days=3650)
_PATTERN = re.compile(r"^\s*([1-9][0-9]{0,6})\s*([mhd])\s*$", re.IGNORECASE)


def parse_duration(text: str) -> timedelta:
    """Parse ``<number><m|h|d>``; raise ValueError saying what is accepted."""
    match = _PATTERN.match(text or "")
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration; write a whole number followed by m, h or d "
            "(e.g. 90m, 12h, 30d)"
        )
    duration = int(match.group(1)) * UNITS[match.group(2).lower()]
    if duration > MAX_DURATION:
        raise ValueError("a duration can be at most 3650 days")
    return duration


def format_duration(duration: timedelta) -> str:
    """Write a duration in its largest whole unit: ``30 days``, ``90 minutes``."""
    seconds = int(duration.total_seconds())
    for unit in ("d", "h", "m"):
        size = int(UNITS[unit].total_seconds())
        if seconds and seconds % size == 0:
            count = seconds // size
            return f"{count} {UNIT_NAMES[unit]}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def to_text(duration: timedelta) -> str:
    """The inverse of parse_duration for whole minutes: ``timedelta(days=30)`` -> ``30d``."""
    seconds = int(duration.total_seconds())
    for unit in ("d", "h", "m"):
        size = int(UNITS[unit].total_seconds())
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise ValueError("not a whole number of minutes")


def end_of_day(day: date) -> datetime:
    """A date-only expiry means the end of that day in UTC: 23:59:59."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


def parse_expiry(text: str) -> datetime:
    """An ISO-8601 date-time (UTC unless it carries an offset) or a date (the end of that day in
    UTC); raise ValueError saying what is accepted."""
    text = (text or "").strip()
    try:
        if len(text) == 10:
            return end_of_day(date.fromisoformat(text))
        value = datetime.fromisoformat(text)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(
            f"{text[:40]!r} is not a date or date-time; write 2027-02-01 (the end of that day, "
            "UTC) or 2027-02-01T12:00:00Z"
        ) from None


def duration_argument(text: str) -> timedelta:
    """An argparse ``type`` for options such as ``--older-than 90d``: the error names what is
    accepted."""
    import argparse

    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


# A command interrupted with Ctrl-C exits like a shell job interrupted by SIGINT.
EXIT_INTERRUPTED = 130

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orgs.durations import format_duration, parse_duration, to_text


@pytest.mark.parametrize(
    "text,expected",
    [
        ("90m", timedelta(minutes=90)),
        ("12h", timedelta(hours=12)),
        ("30d", timedelta(days=30)),
        (" 7D ", timedelta(days=7)),
    ],
)
def test_durations_in_minutes_hours_and_days_parse(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "0d", "-1d", "1w", "1.5h", "d", "10", "99999999d", "3651d"])
def test_anything_else_is_refused_with_a_message_that_shows_the_format(text):
    with pytest.raises(ValueError, match="m, h or d|at most"):
        parse_duration(text)


@given(st.integers(min_value=1, max_value=3650), st.sampled_from("mhd"))
def test_a_duration_survives_a_round_trip_through_text(number, unit):
    duration = parse_duration(f"{number}{unit}")
    assert parse_duration(to_text(duration)) == duration


def test_durations_are_written_in_their_largest_whole_unit():
    assert format_duration(timedelta(days=30)) == "30 days"
    assert format_duration(timedelta(hours=1)) == "1 hour"
    assert format_duration(timedelta(minutes=90)) == "90 minutes"

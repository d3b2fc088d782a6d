"""A one-line progress bar for commands run by hand on a terminal."""

from __future__ import annotations

from typing import TextIO


class ProgressBar:
    """A one-line progress bar on a terminal; nothing at all when output is not a terminal."""

    def __init__(self, stream: TextIO, totals: dict[str, int]) -> None:
        self.stream = stream
        self.totals = totals

    def __call__(self, reason: str, done: int) -> None:
        total = max(self.totals.get(reason, 0), done, 1)
        filled = int(30 * done / total)
        self.stream.write(
            f"\r{reason:>8} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}"
            + ("\n" if done >= total else "")
        )
        self.stream.flush()

    @classmethod
    def on_terminal(
        cls, stream: TextIO, totals: dict[str, int], *, quiet: bool
    ) -> ProgressBar | None:
        """A bar when ``stream`` is a terminal and the output is for people (not --json)."""
        if quiet or not stream.isatty():
            return None
        return cls(stream, totals)

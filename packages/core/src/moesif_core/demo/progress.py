"""A progress bar on stderr, with nothing but the standard library.

On a terminal it redraws one line in place; when stderr is a pipe or a file (CI, tests) it writes
a line at the start and one at the end instead of hundreds of carriage returns.
"""

from __future__ import annotations

from typing import Final, TextIO

__all__ = ["ProgressBar"]

_WIDTH: Final = 30


class ProgressBar:
    """``advance(label)`` after each step; ``finish(summary)`` once at the end."""

    def __init__(self, total: int, stream: TextIO, title: str) -> None:
        self.total = max(1, total)
        self.done = 0
        self._stream = stream
        self._title = title
        self._live = _is_terminal(stream)
        self._last_width = 0
        if not self._live:
            stream.write(f"{title}: {total} calls...\n")
            stream.flush()

    def advance(self, label: str = "") -> None:
        self.done += 1
        if self._live:
            self._draw(label)

    def _draw(self, label: str) -> None:
        filled = _WIDTH * self.done // self.total
        bar = "#" * filled + "-" * (_WIDTH - filled)
        line = f"\r{self._title} [{bar}] {self.done:>{len(str(self.total))}}/{self.total}  {label[:40]}"
        pad = max(0, self._last_width - len(line))
        self._last_width = len(line)
        self._stream.write(line + " " * pad)
        self._stream.flush()

    def finish(self, summary: str) -> None:
        if self._live:
            self._stream.write("\r" + " " * self._last_width + "\r")
        self._stream.write(f"{self._title}: {summary}\n")
        self._stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False

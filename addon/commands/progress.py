"""A one-line progress bar for the terminal. No bpy."""

from __future__ import annotations

from typing import TextIO


class ProgressBar:
    """A one-line bar on a terminal; silent when stderr is piped or --quiet."""

    def __init__(self, stream: TextIO, enabled: bool, label: str) -> None:
        self.stream, self.enabled, self.label = stream, enabled, label
        self._last = -1

    def __call__(self, fraction: float) -> None:
        pct = int(fraction * 100)
        if not self.enabled or pct == self._last:
            return
        self._last = pct
        filled = pct * 30 // 100
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {pct:3d}%")
        self.stream.flush()

    def done(self) -> None:
        if self.enabled and self._last >= 0:
            self.stream.write("\r" + " " * (len(self.label) + 40) + "\r")
            self.stream.flush()

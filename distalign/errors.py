"""Errors a user can fix. The CLI prints their message on one line and exits with status 2."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad user input: a malformed file, an unknown option or key, a missing dataset.

    The message must name the file, row, key or option and say what is wrong, so the user can fix it
    without reading a traceback.
    """

    def __init__(self, reason: str, *, file: str | Path | None = None, where: str | None = None) -> None:
        self.reason = reason
        self.file = None if file is None else str(file)
        self.where = where
        parts = [p for p in (self.file, where) if p]
        super().__init__(f"{': '.join(parts)}: {reason}" if parts else reason)

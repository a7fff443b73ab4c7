"""Output paths are checked before any work, so a typo in ``--out`` never costs the computation."""

from __future__ import annotations

from pathlib import Path

from distalign.errors import InputError


def check_output(path: Path | None, option: str, folder: bool = False) -> None:
    """Fails before any work when an output cannot be written: a folder option naming a file, a file
    option naming a folder, or a parent that is a file."""
    if path is None:
        return
    if folder and path.exists() and not path.is_dir():
        raise InputError(f"{path} exists and is not a folder", where=option)
    if not folder and path.is_dir():
        raise InputError(f"{path} is a folder; give a file name", where=option)
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise InputError(f"{parent} is a file, not a folder", where=option)

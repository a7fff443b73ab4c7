"""Damaged cell folders are set aside before a sweep resumes, so the cell is run again instead of the
sweep (or its report) stopping on a file it cannot read.

A cell folder counts as complete when its ``cell.json`` exists (it is written last); a disk error, a
copy cut short or a hand edit can still leave ``cell.json`` or ``items.parquet`` unreadable. Such a folder is
moved to ``<sweep folder>/damaged/`` (kept, never deleted) and named in one line.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pyarrow.parquet as pq

from distalign.scoring.results import CELL_FILE, CELLS, ITEMS_FILE

DAMAGED = "damaged"


def _problem(folder: Path) -> tuple[Path, str] | None:
    """The first unreadable file of a complete cell folder and why, else ``None``."""
    record = folder / CELL_FILE
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("spec_hash") != folder.name or "status" not in data:
            return record, "not a cell record of this folder"
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return record, f"unreadable: {type(exc).__name__}"
    items = folder / ITEMS_FILE
    try:
        pq.read_table(items)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds for a cut or corrupt file
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        return items, f"unreadable: {first.split(chr(39) + ': ')[-1][:160]}"  # pyarrow repeats the path
    return None


def set_aside_damaged(sweep_folder: str | Path) -> list[str]:
    """Moves every damaged cell folder of the sweep to ``damaged/``; returns one line per folder moved."""
    base = Path(sweep_folder) / CELLS
    if not base.is_dir():
        return []
    lines = []
    for record in sorted(base.glob(f"*/{CELL_FILE}")):
        folder = record.parent
        problem = _problem(folder)
        if problem is None:
            continue
        path, why = problem
        dest = Path(sweep_folder) / DAMAGED / f"{folder.name}-{time.strftime('%Y%m%dT%H%M%S')}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(folder), str(dest))
        lines.append(
            f"damaged cell file {path} ({why}): the cell is run again; its old folder was moved to {dest} "
            f"(delete it once the sweep has finished)"
        )
    return lines

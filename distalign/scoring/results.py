"""A sweep's results on disk: one folder per cell under ``<sweep folder>/cells/<spec hash>/``.

Each finished or failed cell is written as ``items.parquet`` (its scored rows, ``ITEM_COLUMNS``) and
``cell.json`` (spec hash, run name, status, error, metrics and the cell's config). ``cell.json`` is written
last and atomically, so a cell folder with a ``cell.json`` is complete: the sweep resumes from it, the
final leaderboard and ``distalign report`` read it, and MLflow only ever receives copies of it.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from distalign.errors import InputError
from distalign.methods.registry import get_method
from distalign.records.config import CellConfig, cell_run_name
from distalign.records.results import ITEM_COLUMNS, CellResult

CELLS = "cells"
ITEMS_FILE = "items.parquet"
CELL_FILE = "cell.json"


def cell_dir(root: str | Path, spec_hash: str) -> Path:
    return Path(root) / CELLS / spec_hash


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def parquet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns holding arrays/dicts become lists/JSON so Parquet can store them."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object:
            sample = next((v for v in out[col] if v is not None), None)
            if isinstance(sample, dict):
                out[col] = out[col].map(lambda v: None if v is None else json.dumps(v, default=str))
            elif hasattr(sample, "tolist") and not isinstance(sample, str):
                out[col] = out[col].map(lambda v: None if v is None else list(map(float, v)))
    return out


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cell_record(result: CellResult) -> dict[str, Any]:
    """What ``cell.json`` holds (no secrets: configs name key variables, never keys)."""
    return _json_safe(
        {
            "spec_hash": result.spec_hash,
            "name": cell_run_name(result.cell),
            "status": result.status,
            "error": result.error,
            "metrics": dict(result.metrics or {}),
            **({"batch_ids": list(result.batch_ids)} if result.batch_ids else {}),
            "cell": asdict(result.cell),
        }
    )


def write_cell(root: str | Path, result: CellResult) -> Path:
    """Writes a cell's folder; ``cell.json`` last, so a half-written folder never looks complete."""
    folder = cell_dir(root, result.spec_hash)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CELL_FILE).unlink(missing_ok=True)
    items = result.items if isinstance(result.items, pd.DataFrame) else pd.DataFrame(columns=ITEM_COLUMNS)
    tmp = folder / f".{ITEMS_FILE}.tmp"
    parquet_safe(items).to_parquet(tmp, index=False)
    os.replace(tmp, folder / ITEMS_FILE)
    _atomic_write(folder / CELL_FILE, json.dumps(cell_record(result), indent=1) + "\n")
    return folder


def read_records(root: str | Path) -> list[dict[str, Any]]:
    """The ``cell.json`` of every complete cell folder, in spec-hash order."""
    base = Path(root) / CELLS
    if not base.is_dir():
        return []
    out = []
    for path in sorted(base.glob(f"*/{CELL_FILE}")):
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise InputError(f"unreadable cell record ({exc})", file=path) from None
    return out


def finished_cells(root: str | Path) -> set[str]:
    return {r["spec_hash"] for r in read_records(root) if r.get("status") == "finished"}


def _frames(
    root: Path, hashes: Sequence[str], columns: Sequence[str] | None, exclude: Sequence[str] = ()
) -> Iterator[pd.DataFrame]:
    for h in hashes:
        path = cell_dir(root, h) / ITEMS_FILE
        try:
            wanted = None if columns is None else list(columns)
            if exclude:
                names = columns if columns is not None else pq.read_schema(path).names
                wanted = [c for c in names if c not in exclude]
            yield pd.read_parquet(path, columns=wanted)
        except (OSError, ValueError) as exc:
            raise InputError(f"unreadable items table ({exc})", file=path) from None


def read_items(
    root: str | Path,
    columns: Sequence[str] | None = None,
    status: str | None = "finished",
    exclude: Sequence[str] = (),
) -> pd.DataFrame:
    """The items tables of the sweep's cells (finished ones by default), concatenated; ``columns`` reads
    only those and ``exclude`` all but those (a large sweep's raw responses are most of its tables)."""
    root = Path(root)
    hashes = [r["spec_hash"] for r in read_records(root) if status is None or r.get("status") == status]
    frames = [f for f in _frames(root, hashes, columns, exclude) if len(f)]
    if not frames:
        return pd.DataFrame(columns=list(columns) if columns is not None else list(ITEM_COLUMNS))
    return pd.concat(frames, ignore_index=True)


#: a predictions row of a sweep's raw answer (``scoring/PREDICTIONS_FORMAT.md``)
RAW_COLUMNS: tuple[str, ...] = (
    "model", "method", "steering", "dataset", "item_id", "attribute", "group", "response", "options",
    "letters", "method_params",
)  # fmt: skip


def method_params(cell: dict[str, Any]) -> dict[str, Any]:
    """Every parameter of a cell's method as the sweep used it (the protocol's defaults and the cell's own
    settings), so that a parser built from them reads an answer exactly as the sweep did."""
    method = cell["method"]
    built = get_method(method["name"], cell["steering"].get("protocol"), **dict(method.get("params") or {}))
    return {f.name: getattr(built, f.name) for f in fields(built)}


def _raw_answer(responses: str) -> list[Any]:
    """What the method's parser read: every generated text of the unit's requests, or one request's option
    log-probs in letter order."""
    entries = json.loads(responses)
    if len(entries) == 1 and "logprobs" in entries[0]:
        return list(entries[0]["logprobs"])
    return [text for entry in entries for text in entry.get("texts", [])]


def raw_predictions(root: str | Path) -> pd.DataFrame:
    """The raw answers of the sweep's finished cells as a predictions table (``RAW_COLUMNS``): one row per
    prompt, with the options and their letters as shown and the method's parameters, so that ``distalign
    score`` parses and scores each answer as the sweep did. A prompt scored against several groups (no
    steering) is one row without a group, scored against every group of its item, as in the sweep."""
    root = Path(root)
    frames = []
    for record in read_records(root):
        if record.get("status") != "finished":
            continue
        items = next(_frames(root, [record["spec_hash"]], None))
        if items.empty:
            continue
        if "letters" not in items:
            raise InputError(
                "the cell's items table predates the options and letters columns; rerun the sweep",
                file=cell_dir(root, record["spec_hash"]) / ITEMS_FILE,
            )
        unit = ["item_id", "prompt_hash", "example_set"]
        shared = items.groupby(unit, dropna=False)["group"].transform("size").to_numpy() > 1
        rows = items.drop_duplicates(unit).copy()
        rows.loc[shared[rows.index], ["attribute", "group"]] = None
        rows["response"] = [_raw_answer(r) for r in rows["responses"]]
        rows["options"] = [list(o) for o in rows["options"]]
        rows["letters"] = [list(o) for o in rows["letters"]]
        rows["method_params"] = json.dumps(method_params(record["cell"]), sort_keys=True)
        frames.append(rows[[*RAW_COLUMNS, "prompt_hash"]])
    if not frames:
        raise InputError("no finished cells to export", file=root / CELLS)
    out = pd.concat(frames, ignore_index=True).astype({"attribute": object, "group": object})
    # a calibrated cell holds the same answers as its uncalibrated twin: each answer once
    same = [c for c in out.columns if c not in ("response", "options", "letters")]
    return out[~out[same].astype(str).duplicated()][list(RAW_COLUMNS)].reset_index(drop=True)


def read_result(root: str | Path, spec_hash: str, cell: CellConfig) -> CellResult:
    """A cell's result back from disk (the config is the caller's: it is the one being resumed)."""
    folder = cell_dir(root, spec_hash)
    try:
        record = json.loads((folder / CELL_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"unreadable cell record ({exc})", file=folder / CELL_FILE) from None
    items = next(_frames(Path(root), [spec_hash], None))
    metrics = {k: (float("nan") if v is None else float(v)) for k, v in record.get("metrics", {}).items()}
    return CellResult(
        spec_hash, cell, record["status"], record.get("error"), items, metrics,
        batch_ids=tuple(record.get("batch_ids", ())),
    )  # fmt: skip

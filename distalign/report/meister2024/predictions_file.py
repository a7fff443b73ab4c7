"""Writing a predictions table in the format ``distalign score`` reads (``scoring/PREDICTIONS_FORMAT.md``):
JSONL, CSV (lists as JSON text) or Parquet, chosen by the file's extension, written atomically."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from distalign.survey.parsing import table_kind

LIST_COLUMNS: tuple[str, ...] = ("probs", "response", "options")


def _plain(value: Any, top: bool = True) -> Any:
    """JSON-ready: numpy arrays and tuples as lists; a missing top-level cell is ``None`` (NaN inside a
    list stays NaN, written as the JSON extension ``NaN``, so a NaN probability is not mistaken for an
    absent one)."""
    if isinstance(value, np.ndarray | tuple | list):
        return [_plain(v, top=False) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if top and (value is None or (isinstance(value, float) and math.isnan(value))):
        return None
    return value


def _json_cell(value: Any) -> Any:
    """A CSV cell: lists and mappings as JSON text (NaN kept as the JSON extension ``NaN``)."""
    if isinstance(value, list | tuple | dict | np.ndarray):
        return json.dumps(value.tolist() if isinstance(value, np.ndarray) else value, ensure_ascii=False)
    return value


def write_predictions(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` to ``path`` (``.jsonl``/``.ndjson``, ``.csv``, ``.parquet``/``.pq``); the file appears
    only when complete."""
    path = Path(path)
    kind = table_kind(path, "predictions")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if kind == "jsonl":
            columns = list(df.columns)
            with tmp.open("w", encoding="utf-8") as fh:
                for values in df.itertuples(index=False, name=None):
                    record = {c: _plain(v) for c, v in zip(columns, values, strict=True)}
                    fh.write(
                        json.dumps({k: v for k, v in record.items() if v is not None}, ensure_ascii=False)
                    )
                    fh.write("\n")
        elif kind == "csv":
            flat = df.copy()
            for c in flat.columns:
                if flat[c].dtype == object:
                    flat[c] = [_json_cell(v) for v in flat[c]]  # NaN/None become empty cells
            flat.to_csv(tmp, index=False)
        else:
            flat = df.copy()
            for c in LIST_COLUMNS:
                if c in flat:
                    flat[c] = [list(v) if isinstance(v, list | tuple | np.ndarray) else None for v in flat[c]]
            flat.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


__all__ = ["write_predictions"]

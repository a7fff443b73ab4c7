"""A sweep read back from MLflow into the sweep folder format (``scoring.results``), so that a sweep
tracked on a server can be reported on, re-scored or resumed from a laptop like a local one.

A parent run's cells are its child runs (tag ``mlflow.parentRunId``) carrying the cell's spec hash (tag
``distalign.spec_hash``) and its scored rows (artifact ``items.parquet``). Each becomes
``cells/<spec hash>/items.parquet`` + ``cell.json``; where a cell was logged more than once (a resumed
sweep), the latest finished run wins.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from distalign.errors import InputError
from distalign.scoring.results import CELL_FILE, ITEMS_FILE, cell_dir
from distalign.tracking.tags import ITEMS_ARTIFACT, TAG_ERROR, TAG_PARENT, TAG_SPEC, TAG_STATUS

#: MLflow run states -> cell statuses, where a child run carries no status tag of its own
RUN_STATUS = {"FINISHED": "finished"}


def _unflatten(params: Mapping[str, str]) -> dict[str, Any]:
    """``{"model.name": "x"}`` -> ``{"model": {"name": "x"}}`` (the cell's config, as logged)."""
    out: dict[str, Any] = {}
    for key, value in sorted(params.items()):
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):  # a value and a group of the same name: keep the value aside
                child = node[p] = {"": child}
            node = child
        node[leaf] = value
    return out


def _status(run: Any) -> str:
    return run.data.tags.get(TAG_STATUS) or RUN_STATUS.get(run.info.status, "failed")


def _latest_per_cell(runs: list[Any]) -> dict[str, Any]:
    """One run per spec hash: finished before unfinished, then the latest started."""
    best: dict[str, Any] = {}
    for run in runs:
        spec = run.data.tags.get(TAG_SPEC)
        if not spec:
            continue
        key = (_status(run) == "finished", run.info.start_time or 0)
        held = best.get(spec)
        if held is None or key > (_status(held) == "finished", held.info.start_time or 0):
            best[spec] = run
    return best


def _write_json(path: Path, record: Mapping[str, Any]) -> None:
    """Atomically, so a folder with a ``cell.json`` is always complete (as ``scoring.results`` requires)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(record, indent=1) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def download_sweep(parent_run_id: str, tracking_uri: str, dest: str | Path) -> Path:
    """Writes the sweep folder of parent run ``parent_run_id`` under ``dest`` and returns ``dest``.

    Raises ``InputError`` when the run does not exist or has no cell runs. A finished cell run without an
    items table is written as failed (its error says so), so it is never mistaken for a complete cell.
    """
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise InputError("exists and is not a folder", where=str(dest))
    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        parent = client.get_run(parent_run_id)
    except MlflowException as exc:
        raise InputError(f"no MLflow run {parent_run_id!r} ({exc.message})", where=tracking_uri) from None
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.`{TAG_PARENT}` = '{parent_run_id}'",
        max_results=50000,
    )
    cells = _latest_per_cell(list(children))
    if not cells:
        raise InputError(
            f"run {parent_run_id} has no cell runs (child runs with tag {TAG_SPEC})", where=tracking_uri
        )
    for spec, run in sorted(cells.items()):
        folder = cell_dir(dest, spec)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CELL_FILE).unlink(missing_ok=True)
        status, error = _status(run), run.data.tags.get(TAG_ERROR)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = client.download_artifacts(run.info.run_id, ITEMS_ARTIFACT, tmp)
            except (MlflowException, OSError) as exc:
                local = None
                if status == "finished":
                    status, error = "failed", f"run {run.info.run_id} has no {ITEMS_ARTIFACT} ({exc})"
            if local is not None:
                shutil.copyfile(local, folder / f".{ITEMS_FILE}.tmp")
                os.replace(folder / f".{ITEMS_FILE}.tmp", folder / ITEMS_FILE)
        record = {
            "spec_hash": spec,
            "name": run.info.run_name,
            "status": status,
            "error": error,
            "metrics": dict(run.data.metrics),
            "cell": _unflatten(run.data.params),
            "mlflow_run_id": run.info.run_id,
        }
        _write_json(folder / CELL_FILE, record)
    return dest


__all__ = ["download_sweep"]

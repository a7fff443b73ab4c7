"""MLflow is the record of a sweep: one experiment, a parent run per sweep, one child run per cell.

There is one writer at a time, through ``MlflowClient`` with explicit run ids, so concurrent cells never
race on MLflow's global "active run" state, and a fresh SQLite store is initialised exactly once (concurrent
first opens corrupt it). Cells are written in the background by a process of their own
(``distalign.tracking.writer``) in the order they finish; the driver waits for it before it writes the
parent run. Resuming a sweep re-opens its parent run (found by the sweep id) and
skips the cells whose child run finished.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.tracking import MlflowClient

from distalign.records.config import CellConfig, cell_run_name, identity_dict
from distalign.tracking.provenance import git_revision, package_versions
from distalign.tracking.writer import BackgroundWriter, WriterGone, is_gone

log = logging.getLogger(__name__)

# Reading back per-cell tables on resume would otherwise print one progress bar per run.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# MLflow's usage telemetry would send a record of every logging call to MLflow's servers: sweeps run
# offline and on private clusters, and each record costs the writer time. Set it to "false" to opt in.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

TAG_SPEC = "distalign.spec_hash"
TAG_SWEEP = "distalign.sweep_id"
TAG_KIND = "distalign.kind"
ITEMS_ARTIFACT = "items.parquet"
TV_FIGURE = "tv_hist.svg"


def resolve_tracking_uri(uri: str | None) -> str:
    """Config value, else ``MLFLOW_TRACKING_URI``, else a SQLite store in the working directory."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def _is_local(uri: str) -> bool:
    return uri.startswith("sqlite:") or uri.startswith("file:") or "://" not in uri


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def cell_params(cell: CellConfig) -> dict[str, str]:
    """The cell spec as MLflow params (identity plus how it was served; never secrets, only env var names)."""
    ident = flatten(identity_dict(cell))
    s = cell.model.serving
    serving = {
        "serving.engine": s.engine,
        "serving.device": s.device,
        "serving.dtype": s.dtype,
        "serving.tensor_parallel_size": s.tensor_parallel_size,
        "serving.api_base": s.api_base,
        "serving.api_key_env": s.api_key_env,
    }
    return {k: ("" if v is None else str(v))[:6000] for k, v in {**ident, **serving}.items()}


class CellLog:
    """Writes one cell's child run. Built in the driver, or in the writer process from the same ids."""

    def __init__(
        self,
        uri: str,
        experiment_id: str,
        sweep_id: str,
        parent_run_id: str,
        provenance: Mapping[str, str],
        client: MlflowClient | None = None,
    ) -> None:
        self.uri, self.experiment_id, self.sweep_id = uri, experiment_id, sweep_id
        self.parent_run_id, self.provenance = parent_run_id, dict(provenance)
        self.client = client if client is not None else MlflowClient(tracking_uri=uri)

    @classmethod
    def warmed(cls, *args: Any) -> CellLog:
        """For the writer process: imports what the first cell would otherwise wait for."""
        import pyarrow.parquet  # noqa: F401

        import distalign.tracking.figures  # noqa: F401

        return cls(*args)

    def log(self, result: Any) -> str:
        """One child run per cell: params, tags, metrics and the per-item table; finished last, so a run
        that is FINISHED always has all of its artifacts."""
        cell: CellConfig = result.cell
        tags = {
            TAG_SPEC: result.spec_hash,
            TAG_SWEEP: self.sweep_id,
            TAG_KIND: "cell",
            "mlflow.parentRunId": self.parent_run_id,
            **self.provenance,
            "distalign.status": result.status,
        }
        if result.error:
            tags["distalign.error"] = str(result.error)[:5000]
        run = self.client.create_run(self.experiment_id, run_name=cell_run_name(cell), tags=tags)
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        metrics = [
            Metric(k, float(v), now, 0)
            for k, v in (result.metrics or {}).items()
            if v is not None and _finite(v)
        ]
        params = [Param(k, v) for k, v in cell_params(cell).items()]
        for i in range(0, max(len(metrics), len(params), 1), 100):
            self.client.log_batch(run_id, metrics=metrics[i : i + 100], params=params[i : i + 100])
        items = getattr(result, "items", None)
        if isinstance(items, pd.DataFrame) and len(items):
            self._log_items(run_id, items)
        calibration = getattr(result, "calibration", None)
        if calibration is not None:
            self._log_calibration(run_id, calibration)
        status = "FINISHED" if result.status == "finished" else "FAILED"
        self.client.set_terminated(run_id, status=status)
        return run_id

    def _log_calibration(self, run_id: str, outcome: Any) -> None:
        """Calibrator params, figures and the fitted models (``mlflow.sklearn``) in the cell's own run."""
        from distalign.tracking.calibrators import log_calibrators

        # the calibration config itself is already among the cell's params
        params = [
            Param(k, str(v)[:6000]) for k, v in outcome.params.items() if not k.startswith("calibration")
        ]
        if params:
            self.client.log_batch(run_id, params=params)
        for name, fig in outcome.figures.items():
            self.client.log_figure(run_id, fig, f"figures/calibration_{name}.png")
        log_calibrators(self.client, run_id, outcome, tracking_uri=self.uri)

    def _log_items(self, run_id: str, items: pd.DataFrame) -> None:
        from distalign.tracking.figures import tv_histogram_svg

        with tempfile.TemporaryDirectory() as tmp:  # laid out as in the run: one upload for both
            _parquet_safe(items).to_parquet(Path(tmp) / ITEMS_ARTIFACT, index=False)
            if "tv" in items:
                (Path(tmp) / "figures").mkdir()
                svg = tv_histogram_svg(items["tv"].to_numpy(dtype=float))
                (Path(tmp) / "figures" / TV_FIGURE).write_text(svg, encoding="utf-8")
            self.client.log_artifacts(run_id, tmp)


class MLflowTracker:
    """Implements the sweep's tracker protocol: ``finished_cells()`` and ``log_cell(result)``."""

    def __init__(
        self,
        tracking_uri: str | None,
        experiment: str,
        sweep_name: str,
        spec_hashes: Iterable[str],
        sweep_params: Mapping[str, Any] | None = None,
        background: bool = True,
    ) -> None:
        self.uri = resolve_tracking_uri(tracking_uri)
        self.client = MlflowClient(tracking_uri=self.uri)
        self.experiment_id = self._experiment(experiment)
        hashes = sorted(set(spec_hashes))
        import hashlib

        self.sweep_id = hashlib.sha256((sweep_name + "|" + ",".join(hashes)).encode()).hexdigest()[:16]
        self.parent_run_id, self.resumed = self._parent(sweep_name, sweep_params or {})
        self._close_stale_children()
        ids = (self.uri, self.experiment_id, self.sweep_id, self.parent_run_id, _provenance_tags())
        self._cells = CellLog(*ids, client=self.client)
        self._pending: list[tuple[Any, Future[str]]] = []
        # cells are written by a process of their own (``background``), so the driver only pickles them;
        # the writer hands it pipe descriptors, which only POSIX passes on: elsewhere cells are written here
        background = background and os.name == "posix"
        self._writer = BackgroundWriter(partial(CellLog.warmed, *ids)) if background else None

    # -- set-up -------------------------------------------------------------------------------------------
    def _experiment(self, name: str) -> str:
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        kwargs: dict[str, Any] = {}
        if _is_local(self.uri):
            kwargs["artifact_location"] = (Path.cwd() / "mlruns").resolve().as_uri()
        try:
            return self.client.create_experiment(name, **kwargs)
        except Exception:  # created concurrently by another driver: use theirs
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    def _parent(self, sweep_name: str, params: Mapping[str, Any]) -> tuple[str, bool]:
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{TAG_SWEEP}` = '{self.sweep_id}' and tags.`{TAG_KIND}` = 'sweep'",
            max_results=1,
            order_by=["attributes.start_time DESC"],
        )
        if runs:
            run_id = runs[0].info.run_id
            if runs[0].info.status != "RUNNING":
                self.client.update_run(run_id, status="RUNNING")
            return run_id, True
        tags = {TAG_SWEEP: self.sweep_id, TAG_KIND: "sweep", "distalign.git_revision": git_revision()}
        run = self.client.create_run(self.experiment_id, run_name=sweep_name, tags=tags)
        flat = {k: ("" if v is None else str(v))[:6000] for k, v in flatten(params).items()}
        if flat:
            self.client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in flat.items()])
        return run.info.run_id, False

    def _children(self, status: str | None = None) -> list[Any]:
        flt = f"tags.`mlflow.parentRunId` = '{self.parent_run_id}' and tags.`{TAG_KIND}` = 'cell'"
        if status:
            flt += f" and attributes.status = '{status}'"
        return list(self.client.search_runs([self.experiment_id], filter_string=flt, max_results=50000))

    def _close_stale_children(self) -> None:
        """Child runs left RUNNING by a killed driver are marked KILLED; the cell is redone."""
        for run in self._children("RUNNING"):
            self.client.set_terminated(run.info.run_id, status="KILLED")

    # -- tracker protocol ---------------------------------------------------------------------------------
    def finished_cells(self) -> set[str]:
        self.flush()
        return {r.data.tags[TAG_SPEC] for r in self._children("FINISHED") if TAG_SPEC in r.data.tags}

    def log_cell(self, result: Any) -> Future[str]:
        """Queues the cell for the writer process and returns at once; the future holds its run id.

        An earlier cell's failure to be written is raised here, so a broken store stops the sweep early. A
        cell that cannot be pickled is written here, after everything queued before it.
        """
        self._check_done()
        if self._writer is not None:
            try:
                future = self._writer.submit("log", result)
            except WriterGone as exc:
                log.warning("the MLflow writer process is gone (%s); logging from the driver", exc)
                self._lose_writer()
            except (pickle.PicklingError, TypeError, AttributeError) as exc:
                log.debug("cell %s cannot be pickled (%s); logging it from the driver", result.spec_hash, exc)
            else:
                self._pending.append((result, future))
                return future
        self.flush()
        done: Future[str] = Future()
        done.set_result(self._cells.log(result))
        return done

    def flush(self) -> None:
        """Waits until every queued cell is written. Cells the writer process died holding are written
        from here (their half-written runs are marked KILLED first); the first error of a cell is raised."""
        pending, self._pending = self._pending, []
        lost: list[Any] = []
        error: BaseException | None = None
        for result, future in pending:
            try:
                future.result()
            except Exception as exc:  # noqa: BLE001 - sorted into "the writer died" and "writing failed"
                if is_gone(exc):
                    lost.append(result)
                elif error is None:
                    error = exc
        if lost:
            log.warning("the MLflow writer process died; logging %d cell(s) from the driver", len(lost))
            self._lose_writer()
            self._close_stale_children()
            for result in lost:
                self._cells.log(result)
        if error is not None:
            raise error

    def close(self) -> None:
        """Writes what is queued and stops the writer process."""
        try:
            self.flush()
        finally:
            self._lose_writer()

    def _check_done(self) -> None:
        while self._pending and self._pending[0][1].done():
            if self._pending[0][1].exception() is not None:
                self.flush()  # raises the error, or writes what a dead writer held
                return
            self._pending.pop(0)

    def _lose_writer(self) -> None:
        if self._writer is not None:
            self._writer.close(wait=False)
            self._writer = None

    # -- reading back (resume, reports) ---------------------------------------------------------------------
    def finished_items(self) -> pd.DataFrame:
        """The per-item tables of every finished cell of this sweep (for the final leaderboard on resume)."""
        self.flush()
        frames = []
        for run in self._children("FINISHED"):
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    local = self.client.download_artifacts(run.info.run_id, ITEMS_ARTIFACT, tmp)
                except Exception as exc:  # noqa: BLE001 - a finished run without items is reported, not fatal
                    log.warning("run %s has no %s: %s", run.info.run_id, ITEMS_ARTIFACT, exc)
                    continue
                frames.append(pd.read_parquet(local))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def log_leaderboard(
        self, rows: Sequence[Mapping[str, Any]], extra_tables: Mapping[str, Any] | None = None
    ) -> None:
        """The sweep's leaderboard (Table 1a/1b shape) as a table, CSV and a figure on the parent run."""
        from distalign.tracking.figures import leaderboard_figure

        self.flush()  # one writer at a time
        df = pd.DataFrame(list(rows))
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "leaderboard.csv"
            df.to_csv(csv, index=False)
            self.client.log_artifact(self.parent_run_id, str(csv))
            self.client.log_table(self.parent_run_id, data=df, artifact_file="leaderboard.json")
            for name, table in (extra_tables or {}).items():
                t = pd.DataFrame(table)
                if len(t):
                    self.client.log_table(self.parent_run_id, data=t, artifact_file=f"{name}.json")
            if len(df):
                fig = Path(tmp) / "leaderboard.png"
                leaderboard_figure(df, fig)
                self.client.log_artifact(self.parent_run_id, str(fig), artifact_path="figures")

    def log_figures(self, figures: Mapping[str, Any]) -> None:
        """Sweep-level matplotlib figures (calibration curves, per-group effects) on the parent run."""
        import matplotlib.pyplot as plt

        self.flush()
        for name, fig in figures.items():
            self.client.log_figure(self.parent_run_id, fig, f"figures/{name}.png")
            plt.close(fig)

    def log_parent_metrics(self, metrics: Mapping[str, float]) -> None:
        self.flush()
        now = int(time.time() * 1000)
        ms = [Metric(k, float(v), now, 0) for k, v in metrics.items() if v is not None and _finite(v)]
        if ms:
            self.client.log_batch(self.parent_run_id, metrics=ms)

    def finish(self, failed: bool = False) -> None:
        self.close()
        self.client.set_terminated(self.parent_run_id, status="FAILED" if failed else "FINISHED")

    def ui_command(self) -> str:
        if self.uri.startswith("sqlite:") or self.uri.startswith("file:"):
            # litellm (installed beside mlflow) would otherwise fetch a price table when the UI imports it
            return f"LITELLM_LOCAL_MODEL_COST_MAP=True mlflow ui --backend-store-uri {self.uri}"
        return f"open {self.uri}"


def _provenance_tags() -> dict[str, str]:
    return {
        "distalign.git_revision": git_revision(),
        "distalign.packages": json.dumps(package_versions(), sort_keys=True),
    }


def _finite(v: Any) -> bool:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return False
    return f == f and f not in (float("inf"), float("-inf"))


def _parquet_safe(df: pd.DataFrame) -> pd.DataFrame:
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


__all__ = ["MLflowTracker", "resolve_tracking_uri", "RunStatus", "RunTag"]

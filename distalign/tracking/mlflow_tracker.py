"""MLflow is the record of a sweep: one experiment, a parent run per sweep, one child run per cell.

MLflow only receives data: each finished cell is handed over once, with everything it has, and nothing is
read back for the sweep's own use (resume and the leaderboard read the sweep folder). Cells are written by
one background thread, in the order they finish, through ``MlflowClient`` with explicit run ids (MLflow's
global "active run" is never touched), so the driver goes on with the sweep while MLflow writes; the driver
waits for the thread before it writes the parent run. Resuming a sweep re-opens its parent run (found by
the sweep id) only once the rerun has cells to run — a rerun that fails before doing any work leaves a
FINISHED parent FINISHED — and never writes a second child run for a cell that has a finished one. The
parent's metrics are the whole sweep's (``previous_metrics`` holds what earlier attempts recorded).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy.exc import SQLAlchemyError

from distalign.engines.registry import serving_params
from distalign.errors import InputError
from distalign.records.config import CellConfig, identity_dict
from distalign.scoring.results import parquet_safe
from distalign.survey.paths import tool_command
from distalign.tracking.calibrators import log_calibrators
from distalign.tracking.figures import tv_histogram
from distalign.tracking.provenance import git_revision, package_versions
from distalign.tracking.store_check import check_tracking_uri
from distalign.tracking.tags import (
    ITEMS_ARTIFACT,
    TAG_BATCHES,
    TAG_ERROR,
    TAG_GIT,
    TAG_KIND,
    TAG_PARENT,
    TAG_SPEC,
    TAG_STATUS,
    TAG_SWEEP,
)

log = logging.getLogger(__name__)

#: MLflow 3 opens an experiment on its GenAI page unless this tag says it is a (classic) ML experiment
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
TV_FIGURE = "tv_hist.png"
#: the metrics the runs table shows as columns: MLflow's UI keeps its column choice per browser and starts
#: with none; a view stored on the experiment (a ``mlflow.sharedViewState.<key>`` tag, MLflow's "share
#: view") is applied by any browser that opens ``/experiments/<id>/runs?viewStateShareKey=<key>``
TABLE_METRICS = ("tv_mean", "tv_ci_low", "tv_ci_high", "extraction_rate")
VIEW_KEY = "distalign-runs"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
VIEW_STATE = json.dumps({"selectedColumns": [f"metrics.`{m}`" for m in TABLE_METRICS]})


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


def cell_params(cell: CellConfig, content: Mapping[str, str]) -> dict[str, str]:
    """The cell spec as MLflow params: its identity (content digests included), where it read its data and
    how it was served (never secrets, only env var names)."""
    ident = flatten(identity_dict(cell, content))
    ident.update({"dataset.data_dir": cell.dataset.data_dir, "dataset.path": cell.dataset.path})
    ident["steering.templates"] = cell.steering.templates
    # a group's ``name`` that repeats another of its fields (``steering.steering``) is one param, not two
    for group in ("model", "dataset", "steering", "method", "calibration"):
        name = ident.get(f"{group}.name")
        same = [
            k for k, v in ident.items() if k.startswith(f"{group}.") and k != f"{group}.name" and v == name
        ]
        for k in same:
            if k.rsplit(".", 1)[-1] == group:
                ident.pop(k)
    serving = serving_params(cell.model)
    return {k: ("" if v is None else str(v))[:6000] for k, v in {**ident, **serving}.items()}


def run_name(cell: CellConfig) -> str:
    """A child run's name, the parts that usually differ between the cells of a sweep first (method,
    steering), so that names differ within what MLflow's runs table shows of them."""
    parts = [cell.method.name, cell.steering.name, cell.model.name, cell.dataset.name]
    if cell.calibration.name != "none":
        parts.insert(1, cell.calibration.name)
    return " · ".join(parts)


class CellLog:
    """Writes one cell's child run."""

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

    def log(self, result: Any) -> str:
        """One child run per cell: params, tags, metrics and the per-item table; finished last, so a run
        that is FINISHED always has all of its artifacts."""
        cell: CellConfig = result.cell
        tags = {
            TAG_SPEC: result.spec_hash,
            TAG_SWEEP: self.sweep_id,
            TAG_KIND: "cell",
            TAG_PARENT: self.parent_run_id,
            **self.provenance,
            TAG_STATUS: result.status,
        }
        if result.error:
            tags[TAG_ERROR] = str(result.error)[:5000]
        if getattr(result, "batch_ids", ()):
            tags[TAG_BATCHES] = ",".join(result.batch_ids)[:5000]
        run = self.client.create_run(self.experiment_id, run_name=run_name(cell), tags=tags)
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        metrics = [
            Metric(k, float(v), now, 0)
            for k, v in (result.metrics or {}).items()
            if v is not None and _finite(v)
        ]
        params = [Param(k, v) for k, v in cell_params(cell, result.content).items()]
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
        with tempfile.TemporaryDirectory() as tmp:  # laid out as in the run: one upload for both
            parquet_safe(items).to_parquet(Path(tmp) / ITEMS_ARTIFACT, index=False)
            if "tv" in items:
                (Path(tmp) / "figures").mkdir()
                figure = tv_histogram(items["tv"].to_numpy(dtype=float))
                figure.savefig(Path(tmp) / "figures" / TV_FIGURE, dpi=120, facecolor="white")
            self.client.log_artifacts(run_id, tmp)


class MLflowTracker:
    """Implements the sweep's tracker protocol: ``finished_cells()``, ``log_cell(result)``, ``flush()``."""

    def __init__(
        self,
        tracking_uri: str | None,
        experiment: str,
        sweep_name: str,
        sweep_id: str,
        sweep_params: Mapping[str, Any] | None = None,
    ) -> None:
        self.uri = resolve_tracking_uri(tracking_uri)
        check_tracking_uri(self.uri)  # seconds, where MLflow would retry for minutes
        self.sweep_id = sweep_id
        try:
            self.client = MlflowClient(tracking_uri=self.uri)
            self.experiment_id = self._experiment(experiment)
            #: the parent's metrics and status as earlier attempts left them (empty / None for a new sweep)
            self.previous_metrics: dict[str, float] = {}
            self.previous_status: str | None = None
            self.parent_run_id, self.resumed = self._parent(sweep_name, sweep_params or {})
            self._reopened = not self.resumed
            self._close_stale_children()
        except (MlflowException, SQLAlchemyError) as exc:
            first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            raise InputError(
                f"cannot use the MLflow store {self.uri}: {first}", where="sweep.tracking_uri"
            ) from None
        self._cells = CellLog(
            self.uri, self.experiment_id, self.sweep_id, self.parent_run_id, _provenance_tags(), self.client
        )
        self._finished = self._finished_now()
        self._pending: list[Future[str | None]] = []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="distalign-mlflow")

    # -- set-up -------------------------------------------------------------------------------------------
    def _experiment(self, name: str) -> str:
        """The experiment's id (created when missing), tagged as an ML experiment so that MLflow opens it
        on its runs table."""
        tags = {EXPERIMENT_KIND_TAG: EXPERIMENT_KIND, VIEW_TAG: VIEW_STATE}
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            for key, value in tags.items():
                if exp.tags.get(key) != value:
                    self.client.set_experiment_tag(exp.experiment_id, key, value)
            return exp.experiment_id
        kwargs: dict[str, Any] = {}
        if _is_local(self.uri):
            kwargs["artifact_location"] = (Path.cwd() / "mlruns").resolve().as_uri()
        kwargs["tags"] = tags
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
            self.previous_metrics = dict(runs[0].data.metrics)
            self.previous_status = runs[0].info.status
            return runs[0].info.run_id, True
        tags = {TAG_SWEEP: self.sweep_id, TAG_KIND: "sweep", TAG_GIT: git_revision()}
        run = self.client.create_run(self.experiment_id, run_name=sweep_name, tags=tags)
        flat = {k: ("" if v is None else str(v))[:6000] for k, v in flatten(params).items()}
        if flat:
            self.client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in flat.items()])
        return run.info.run_id, False

    def _children(self, status: str | None = None) -> list[Any]:
        flt = f"tags.`{TAG_PARENT}` = '{self.parent_run_id}' and tags.`{TAG_KIND}` = 'cell'"
        if status:
            flt += f" and attributes.status = '{status}'"
        return list(self.client.search_runs([self.experiment_id], filter_string=flt, max_results=50000))

    def _close_stale_children(self) -> None:
        """Child runs left RUNNING by a killed driver are marked KILLED; the cell is redone."""
        for run in self._children("RUNNING"):
            self.client.set_terminated(run.info.run_id, status="KILLED")

    def _finished_now(self) -> set[str]:
        return {r.data.tags[TAG_SPEC] for r in self._children("FINISHED") if TAG_SPEC in r.data.tags}

    # -- tracker protocol ---------------------------------------------------------------------------------
    def finished_cells(self) -> set[str]:
        self.flush()
        self._finished = self._finished_now()
        return set(self._finished)

    def log_cell(self, result: Any) -> Future[str | None]:
        """Queues the cell for the background thread and returns at once; the future holds its run id
        (``None`` for a cell that already has a finished run). An earlier cell's failure to be written is
        raised here, so a broken store stops the sweep early."""
        self._raise_failed()
        if result.spec_hash in self._finished:
            done: Future[str | None] = Future()
            done.set_result(None)
            return done
        if result.status == "finished":
            self._finished.add(result.spec_hash)
        future = self._pool.submit(self._cells.log, result)
        self._pending.append(future)
        return future

    def _raise_failed(self) -> None:
        for future in self._pending:
            if future.done() and future.exception() is not None:
                self.flush()

    def flush(self) -> None:
        """Waits until every queued cell is written; raises the first error of a cell."""
        pending, self._pending = self._pending, []
        errors = [exc for f in pending if (exc := f.exception()) is not None]
        if errors:
            raise errors[0]

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._pool.shutdown(wait=True)

    # -- the parent run -----------------------------------------------------------------------------------
    def log_leaderboard(
        self, rows: Sequence[Mapping[str, Any]], extra_tables: Mapping[str, Any] | None = None
    ) -> None:
        """The leaderboard (Table 1a/1b shape) and any extra tables as MLflow tables on the parent run."""
        self.flush()
        df = pd.DataFrame(list(rows))
        self.client.log_table(self.parent_run_id, data=df, artifact_file="leaderboard.json")
        for name, table in (extra_tables or {}).items():
            t = pd.DataFrame(table)
            if len(t):
                self.client.log_table(self.parent_run_id, data=t, artifact_file=f"{name}.json")

    def log_folder(self, folder: str | Path, artifact_path: str | None = None) -> None:
        """A folder of files (the sweep's report: HTML, Markdown, CSV tables, figures) on the parent run."""
        self.flush()
        self.client.log_artifacts(self.parent_run_id, str(folder), artifact_path=artifact_path)

    def set_description(self, markdown: str) -> None:
        """The parent run's description (MLflow's note), shown on its page in the MLflow UI."""
        self.client.set_tag(self.parent_run_id, "mlflow.note.content", markdown)

    def log_parent_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """Metrics of the parent run at ``step`` (the attempt number: MLflow keeps each attempt's value
        in the metric's history and shows the latest)."""
        self.flush()
        now = int(time.time() * 1000)
        ms = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None and _finite(v)]
        for i in range(0, len(ms), 500):
            self.client.log_batch(self.parent_run_id, metrics=ms[i : i + 500])

    def reopen(self) -> None:
        """Marks a resumed parent RUNNING again: called once the rerun has cells to run, so a rerun that
        fails before any work never turns a FINISHED sweep back into a running or failed one."""
        if not self._reopened:
            self._reopened = True
            if self.previous_status != "RUNNING":
                self.client.update_run(self.parent_run_id, status="RUNNING")

    def log_parent_tags(self, tags: Mapping[str, str]) -> None:
        """Tags on the parent run (e.g. the provider batch ids of a model in batch mode)."""
        for key, value in tags.items():
            self.client.set_tag(self.parent_run_id, key, value[:5000])

    def finish(self, status: str = "FINISHED") -> None:
        """Closes the parent run as FINISHED, FAILED or KILLED (an interrupted sweep). A resumed parent
        that was never reopened keeps its earlier end state, unless it was left RUNNING (a killed driver)."""
        try:
            self.close()
        finally:
            if self._reopened or self.previous_status == "RUNNING":
                self.client.set_terminated(self.parent_run_id, status=status)

    def ui_command(self) -> str:
        """A command that opens this store in MLflow's UI from any shell (absolute store path, this
        environment's ``mlflow``), or a server's address."""
        if not (self.uri.startswith("sqlite:") or self.uri.startswith("file:")):
            return self.uri
        uri = self.uri
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):  # relative to the cwd
            uri = f"sqlite:///{(Path.cwd() / uri[len('sqlite:///') :]).resolve()}"
        # litellm (installed beside mlflow) would otherwise fetch a price table when the UI imports it
        return f"LITELLM_LOCAL_MODEL_COST_MAP=True {tool_command('mlflow')} ui --backend-store-uri {uri}"

    def runs_page(self) -> str:
        """The address of the sweep's runs table in the UI (MLflow 3.x shows its GenAI pages unless the
        address asks for the model-training view), with the experiment's stored view (:data:`VIEW_KEY`: the
        key metrics as columns); local stores: the UI's default address."""
        base = self.uri.rstrip("/") if self.uri.startswith("http") else "http://127.0.0.1:5000"
        return (
            f"{base}/#/experiments/{self.experiment_id}/runs"  # the UI drops the view key on its way to /runs
            f"?workflowType=machine_learning&viewStateShareKey={VIEW_KEY}"
        )


def _provenance_tags() -> dict[str, str]:
    return {
        TAG_GIT: git_revision(),
        "distalign.packages": json.dumps(package_versions(), sort_keys=True),
    }


def _finite(v: Any) -> bool:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return False
    return f == f and f not in (float("inf"), float("-inf"))


__all__ = ["MLflowTracker", "resolve_tracking_uri", "run_name", "RunStatus", "RunTag"]

"""Orchestration overhead of a sweep: the full meister2024 grid with an in-process instant engine.

3 datasets x steering none/persona/few_shot x method logprobs/seq/verbalize (27 cells), one model whose
answers cost nothing, so the time measured is planning, de-duplication, Ray, the response store, parsing,
scoring and tracking. Uses the released data when present (``--data-dir`` or ``$DISTALIGN_DATA_DIR``), the
shipped fixture otherwise. Prints the requests, the wall time, requests per second and the ratio of wall
time to time spent inside the engine, with a no-op tracker and (when MLflow is importable) with MLflow.

Each run starts cold: the dataset cache, the rendered-prompt memo and the parsers' caches are emptied before
it. Once-per-process costs are timed apart and not counted: starting Ray, importing the modules a sweep
imports on first use (scipy.stats, pandas, ...) and creating the MLflow store's tables. The MLflow tracker's
set-up (experiment, parent run, its writer process) is counted, and so is the wait at the end for every
cell to be written; a run checks that all cells reached MLflow as FINISHED runs. The driver's CPU time and
the load average are printed too, since on a shared machine the wall time depends on what else runs.

    python benchmarks/sweep_overhead.py [--data-dir DIR] [--batch-size 512] [--repeat 3] [--no-mlflow]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from distalign.records.config import (
    CellConfig,
    DatasetConfig,
    MethodConfig,
    ModelConfig,
    ServingConfig,
    SteeringConfig,
    SweepSettings,
)
from distalign.records.results import CellResult, SweepOutcome
from distalign.sweep.trackers import NullTracker, Tracker

DATASETS = ("opinionqa", "nyt_books", "global_opinions")
STEERINGS = ("none", "persona", "few_shot")
METHODS = ("logprobs", "seq", "verbalize")
TARGET_RPS = 2000.0


def _default_data_dir() -> str:
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "meister2024"
    if os.environ.get("DISTALIGN_DATA_DIR"):
        return os.environ["DISTALIGN_DATA_DIR"]
    return str(shared) if (shared / "opinions_qa").is_dir() else "fixture"


def meister_grid(data_dir: str) -> list[CellConfig]:
    model = ModelConfig(name="instant", weights="instant", serving=ServingConfig(engine="instant"))
    return [
        CellConfig(
            model=model,
            dataset=DatasetConfig(name=d, data_dir=data_dir),
            steering=SteeringConfig(name=s, protocol="benchmark", steering=s),
            method=MethodConfig(name=m),
        )
        for d in DATASETS
        for s in STEERINGS
        for m in METHODS
    ]


class _TimedTracker:
    """Times what the tracker costs the driver: handing each cell over (between batches) and waiting at the
    end for what it writes in the background."""

    def __init__(self, inner: Tracker, seconds: float = 0.0) -> None:
        self.inner, self.seconds = inner, seconds

    def finished_cells(self) -> set[str]:
        return self.inner.finished_cells()

    def log_cell(self, result: CellResult) -> Any:
        t = time.perf_counter()
        try:
            return self.inner.log_cell(result)
        finally:
            self.seconds += time.perf_counter() - t

    def flush(self) -> None:
        t = time.perf_counter()
        try:
            self.inner.flush()
        finally:
            self.seconds += time.perf_counter() - t


def _reset_caches() -> None:
    from distalign.methods.parsers import _text
    from distalign.sweep.cells import clear_dataset_cache

    clear_dataset_cache()
    _text._option_index.cache_clear()


def _warm_imports() -> float:
    """Import what a sweep imports lazily on first use, so the timed runs measure per-request work."""
    t = time.perf_counter()
    import distalign.metrics.bootstrap  # noqa: F401 - scipy.stats
    import distalign.metrics.extraction  # noqa: F401
    import distalign.scoring.predictions  # noqa: F401
    import distalign.scoring.score  # noqa: F401
    import distalign.sweep.pool  # noqa: F401

    return time.perf_counter() - t


def _report(label: str, out: SweepOutcome, wall: float, cpu: float, track_s: float) -> float:
    t = out.totals
    engine = max(t["engine_time_s"], 1e-9)
    rps = t["requests_sent"] / wall
    print(
        f"{label:<16} cells {int(t['finished'])}/{int(t['cells'])}  requests {int(t['requests_sent'])} "
        f"(of {int(t['requests_before_dedup'])} before de-dup)  wall {wall:.2f} s  "
        f"{rps:,.0f} requests/s  engine {t['engine_time_s']:.3f} s  wall/engine {wall / engine:,.0f}x"
    )
    score = t["parse_score_s"]
    stream = wall - t["validate_s"] - t["plan_s"] - score - track_s
    print(
        f"{'':<16} validate+load {t['validate_s']:.2f} s  plan (render+keys) {t['plan_s']:.2f} s  "
        f"parse+score {score:.2f} s  tracking {track_s:.2f} s  rest: store, Ray, batching, waiting "
        f"(the engine runs alongside) {stream:.2f} s"
    )
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{'':<16} driver CPU {cpu:.2f} s  load average (1/5/15 min) {load}  ({os.cpu_count()} cores)")
    return rps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=_default_data_dir())
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per tracker (the verdict is their median)"
    )
    parser.add_argument("--no-mlflow", action="store_true")
    args = parser.parse_args()

    import ray

    from distalign.sweep.runner import run_sweep

    cells = meister_grid(args.data_dir)
    print(f"data: {args.data_dir}  cells: {len(cells)}  cores: {os.cpu_count()}")
    t0 = time.perf_counter()
    ray.init(
        address="local",  # never join a cluster that happens to run on this machine
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=256 * 2**20,
        logging_level="WARNING",
    )
    print(f"ray start        {time.perf_counter() - t0:.2f} s (once per sweep; not counted below)")
    print(f"imports          {_warm_imports():.2f} s (once per process; not counted below)")
    rates: dict[str, list[float]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            runs = [("no-op tracker", None)]
            uri = f"sqlite:///{tmp}/mlflow.db"
            if not args.no_mlflow:
                try:
                    from distalign.records.config import spec_hash
                    from distalign.tracking.mlflow_tracker import MLflowTracker
                except ImportError as exc:
                    print(f"mlflow tracker   skipped ({exc})")
                else:
                    t = time.perf_counter()
                    MLflowTracker(uri, "overhead", "schema", [], background=False).finish()
                    created = time.perf_counter() - t
                    print(f"mlflow store     {created:.2f} s (creating it; not counted below)")
                    runs.append(("mlflow tracker", "mlflow"))
            for label, kind in runs:
                for rep in range(args.repeat):
                    _reset_caches()
                    name = f"{label.replace(' ', '_')}_{rep}"
                    settings = SweepSettings(
                        store=str(Path(tmp) / name),
                        progress=False,
                        batch_size=args.batch_size,
                    )
                    cpu, start = time.process_time(), time.perf_counter()
                    inner: Tracker = NullTracker()
                    if kind == "mlflow":
                        # the tracker's set-up (experiment, parent run, writer process) is counted
                        inner = MLflowTracker(uri, "overhead", name, [spec_hash(c) for c in cells])
                    tracker = _TimedTracker(inner, time.perf_counter() - start)
                    out = run_sweep(cells, settings, tracker)
                    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
                    if kind == "mlflow":  # everything was written, not merely queued
                        logged = len(inner.finished_cells() & {spec_hash(c) for c in cells})
                        inner.close()
                        if logged != len(cells):
                            raise SystemExit(f"only {logged} of {len(cells)} cells reached MLflow")
                    rps = _report(label, out, wall, cpu, tracker.seconds)
                    rates.setdefault(label, []).append(rps)
    finally:
        ray.shutdown()
    for label, values in rates.items():
        median = statistics.median(values)
        verdict = "meets" if median >= TARGET_RPS else "misses"
        spread = (
            f" (median of {len(values)}: {min(values):,.0f} to {max(values):,.0f})" if len(values) > 1 else ""
        )
        print(
            f"end to end, {label}: {median:,.0f} requests/s{spread}; {verdict} the {TARGET_RPS:,.0f}/s target"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

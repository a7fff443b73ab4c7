"""Orchestration overhead of a sweep: the full meister2024 grid (3 datasets x steering none/persona/few_shot x
method logprobs/seq/verbalize, 27 cells, about 12,300 requests) through plan, Ray, the response store, parse,
score, the sweep folder and tracking. Two figures:

* **requests/s** with the instant engine (answers cost nothing, so the time is all orchestration), with a
  no-op tracker and with MLflow. Target: >= 1,000 requests/s end to end.
* **engine-bound ratio**: with a simulated engine of fixed throughput (the instant engine sleeping 100 ms
  per batch of 64, about 640 requests/s, like a fast GPU), the sweep's wall time over the engine's busy time.
  Target: <= 1.15 (the engine never waits on the driver).

Uses the released data when present (``--data-dir`` or ``$DISTALIGN_DATA_DIR``), else the shipped fixture.
Each run starts cold (the dataset cache is emptied) with a fresh store and sweep folder. Once-per-process
costs are timed apart and not counted: starting Ray, importing the modules a sweep uses, creating the MLflow
store's tables. The tracker's set-up and the wait at the end for every cell to be written are counted; a run
checks that every cell reached MLflow as a FINISHED run. The driver's CPU time and the load average are
printed too: on a shared machine the wall time depends on what else runs.

    python benchmarks/sweep_overhead.py [--data-dir DIR] [--repeat 3] [--no-mlflow] [--no-engine-bound]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import ray

from distalign.records.config import (
    CellConfig,
    DatasetConfig,
    MethodConfig,
    ModelConfig,
    ServingConfig,
    SteeringConfig,
    SweepSettings,
)
from distalign.records.results import SweepOutcome
from distalign.sweep.cells import cell_hash, clear_dataset_cache
from distalign.sweep.runner import run_sweep, sweep_id
from distalign.sweep.trackers import NullTracker, Tracker
from distalign.tracking.mlflow_tracker import MLflowTracker

DATASETS = ("opinionqa", "nyt_books", "global_opinions")
STEERINGS = ("none", "persona", "few_shot")
METHODS = ("logprobs", "seq", "verbalize")
TARGET_RPS = 1000.0
TARGET_RATIO = 1.15
SIMULATED_BATCH = 64
SIMULATED_DELAY_S = 0.1


def _default_data_dir() -> str:
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "meister2024"
    if os.environ.get("DISTALIGN_DATA_DIR"):
        return os.environ["DISTALIGN_DATA_DIR"]
    return str(shared) if (shared / "opinions_qa").is_dir() else "fixture"


def meister_grid(
    data_dir: str, batch_size: int, max_items: int | None = None, delay_s: float = 0.0
) -> list[CellConfig]:
    serving = ServingConfig(engine="instant", batch_size=batch_size, settings={"delay_s": delay_s})
    model = ModelConfig(name="instant", weights="instant", serving=serving)
    return [
        CellConfig(
            model=model,
            dataset=DatasetConfig(name=d, data_dir=data_dir, max_items=max_items),
            steering=SteeringConfig(name=s, protocol="benchmark", steering=s),
            method=MethodConfig(name=m),
        )
        for d in DATASETS
        for s in STEERINGS
        for m in METHODS
    ]


def _warm_imports(cells: list[CellConfig]) -> float:
    """Load what a sweep loads on first use (scipy.stats, pandas' Parquet writer, ...) with a tiny sweep."""
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        settings = SweepSettings(store=f"{tmp}/store", output_dir=f"{tmp}/sweeps", progress=False)
        small = [c for c in cells if c.dataset.name == "opinionqa"][:3]
        run_sweep(small, settings, NullTracker())
    return time.perf_counter() - t


def _run(cells: list[CellConfig], tmp: str, name: str, uri: str | None) -> tuple[SweepOutcome, float, float]:
    clear_dataset_cache()
    settings = SweepSettings(
        name=name, store=f"{tmp}/{name}/store", output_dir=f"{tmp}/{name}/sweeps", progress=False
    )
    cpu, start = time.process_time(), time.perf_counter()
    tracker: Tracker = NullTracker()
    mlflow = None
    if uri is not None:  # set-up counted: the experiment, the parent run, the writer thread
        hashes = [cell_hash(c) for c in cells]
        mlflow = tracker = MLflowTracker(uri, "overhead", name, sweep_id(settings, hashes))
    out = run_sweep(cells, settings, tracker, keep_items=False)
    if mlflow is not None:
        mlflow.close()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    if mlflow is not None:  # everything was written, not merely queued
        logged = len(mlflow.finished_cells())
        if logged != len(cells):
            raise SystemExit(f"only {logged} of {len(cells)} cells reached MLflow")
    return out, wall, cpu


def _report(label: str, out: SweepOutcome, wall: float, cpu: float) -> None:
    t = out.totals
    rps = t["requests_sent"] / wall
    print(
        f"{label:<22} cells {int(t['finished'])}/{int(t['cells'])}  requests {int(t['requests_sent'])} "
        f"(of {int(t['requests_before_dedup'])} before de-dup)  wall {wall:.2f} s  {rps:,.0f} requests/s  "
        f"engine busy {t['engine_time_s']:.2f} s  wall/engine {wall / max(t['engine_time_s'], 1e-9):.3f}"
    )
    print(
        f"{'':<22} validate+load {t['validate_s']:.2f} s  plan (render+keys) {t['plan_s']:.2f} s  "
        f"parse+score+write {t['parse_score_s']:.2f} s  driver CPU {cpu:.2f} s  "
        f"load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} cores)"
    )


def _verdict(label: str, values: list[float], target: float, unit: str, higher: bool) -> None:
    median = statistics.median(values)
    ok = median >= target if higher else median <= target
    spread = (
        f" (median of {len(values)}: {min(values):,.3f} to {max(values):,.3f})" if len(values) > 1 else ""
    )
    print(f"{label}: {median:,.3f}{unit}{spread}; {'meets' if ok else 'misses'} the target {target:,}{unit}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=_default_data_dir())
    parser.add_argument("--max-items", type=int, default=None, help="items per dataset (quick checks)")
    parser.add_argument("--batch-size", type=int, default=512, help="batch size of the instant engine")
    parser.add_argument("--repeat", type=int, default=3, help="runs per setting (the verdict is the median)")
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--no-engine-bound", action="store_true")
    args = parser.parse_args()

    cells = meister_grid(args.data_dir, args.batch_size, args.max_items)
    print(f"data: {args.data_dir}  cells: {len(cells)}  cores: {os.cpu_count()}")
    t0 = time.perf_counter()
    ray.init(
        address="local",  # never join a cluster that happens to run on this machine
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=256 * 2**20,
        logging_level="WARNING",
    )
    print(f"ray start              {time.perf_counter() - t0:.2f} s (once per process; not counted)")
    print(f"imports                {_warm_imports(cells):.2f} s (once per process; not counted)")
    rates: dict[str, list[float]] = {}
    ratios: list[float] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            uri = f"sqlite:///{tmp}/mlflow.db"
            trackers: list[tuple[str, str | None]] = [("no-op tracker", None)]
            if not args.no_mlflow:
                t = time.perf_counter()
                MLflowTracker(uri, "overhead", "schema", "schema").finish()
                print(f"mlflow store           {time.perf_counter() - t:.2f} s (creating it; not counted)")
                trackers.append(("mlflow tracker", uri))
            for rep in range(args.repeat):
                for label, tracker_uri in trackers:
                    out, wall, cpu = _run(cells, tmp, f"{label.split()[0]}-{rep}", tracker_uri)
                    _report(label, out, wall, cpu)
                    rates.setdefault(label, []).append(out.totals["requests_sent"] / wall)
                if not args.no_engine_bound:
                    bound = meister_grid(args.data_dir, SIMULATED_BATCH, args.max_items, SIMULATED_DELAY_S)
                    out, wall, cpu = _run(bound, tmp, f"bound-{rep}", trackers[-1][1])
                    _report(f"engine-bound ({trackers[-1][0].split()[0]})", out, wall, cpu)
                    ratios.append(wall / max(out.totals["engine_time_s"], 1e-9))
    finally:
        ray.shutdown()
    for label, values in rates.items():
        _verdict(f"end to end, {label}, requests/s", values, TARGET_RPS, "", higher=True)
    if ratios:
        engine_rps = SIMULATED_BATCH / SIMULATED_DELAY_S
        label = f"engine-bound ratio (wall / engine busy; engine {engine_rps:.0f} requests/s)"
        _verdict(label, ratios, TARGET_RATIO, "", higher=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

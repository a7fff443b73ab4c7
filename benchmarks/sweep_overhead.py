"""Orchestration overhead of a sweep: the full meister2024 grid with an in-process instant engine.

3 datasets x steering none/persona/few_shot x method logprobs/seq/verbalize (27 cells), one model whose
answers cost nothing, so the time measured is planning, de-duplication, Ray, the response store, parsing,
scoring and tracking. Uses the released data when present (``--data-dir`` or ``$DISTALIGN_DATA_DIR``), the
shipped fixture otherwise. Prints the requests, the wall time, requests per second and the ratio of wall
time to time spent inside the engine, with a no-op tracker and (when MLflow is importable) with MLflow.

    python benchmarks/sweep_overhead.py [--data-dir DIR] [--batch-size 512] [--no-mlflow]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from distalign.sweep.config import (
    CellConfig,
    DatasetConfig,
    MethodConfig,
    ModelConfig,
    ServingConfig,
    SteeringConfig,
    SweepSettings,
)
from distalign.sweep.results import NullTracker, SweepOutcome

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


def _report(label: str, out: SweepOutcome, wall: float) -> None:
    t = out.totals
    engine = max(t["engine_time_s"], 1e-9)
    print(
        f"{label:<16} cells {int(t['finished'])}/{int(t['cells'])}  requests {int(t['requests_sent'])} "
        f"(of {int(t['requests_before_dedup'])} before de-dup)  wall {wall:.2f} s  "
        f"{t['requests_sent'] / wall:,.0f} requests/s  engine {t['engine_time_s']:.3f} s  "
        f"wall/engine {wall / engine:,.0f}x"
    )
    stream = wall - t["validate_s"] - t["plan_s"] - t["parse_score_s"]
    print(
        f"{'':<16} validate+load {t['validate_s']:.2f} s  plan (render+keys) {t['plan_s']:.2f} s  "
        f"parse+score+track {t['parse_score_s']:.2f} s  streaming (Ray, store, batching; the engine runs "
        f"alongside) {stream:.2f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=_default_data_dir())
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--no-mlflow", action="store_true")
    args = parser.parse_args()

    import ray

    from distalign.sweep.cells import clear_dataset_cache
    from distalign.sweep.runner import run_sweep

    cells = meister_grid(args.data_dir)
    print(f"data: {args.data_dir}  cells: {len(cells)}  cores: {os.cpu_count()}")
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=256 * 2**20, logging_level="WARNING")
    print(f"ray start        {time.perf_counter() - t0:.2f} s (once per sweep; not counted below)")
    best = 0.0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            runs = [("no-op tracker", None)]
            if not args.no_mlflow:
                runs.append(("mlflow tracker", "mlflow"))
            for label, kind in runs:
                clear_dataset_cache()
                settings = SweepSettings(
                    store=str(Path(tmp) / label.replace(" ", "_")),
                    progress=False,
                    batch_size=args.batch_size,
                )
                tracker = NullTracker()
                if kind == "mlflow":
                    try:
                        from distalign.sweep.config import spec_hash
                        from distalign.tracking.mlflow_tracker import MLflowTracker
                    except ImportError as exc:
                        print(f"{label:<16} skipped ({exc})")
                        continue
                    tracker = MLflowTracker(
                        f"sqlite:///{tmp}/mlflow.db", "overhead", "overhead", [spec_hash(c) for c in cells]
                    )
                start = time.perf_counter()
                out = run_sweep(cells, settings, tracker)
                wall = time.perf_counter() - start
                _report(label, out, wall)
                best = max(best, out.totals["requests_sent"] / wall)
    finally:
        ray.shutdown()
    verdict = "meets" if best >= TARGET_RPS else "misses"
    print(
        f"end to end: {best:,.0f} requests/s with the no-op tracker; {verdict} the {TARGET_RPS:,.0f}/s target"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

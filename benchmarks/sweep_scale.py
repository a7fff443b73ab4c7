"""Cost of a sweep as the grid grows: the benchmark grid on a survey 1x, 10x and 100x the release.

The release's three datasets (435 items, 1,839 group distributions) are written as ONE survey in the custom
format (``distalign/survey/CUSTOM_FORMAT.md``, with its few-shot ``similar`` lists), copied k times with
distinct ids and wording; the benchmark grid on it (steering none/persona/few_shot x method
logprobs/seq/verbalize = 9 cells) then asks exactly as many requests as the meister2024 grid, times k
(12,339 at 1x, about 1.2 million at 100x). Each size runs in a fresh driver process with the instant engine,
so the figures are the driver's own: wall time and peak resident memory (``ru_maxrss``, imports included).
Targets: time grows linearly, peak memory <= 4 GB at 100x. ``--resume`` then kills the largest run part-way
(SIGKILL, once a few cells are on disk) and reruns it: the rerun must skip the written cells, send only what
is missing, and finish.

    python benchmarks/sweep_scale.py [--sizes 1,10,100] [--resume] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from distalign.records.config import (
    CellConfig,
    DatasetConfig,
    MethodConfig,
    ModelConfig,
    ServingConfig,
    SteeringConfig,
    SweepSettings,
)
from distalign.survey.registry import load_survey

DATASETS = ("opinionqa", "nyt_books", "global_opinions")
STEERINGS = ("none", "persona", "few_shot")
METHODS = ("logprobs", "seq", "verbalize")
TARGET_PEAK_GB = 4.0


def _default_data_dir() -> str:
    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "meister2024"
    if os.environ.get("DISTALIGN_DATA_DIR"):
        return os.environ["DISTALIGN_DATA_DIR"]
    return str(shared) if (shared / "opinions_qa").is_dir() else "fixture"


def write_survey(data_dir: str, copies: int, path: Path) -> int:
    """The release's datasets as one custom survey, ``copies`` times over; returns the number of rows."""
    rows = []
    for name in DATASETS:
        survey = load_survey(name, data_dir)
        items = list(survey.items)
        for copy in range(copies):

            def iid(item_id: str, copy: int = copy, name: str = name) -> str:
                return f"{name}:{item_id}#{copy}"

            slots: dict[str, int] = {}
            for d in survey.distributions:
                item = survey.items[d.item_id]
                # GlobalOpinionQA's groups are the 1st, 2nd, 3rd country of each question: as slots, every
                # question has the same groups, so few-shot examples exist for each
                slot = slots[d.item_id] = slots.get(d.item_id, -1) + 1
                group = f"country slot {slot}" if name == "global_opinions" else f"{name}:{d.group}"
                # few-shot candidates within the file (the release also lists questions outside it)
                candidates = [e.id for e in survey.similar.get((d.item_id, d.group), ())]
                inside = [c for c in candidates if c in survey.items and c != d.item_id]
                inside = inside or [c for c in items if c != d.item_id][:10]
                similar = [iid(c) for c in inside]
                rows.append(
                    {
                        "item_id": iid(item.id),
                        "question": item.question if copy == 0 else f"{item.question} (version {copy})",
                        "options": list(item.options),
                        "ordinal": list(item.ordinal),
                        "attribute": d.attribute,
                        "group": group,
                        "probs": [float(x) for x in d.probs],
                        "similar": similar,
                    }
                )
    frame = pd.DataFrame(rows)
    frame["dataset"] = "scaled"
    frame.to_parquet(path, index=False)
    return len(frame)


def cells(path: Path) -> list[CellConfig]:
    model = ModelConfig(
        name="instant", weights="instant", serving=ServingConfig(engine="instant", batch_size=512)
    )
    return [
        CellConfig(
            model=model,
            dataset=DatasetConfig(name="custom", path=str(path)),
            steering=SteeringConfig(name=s, protocol="benchmark", steering=s),
            method=MethodConfig(name=m),
        )
        for s in STEERINGS
        for m in METHODS
    ]


def child(path: Path, work: Path) -> None:
    """One sweep in this process; prints its figures as one JSON line."""
    import ray

    from distalign.sweep.runner import run_sweep
    from distalign.sweep.trackers import NullTracker

    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    t0 = time.perf_counter()  # Ray's start is the same at every size: not counted
    settings = SweepSettings(
        name="scale", store=str(work / "store"), output_dir=str(work / "sweeps"), progress=False, num_cpus=2
    )
    out = run_sweep(cells(path), settings, NullTracker(), keep_items=False)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({"wall_s": wall, "peak_bytes": peak, "folder": out.folder, **out.totals}))


def _run(path: Path, work: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", str(path), str(work)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"sweep failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _kill_after_cells(path: Path, work: Path, n_cells: int) -> int:
    """Starts the sweep, SIGKILLs it once ``n_cells`` cells are on disk; returns how many were."""
    cmd = [sys.executable, __file__, "--child", str(path), str(work)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    done = 0
    try:
        while proc.poll() is None:
            done = len(list((work / "sweeps").glob("*/cells/*/cell.json")))
            if done >= n_cells:
                break
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return len(list((work / "sweeps").glob("*/cells/*/cell.json")))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,10,100", help="comma-separated multiples of the release")
    parser.add_argument("--data-dir", default=_default_data_dir())
    parser.add_argument("--resume", action="store_true", help="kill the largest run part-way and resume it")
    parser.add_argument("--child", nargs=2, metavar=("SURVEY", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]))
        return 0
    sizes = [int(x) for x in args.sizes.split(",")]
    print(f"data: {args.data_dir}  cores: {os.cpu_count()}")
    base: dict | None = None
    with tempfile.TemporaryDirectory() as tmp:
        for k in sizes:
            path = Path(tmp) / f"survey_{k}x.parquet"
            t = time.perf_counter()
            n_rows = write_survey(args.data_dir, k, path)
            made = time.perf_counter() - t
            res = _run(path, Path(tmp) / f"run_{k}x")
            base = base or {**res, "k": k}
            per_k = res["wall_s"] / base["wall_s"] * base["k"] / k
            sent, peak = int(res["requests_sent"]), res["peak_bytes"] / 2**30
            print(
                f"{k:>4}x  rows {n_rows:>9,}  requests {sent:>10,}  wall {res['wall_s']:8.1f} s  "
                f"({sent / res['wall_s']:,.0f} requests/s; time per 1x vs the {base['k']}x run {per_k:.2f})  "
                f"peak memory {peak:.2f} GB (target <= {TARGET_PEAK_GB:.0f})  (survey made in {made:.1f} s)"
            )
        if args.resume:
            k = max(sizes)
            path = Path(tmp) / f"survey_{k}x.parquet"
            work = Path(tmp) / f"resume_{k}x"
            written = _kill_after_cells(path, work, 3)
            res = _run(path, work)
            ok = res["skipped"] == written and res["finished"] + res["skipped"] == len(cells(path))
            print(
                f"resume {k}x: killed with {written} of 9 cells written; the rerun skipped "
                f"{int(res['skipped'])}, finished {int(res['finished'])}, "
                f"sent {int(res['requests_sent']):,} of "
                f"{int(res['requests']):,} requests ({int(res['cache_hits']):,} from the store) in "
                f"{res['wall_s']:.1f} s, peak {res['peak_bytes'] / 2**30:.2f} GB: {'ok' if ok else 'FAILED'}"
            )
            if not ok:
                return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

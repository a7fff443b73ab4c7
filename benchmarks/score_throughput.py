"""Throughput of scoring: 100,000 predictions over the released items, scored and aggregated with
1000-resample bootstrap intervals, against a naive per-row Python loop measured in the same run.

The naive loop (scipy per row + a pure-Python bootstrap) runs on a subsample and is extrapolated
linearly to the full size (both its parts are linear in the number of rows); the output says so.
Each timed part starts after a full garbage collection, so that neither pays for the objects made
while generating the data. Wall-clock times decide the ratio; CPU times are printed beside them
because on a shared machine they vary less.

    python benchmarks/score_throughput.py [--data-dir DIR] [--n 100000] [--naive-n 2000]
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.spatial.distance import cityblock
from scipy.stats import wasserstein_distance

from distalign.errors import InputError
from distalign.scoring.score import score_predictions
from distalign.scoring.scores import leaderboard
from distalign.survey import data_dir, load_survey
from distalign.survey.model import DATASETS, Survey

MODELS = ("model_a", "model_b")
METHODS = ("verbalize", "logprobs")
STEERING = ("persona", "few_shot")


def load(data: str | None) -> tuple[dict[str, Survey], str]:
    """The release if present, else the shipped sample."""
    try:
        return {n: load_survey(n, data) for n in DATASETS}, str(data_dir(data))
    except InputError:
        return {n: load_survey(n, "fixture") for n in DATASETS}, "the shipped fixture (release not found)"


def synthetic(surveys: Mapping[str, Survey], n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` predictions cycling over every (item, group) x model x method x steering."""
    rng = np.random.default_rng(seed)
    cells = [(ds, d) for ds, s in surveys.items() for d in s.distributions]
    rows = []
    for i in range(n):
        ds, d = cells[i % len(cells)]
        j = i // len(cells)
        noisy = 0.5 * d.probs + 0.5 * rng.dirichlet(np.ones(d.probs.size))
        rows.append(
            {
                "model": MODELS[j % 2],
                "method": METHODS[(j // 2) % 2],
                "steering": STEERING[(j // 4) % 2],
                "dataset": ds,
                "item_id": d.item_id,
                "attribute": d.attribute,
                "group": d.group,
                "probs": noisy.tolist(),
            }  # fmt: skip
        )
    return pd.DataFrame(rows)


def naive(
    df: pd.DataFrame, surveys: Mapping[str, Survey], n_resamples: int, seed: int = 0
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Per row: look up the human distribution, scipy TV and Wasserstein; then a pure-Python bootstrap of
    the same pools the leaderboard reports (steering "all" and each mode, per dataset). Returns the
    (scoring, bootstrap) wall-clock and CPU seconds."""
    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    human = {(ds, d.item_id, d.group): d for ds, s in surveys.items() for d in s.distributions}
    pools: dict[tuple, list[float]] = {}
    for rec in df.to_dict("records"):
        d = human[(rec["dataset"], rec["item_id"], rec["group"])]
        item = surveys[rec["dataset"]].items[d.item_id]
        p = np.asarray(rec["probs"], dtype=float)
        tv = cityblock(p / p.sum(), d.probs) / 2
        keep = [i for i, o in enumerate(item.ordinal) if o is not None]
        pos = [item.ordinal[i] for i in keep]
        if sum(p[keep]) > 0 and sum(d.probs[keep]) > 0 and max(pos) > min(pos):
            wasserstein_distance(pos, pos, p[keep], d.probs[keep])
        for steering in (rec["steering"], "all"):
            pools.setdefault((rec["model"], rec["method"], steering, rec["dataset"]), []).append(tv)
    t1, c1 = time.perf_counter(), time.process_time()
    rnd = random.Random(seed)
    for values in pools.values():
        means = sorted(sum(rnd.choices(values, k=len(values))) / len(values) for _ in range(n_resamples))
        _ = (means[int(0.025 * n_resamples)], means[int(0.975 * n_resamples) - 1])
    return (t1 - t0, time.perf_counter() - t1), (c1 - c0, time.process_time() - c1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--naive-n", type=int, default=2_000)
    ap.add_argument("--n-resamples", type=int, default=1000)
    args = ap.parse_args()

    surveys, where = load(args.data_dir)
    df = synthetic(surveys, args.n)
    print(f"data: {where}; {len(df):,} predictions, {args.n_resamples} bootstrap resamples")

    gc.collect()
    t0, c0 = time.perf_counter(), time.process_time()
    scored = score_predictions(df, surveys)
    t1 = time.perf_counter()
    rows = leaderboard(scored, n_resamples=args.n_resamples)
    t2, c2 = time.perf_counter(), time.process_time()
    fast = t2 - t0
    print(
        f"vectorised: score {t1 - t0:.2f} s + leaderboard {t2 - t1:.2f} s = {fast:.2f} s ({len(rows)} rows)"
    )

    sub = df.sample(n=min(args.naive_n, len(df)), random_state=0)
    scale = len(df) / len(sub)
    wall, cpu = naive(sub, surveys, args.n_resamples)
    naive_score, naive_boot = (t * scale for t in wall)
    slow = naive_score + naive_boot
    print(
        f"naive per-row loop, measured on a {len(sub):,}-row subsample and extrapolated linearly to "
        f"{len(df):,} rows: score {naive_score:.1f} s + bootstrap {naive_boot:.1f} s = {slow:.1f} s"
    )
    slow_cpu = sum(cpu) * scale
    print(f"cpu time: vectorised {c2 - c0:.2f} s, naive {slow_cpu:.1f} s ({slow_cpu / (c2 - c0):.0f}x)")
    print(
        f"speed-up: scoring {naive_score / (t1 - t0):.0f}x, "
        f"bootstrap+aggregation {naive_boot / (t2 - t1):.0f}x, "
        f"overall {slow / fast:.0f}x (target >= 50x)"
    )


if __name__ == "__main__":
    main()

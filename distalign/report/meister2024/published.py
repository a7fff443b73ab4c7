"""The published numbers the reproduction is compared with: the paper's tables (a fixture shipped with the
package, ``published.json``) and, per dataset and steering mode, the release's own leaderboard CSV
(read from the release, which the project never copies)."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from distalign.errors import InputError
from distalign.report.meister2024.release import DATASET_DIRS, steering_of

PUBLISHED = Path(__file__).with_name("published.json")
LEADERBOARD_ALL = "results/leaderboard_distrib_alignment_all.csv"
#: the release CSV's method tags -> the project's method names
METHOD_TAGS: dict[str, str] = {
    "V": "verbalize",
    "Seq": "seq",
    "Log-p": "logprobs",
    "TS-Log-p": "logprobs+temperature",
}
#: the release CSV's simulated rows -> the project's baselines (LB2, a one-hot on the least sampled option,
#: has no counterpart)
BASELINE_TAGS: dict[str, str] = {"uniform": "uniform", "LB1": "majority", "ground_truth": "discretization_30"}
BOTH = "both"  # the release's OpinionQA + NYT aggregate (mean of the two dataset means)
_NAME = re.compile(r"^(?P<model>.+?) \((?P<tag>[^)]+)\)$")


@cache
def published() -> dict[str, Any]:
    """The fixture: ``table1a``, ``baselines``, ``table1b``, ``table2``, ``table3`` and ``notes``."""
    return json.loads(PUBLISHED.read_text(encoding="utf-8"))


def published_frame(table: str) -> pd.DataFrame:
    """One table of the fixture as a frame (``mean``, ``pm`` = half the 95% interval, ``source``)."""
    return pd.DataFrame(published()[table])


def release_leaderboard(root: Path) -> pd.DataFrame:
    """The release's per-dataset leaderboard: kind, model, method, steering, dataset, mean, pm.

    ``steering`` is ``none``/``persona``/``few_shot`` for one task, ``all`` for the pooled persona +
    few-shot rows; ``dataset`` uses the project's names, with ``both`` for OpinionQA + NYT."""
    path = root / LEADERBOARD_ALL
    if not path.is_file():
        raise InputError("the release's leaderboard CSV is missing", file=path)
    raw = pd.read_csv(path)
    need = {"Model Name", "Dataset", "Task Type", "Alignment Mean", "Alignment Error"}
    if not need <= set(raw.columns):
        raise InputError(f"expected columns {sorted(need)}", file=path)
    rows = []
    for r in raw.itertuples(index=False):
        name, task, dataset = str(r[0]), str(r[2]), str(r[1])
        dataset = DATASET_DIRS.get(dataset, dataset)
        m = _NAME.match(name)
        if m and m["tag"] in METHOD_TAGS:
            kind, model, method = "model", m["model"], METHOD_TAGS[m["tag"]]
            steering = "all" if task == "task1_task3" else steering_of(task)
        elif name == "human":
            kind, model, method, steering = "human", "human", None, "all"
        elif task in BASELINE_TAGS:
            kind, model, method, steering = "baseline", BASELINE_TAGS[task], None, None
        else:
            continue
        rows.append((kind, model, method, steering, dataset, float(r[3]), float(r[4])))
    return pd.DataFrame(rows, columns=["kind", "model", "method", "steering", "dataset", "mean", "pm"])


__all__ = ["BOTH", "published", "published_frame", "release_leaderboard"]

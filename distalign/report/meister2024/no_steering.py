"""Why the release's OpinionQA no-steering TVs (``task0``) are far above the project's: checked on the
release's own per-question TVs (``results/eval_disagreement_bootstrapping.csv``, column ``all_tvs``).

The targets stored beside every answer letter the options in alphabetical order of their text (the order
of the group's count table), and the model's answers read the same way: in the task0 file of
GAP21Q33_g_W82 GPT-4 gives B ("Refused") 3%. The release's task0 evaluation instead lettered the
targets in ``MC_options`` order (A = "Top priority"); re-lettering them that way reproduces its
per-question TVs.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path
from string import ascii_uppercase
from typing import Any

import numpy as np
import pandas as pd

from distalign.errors import InputError
from distalign.prompts.meister import FORMAT_FOLDERS

EVAL = "results/eval_disagreement_bootstrapping.csv"
WAVE = "Pew_American_Trends_Panel_disagreement_100"
COUNTS = f"opinions_qa/data/human_resp/{WAVE}/POLPARTY_data.json"


def _literal(x: Any) -> Any:
    return ast.literal_eval(x) if isinstance(x, str) else x


def _tv(p: dict[str, float], q: dict[str, float]) -> float:
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in set(p) | set(q))


@dataclass(frozen=True)
class Check:
    """One model x method x party: how many of the release's per-question TVs each reading reproduces."""

    n: int
    release_mean: float
    stored_mean: float  # the targets as stored (alphabetical letters): the project's reading
    mc_order_mean: float  # the targets re-lettered in MC_options order
    stored_matches: int
    mc_order_matches: int


def check(root: Path, model: str = "gpt-4", method: str = "verbalize", party: str = "Democrat") -> Check:
    """Recomputes the release's task0 OpinionQA TVs of one model x method x party both ways."""
    path = root / EVAL
    if not path.is_file():
        raise InputError("the release's per-question TVs are missing", file=path)
    ev, output = pd.read_csv(path), FORMAT_FOLDERS[method]
    row = ev[
        (ev["Task Type"] == "task0")
        & (ev["Model"] == model)
        & (ev["Dataset"] == "opinionqa")
        & (ev["Demographic/Avg"] == party)
        & (ev["Output Type"] == output)
    ]
    if row.empty:
        raise InputError(f"no task0 row for {model} {method} {party}", file=path)
    release = json.loads(row.iloc[0]["all_tvs"])
    counts = json.loads((root / COUNTS).read_text(encoding="utf-8"))
    answers = root / "results" / "opinionqa" / output / model / "task0" / WAVE / "NONE" / "Democrat.json"
    data = json.loads(answers.read_text(encoding="utf-8"))
    stored, mc = [], []
    for question, answer in data.items():
        pred = _literal(answer["avg_actual_results"])
        stored.append(_tv(pred, _literal(answer[f"expected_results_POLPARTY_{party}"])))
        table, options = _literal(counts[question][party]), _literal(counts[question]["MC_options"])
        total = sum(table.values())
        mc.append(_tv(pred, {ascii_uppercase[i]: table.get(o, 0.0) / total for i, o in enumerate(options)}))
    n = min(len(release), len(stored))
    rel = np.asarray(release[:n], dtype=float)
    return Check(
        n,
        float(rel.mean()),
        float(np.mean(stored)),
        float(np.mean(mc)),
        int(np.sum(np.isclose(rel, stored[:n], atol=1e-6))),
        int(np.sum(np.isclose(rel, mc[:n], atol=1e-6))),
    )


__all__ = ["Check", "check"]

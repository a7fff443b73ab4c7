"""Report tests share the hand-made surveys of the scoring tests, and build items tables the way a sweep
writes them (``records.results.ITEM_COLUMNS``), from seeded synthetic human and model distributions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from distalign.metrics import total_variation, wasserstein_alignment
from tests.scoring.conftest import surveys  # noqa: F401

GROUPS: tuple[tuple[str, str], ...] = (
    ("POLPARTY", "Democrat"),
    ("POLPARTY", "Republican"),
    ("SEX", "Male"),
    ("SEX", "Female"),
)


def make_items(
    models: Sequence[str] = ("gpt-4", "llama3-70b"),
    methods: Sequence[str] = ("verbalize", "seq"),
    steerings: Sequence[str] = ("persona", "few_shot"),
    datasets: Sequence[str] = ("opinionqa", "nyt_books", "global_opinions"),
    n_items: int = 6,
    seed: int = 0,
    bias: Sequence[float] | None = None,
) -> pd.DataFrame:
    """One row per model x method x steering x dataset x item x group; the model's prediction is the human
    distribution mixed with a skewed one (more skew for later models and methods), so TVs differ. With
    ``bias``, the skew is that fixed distribution: a systematic error a calibrator can learn."""
    rng = np.random.default_rng(seed)
    human = {
        (d, i, g): rng.dirichlet(np.ones(4))
        for d in datasets
        for i in range(n_items)
        for g in range(len(GROUPS))
    }
    rows = []
    for mi, model in enumerate(models):
        for ki, method in enumerate(methods):
            for steering in steerings:
                for (d, i, g), h in human.items():
                    skew = rng.dirichlet(np.full(4, 0.3)) if bias is None else np.asarray(bias)
                    w = min(0.15 + 0.15 * mi + 0.1 * ki, 0.9)
                    p = (1 - w) * h + w * skew
                    attr, group = GROUPS[g]
                    rows.append(
                        {
                            "dataset": d,
                            "item_id": f"Q{i}",
                            "attribute": attr,
                            "group": group,
                            "model": model,
                            "method": method,
                            "steering": steering,
                            "prompt_hash": f"{model}/{method}/{steering}/{d}/{i}/{g}",
                            "status": "ok",
                            "pred_probs": p.tolist(),
                            "human_probs": h.tolist(),
                            "ordinal": [1.0, 2.0, 3.0, 4.0],
                        }
                    )
    items = pd.DataFrame(rows)
    pred = np.array(items["pred_probs"].tolist())
    hum = np.array(items["human_probs"].tolist())
    items["tv"] = total_variation(pred, hum)
    items["alignment"] = wasserstein_alignment(pred, hum, np.tile([1.0, 2.0, 3.0, 4.0], (len(items), 1)))
    return items

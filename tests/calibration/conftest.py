"""Items tables for calibration tests: synthetic ones (always available) and the released human
distributions with a known distortion (skipped when the release is absent)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

GROUPS: tuple[tuple[str, str], ...] = (
    ("POLPARTY", "Democrat"),
    ("POLPARTY", "Republican"),
    ("SEX", "Female"),
)


def power(human: np.ndarray, temperature: float, rng: np.random.Generator, noise: float = 0.0) -> np.ndarray:
    """``softmax(temperature * (log h + noise))``: temperature scaling with tau = temperature gives back the
    (noisy) human distribution, so the true tau is known whatever the noise."""
    logp = temperature * (np.log(np.maximum(human, 1e-4)) + rng.normal(0.0, noise, human.shape))
    e = np.exp(logp - logp.max())
    return e / e.sum()


def synthetic_items(
    n_items: int = 60,
    n_options: int = 4,
    distort: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
    seed: int = 0,
    dataset: str = "synth",
    groups: tuple[tuple[str, str], ...] = GROUPS,
) -> pd.DataFrame:
    """One row per item x group; humans drawn from a Dirichlet, predictions a distortion of them."""
    rng = np.random.default_rng(seed)
    distort = distort or (lambda h, r: power(h, 2.0, r, 0.05))
    rows = []
    for i in range(n_items):
        for attribute, group in groups:
            human = rng.dirichlet(np.ones(n_options))
            rows.append(
                {
                    "dataset": dataset,
                    "item_id": f"q{i}",
                    "attribute": attribute,
                    "group": group,
                    "model": "m",
                    "method": "logprobs",
                    "steering": "persona",
                    "status": "ok",
                    "human_probs": human.tolist(),
                    "pred_probs": distort(human, rng).tolist(),
                    "ordinal": [float(k + 1) for k in range(n_options)],
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def released_humans(release_dir: Path) -> pd.DataFrame:
    """Every released (item, group) human distribution of the three benchmark datasets (1,839 pairs)."""
    from distalign.survey import load_survey

    rows = []
    for name in ("opinionqa", "nyt_books", "global_opinions"):
        survey = load_survey(name, data_dir=release_dir)
        for d in survey.distributions:
            rows.append(
                {
                    "dataset": name,
                    "item_id": d.item_id,
                    "attribute": d.attribute,
                    "group": d.group,
                    "model": "m",
                    "method": "logprobs",
                    "steering": "persona",
                    "status": "ok",
                    "human_probs": [float(x) for x in d.probs],
                    "ordinal": list(survey.items[d.item_id].ordinal),
                }
            )
    return pd.DataFrame(rows)

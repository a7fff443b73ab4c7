"""The random training sets of the minimal-supervision study (Kambhatla et al. 2025, §6.1) and of its
few-shot prompts (§6.2, Table 16), drawn by ONE function so that they are the same sets.

The paper fits a calibrator on ``n`` whole human distributions drawn from the training split, 10 random
draws per ``n``; its few-shot prompt shows "the same examples given to the regression model in its
5-example setting", averaged over 3 of those draws. Both therefore come from :func:`training_sets`:

* the pool is the sorted tuple of the training split's distribution keys ``(dataset, item_id, attribute,
  group)``, the split made by question exactly as :func:`calibrate_items` makes it (same seed, same
  fractions), and it does not depend on which model answers parsed, so a sweep can choose its few-shot
  examples while planning, before any model has answered;
* draw ``r`` of size ``n`` is ``default_rng([seed, n, r]).choice(len(pool), n, replace=False)``: it does
  not depend on how many draws are requested, so the first 3 draws at ``n = 5`` are the first 3 of the
  learning curve's 10.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from distalign.errors import InputError
from distalign.survey.model import GroupDistribution, Survey

#: train / dev / test fractions, by question (the paper's 80/10/10)
SPLIT: tuple[float, float, float] = (0.8, 0.1, 0.1)
#: (dataset, item_id, attribute, group): one human distribution
DistributionKey = tuple[str, str, str, str]
#: random draws per training size (the paper's 10)
REPEATS = 10
#: the few-shot prompt's examples and the number of draws it is averaged over (the paper's 5 and 3)
FEW_SHOT_EXAMPLES = 5
FEW_SHOT_DRAWS = 3


def split_questions(questions: np.ndarray, seed: int = 0, fractions: Sequence[float] = SPLIT) -> np.ndarray:
    """``train`` / ``dev`` / ``test`` per row, by a seeded permutation of the unique questions.

    Dev and test each get ``round(fraction * n)`` questions, at least one unless the fraction is 0; the
    rest is training.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not np.isclose(sum(fractions), 1.0):
        raise InputError(
            f"split fractions must be 3 non-negative numbers summing to 1, got {fractions}", where="split"
        )
    uniq = np.array(sorted({str(q) for q in questions}), dtype=object)
    if uniq.size < 3:
        raise InputError(
            f"an 80/10/10 split by question needs at least 3 questions, got {uniq.size}", where="split"
        )
    order = np.random.default_rng(seed).permutation(uniq)
    n_dev, n_test = (0 if f == 0 else max(1, round(f * uniq.size)) for f in fractions[1:])
    label = {q: "test" for q in order[:n_test]}
    label |= {q: "dev" for q in order[n_test : n_test + n_dev]}
    return np.array([label.get(str(q), "train") for q in questions], dtype=object)


def distribution_key(dataset: object, item_id: object, attribute: object, group: object) -> DistributionKey:
    return (str(dataset), str(item_id), str(attribute), str(group))


def item_keys(items: pd.DataFrame) -> list[DistributionKey]:
    """The distribution key of each row of an items table (``attribute`` may be absent: ``"None"``)."""
    attribute = items["attribute"] if "attribute" in items.columns else [None] * len(items)
    return [
        distribution_key(d, i, a, g)
        for d, i, a, g in zip(items["dataset"], items["item_id"], attribute, items["group"], strict=True)
    ]


def training_pool(
    keys: Iterable[DistributionKey], seed: int = 0, fractions: Sequence[float] = SPLIT
) -> tuple[DistributionKey, ...]:
    """The distinct keys whose question falls in the train split, sorted.

    ``keys`` are every distribution of one calibration cell (one dataset): the split is by question over
    all their questions, identical to the one ``calibrate_items`` makes with the same seed and fractions.
    """
    uniq = sorted({distribution_key(*k) for k in keys})
    if not uniq:
        raise InputError("no distributions to draw training sets from", where="training pool")
    questions = np.array([f"{d}\x1f{i}" for d, i, _, _ in uniq], dtype=object)
    split = split_questions(questions, seed, fractions)
    return tuple(k for k, s in zip(uniq, split, strict=True) if s == "train")


def training_sets(
    pool: Sequence[DistributionKey], n: int, repeats: int = REPEATS, seed: int = 0
) -> tuple[tuple[DistributionKey, ...], ...]:
    """``repeats`` random sets of ``n`` distinct distributions from ``pool`` (sorted first, so the order the
    pool is given in does not matter); ``n`` is capped at the pool's size."""
    if repeats < 1:
        raise InputError(f"repeats must be at least 1, got {repeats}", where="repeats")
    if n < 1:
        raise InputError(f"a training set needs at least 1 distribution, got {n}", where="n")
    ordered = sorted({distribution_key(*k) for k in pool})
    if not ordered:
        raise InputError("the training pool is empty", where="training pool")
    n = min(n, len(ordered))
    draws = (
        np.random.default_rng([seed, n, r]).choice(len(ordered), size=n, replace=False)
        for r in range(repeats)
    )
    return tuple(tuple(ordered[i] for i in sorted(pick)) for pick in draws)


def few_shot_sets(
    pool: Sequence[DistributionKey],
    seed: int = 0,
    n_examples: int = FEW_SHOT_EXAMPLES,
    draws: int = FEW_SHOT_DRAWS,
) -> tuple[tuple[DistributionKey, ...], ...]:
    """The few-shot prompt's example sets: the first ``draws`` training sets of size ``n_examples``, the
    very sets the learning curve fits its ``n = 5`` calibrators on."""
    return training_sets(pool, n_examples, draws, seed)


def few_shot_examples(
    survey: Survey,
    seed: int = 0,
    fractions: Sequence[float] = SPLIT,
    n_examples: int = FEW_SHOT_EXAMPLES,
    draws: int = FEW_SHOT_DRAWS,
) -> tuple[tuple[GroupDistribution, ...], ...]:
    """:func:`few_shot_sets` for a survey's distributions, as the survey's own records (question via
    ``survey.items[d.item_id]``, human distribution ``d.probs``). Keys use ``survey.name`` as the dataset,
    as a sweep cell's items table does."""
    by_key = {distribution_key(survey.name, d.item_id, d.attribute, d.group): d for d in survey.distributions}
    pool = training_pool(by_key, seed, fractions)
    return tuple(tuple(by_key[k] for k in s) for s in few_shot_sets(pool, seed, n_examples, draws))

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

from distalign.calibration.regression import SPLIT, split_questions
from distalign.errors import InputError
from distalign.survey.model import GroupDistribution, Survey

#: (dataset, item_id, attribute, group): one human distribution
DistributionKey = tuple[str, str, str, str]
#: random draws per training size (the paper's 10)
REPEATS = 10
#: the few-shot prompt's examples and the number of draws it is averaged over (the paper's 5 and 3)
FEW_SHOT_EXAMPLES = 5
FEW_SHOT_DRAWS = 3


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

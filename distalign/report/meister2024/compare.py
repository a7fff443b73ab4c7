"""A sweep beside the paper's models (``distalign report SWEEP --with meister2024``), on the same items.

The release holds every model's output for every item, so the paper's models are re-scored on exactly the
(dataset, item, group) pairs and steering modes the sweep ran, with the sweep's scoring; their published
full-data values (the release's own per-dataset leaderboard) are shown beside them. A sweep whose items
are not the release's (the invented sample, a custom survey) is refused: its numbers would sit beside
the paper's as if they were comparable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from distalign.errors import InputError
from distalign.report import style
from distalign.report.meister2024.published import release_leaderboard
from distalign.report.meister2024.release import RERUN, STEERING, import_release
from distalign.report.meister2024.reproduce import load_surveys, score_rows
from distalign.survey.model import DATASETS, Survey
from distalign.survey.paths import data_dir as resolve_data_dir

#: the steering modes the paper reports (the release's re-runs ``few_shot_v1``/``_v2`` are not among them)
PAPER_STEERING: frozenset[str] = frozenset(STEERING.values())
GROUP_KEYS: list[str] = ["dataset", "item_id", "attribute", "group"]


@dataclass(frozen=True)
class Comparison:
    """The paper's rows on the sweep's items (scored items), what they cover, and the published values."""

    rows: pd.DataFrame
    coverage: str
    published: pd.DataFrame


def fold_variants(preds: pd.DataFrame) -> pd.DataFrame:
    """The release's internal variants folded as the paper folds them: an answer held twice for one pair
    (``persona_rerun``) pooled with its mode, the few-shot re-runs (``few_shot_v1``, ``_v2``) left out;
    release model folders named by the project's model configs."""
    steering = preds["steering"].astype(str).str.removesuffix(RERUN)
    out = preds.assign(steering=steering, model=preds["model"].map(style.canonical))
    return out[out["steering"].isin(PAPER_STEERING)].reset_index(drop=True)


def _key(attribute: object, group: object) -> tuple[str, str]:
    def s(x: object) -> str:
        return "" if x is None or (isinstance(x, float) and x != x) else str(x)

    return s(attribute), s(group)


def check_same_items(items: pd.DataFrame, surveys: Mapping[str, Survey], root: Path) -> None:
    """Refuses, in one line, a sweep whose items or human distributions are not the release's."""
    unknown = sorted(set(items["dataset"].astype(str)) - set(DATASETS))
    if unknown:
        raise InputError(
            f"dataset {unknown[0]!r} is not one of the release's ({', '.join(DATASETS)}): --with "
            "meister2024 compares on the release's own items only",
            where="--with meister2024",
        )
    human = {
        (name, d.item_id, *_key(d.attribute, d.group)): np.asarray(d.probs, dtype=float)
        for name, s in surveys.items()
        for d in s.distributions
    }
    first = items.drop_duplicates(GROUP_KEYS)
    for dataset, item, attribute, group, probs in zip(
        first["dataset"], first["item_id"], first["attribute"], first["group"], first["human_probs"],
        strict=True,
    ):  # fmt: skip
        where = f"{dataset} item {item!r}" + (f" ({attribute}={group})" if group == group and group else "")
        if str(item) not in surveys[str(dataset)].items:
            raise InputError(
                f"{where} is not in the release at {root}: the sweep ran on other data (the invented "
                "sample or a custom survey), which is not compared with the paper's rows",
                where="--with meister2024",
            )
        theirs = human.get((str(dataset), str(item), *_key(attribute, group)))
        mine = np.asarray(list(probs), dtype=float) if probs is not None else None
        if (
            theirs is None
            or mine is None
            or mine.shape != theirs.shape
            or not np.allclose(mine, theirs, atol=1e-6)
        ):
            raise InputError(
                f"the human distribution of {where} differs from the release's at {root}: the sweep ran "
                "on other data (the invented sample or a custom survey), which is not compared with the "
                "paper's rows",
                where="--with meister2024",
            )


def coverage(items: pd.DataFrame, surveys: Mapping[str, Survey]) -> str:
    """What a comparison covers: "OpinionQA, 6 of 100 items; steering persona, none"."""
    parts = []
    for dataset in [d for d in DATASETS if d in set(items["dataset"].astype(str))]:
        n = items.loc[items["dataset"] == dataset, "item_id"].astype(str).nunique()
        parts.append(
            f"{style.label(dataset, style.DATASET_LABELS)}, {n} of {len(surveys[dataset].items)} items"
        )
    order = ["none", "persona", "few_shot"]
    modes = [m for m in order if m in set(items["steering"].astype(str))]
    modes += sorted(set(items["steering"].astype(str)) - set(order))
    return "; ".join(parts) + "; steering " + ", ".join(style.label(m, style.STEERING_LABELS) for m in modes)


def release_beside(items: pd.DataFrame, data_dir: str | Path | None = None) -> Comparison:
    """The paper's models re-scored on the (dataset, item, group) pairs and steering modes of ``items``
    (a sweep's items table), their published full-data values, and what the comparison covers."""
    root = resolve_data_dir(data_dir)
    datasets = [d for d in DATASETS if d in set(items["dataset"].astype(str))]
    unknown = sorted(set(items["dataset"].astype(str)) - set(DATASETS))
    if unknown:
        check_same_items(items, {}, root)
    surveys = load_surveys(root, datasets)
    check_same_items(items, surveys, root)
    preds = fold_variants(import_release(root))
    keep = (
        preds["dataset"].isin(datasets)
        & preds["item_id"].astype(str).isin(set(items["item_id"].astype(str)))
        & preds["steering"].isin(set(items["steering"].astype(str)))
    )
    scored = score_rows(preds[keep].reset_index(drop=True), surveys)
    pairs = set(map(tuple, items[GROUP_KEYS].astype(str).to_numpy()))
    same = [tuple(map(str, k)) in pairs for k in scored[GROUP_KEYS].to_numpy()]
    scored = scored[np.asarray(same, dtype=bool)].reset_index(drop=True)
    published = release_leaderboard(root)
    published = published.assign(model=published["model"].map(style.canonical))
    published = published[published["dataset"].isin(datasets)].reset_index(drop=True)
    return Comparison(scored, coverage(items, surveys), published)


__all__ = ["Comparison", "check_same_items", "coverage", "fold_variants", "release_beside"]

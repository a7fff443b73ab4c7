"""Planning: units per steering mode, de-duplication across cells, counts, the dry run."""

from __future__ import annotations

from dataclasses import replace

import pytest

from distalign.records.config import CalibrationConfig, ModelConfig, SteeringConfig
from distalign.records.config import serving as serving_config
from distalign.survey import load_survey
from distalign.sweep.cells import resolve
from distalign.sweep.dryrun import describe
from distalign.sweep.plan import PlanSummary, plan_cell, summarize
from tests.sweep.conftest import grid, instant_model, make_cell


def test_no_steering_is_one_unit_per_item_shared_by_its_groups() -> None:
    survey = load_survey("opinionqa", data_dir="fixture")
    units = plan_cell(resolve(make_cell("verbalize", "none"))).units
    assert len(units) == len(survey.items)
    assert all(u.group is None and u.attribute is None for u in units)
    persona = plan_cell(resolve(make_cell("verbalize", "persona"))).units
    assert len(persona) == len(survey.distributions)
    assert {(u.item_id, u.group) for u in persona} == {(d.item_id, d.group) for d in survey.distributions}
    # a persona prompt names its group, so prompts of one item differ across groups
    first = [u for u in persona if u.item_id == persona[0].item_id]
    assert len({u.prompt.prompt_hash for u in first}) == len(first)


def _summary(cells: list) -> PlanSummary:
    return summarize([resolve(c) for c in cells])


def test_keys_align_with_requests() -> None:
    plan = plan_cell(resolve(make_cell("seq", "persona")))
    for unit in plan.units:
        assert len(unit.keys) == len(unit.requests) >= 1
        assert all(plan.requests[k] == r for k, r in zip(unit.keys, unit.requests, strict=True))


def test_cells_differing_outside_the_prompt_share_requests() -> None:
    a = make_cell("verbalize", "persona")
    b = replace(a, calibration=CalibrationConfig(name="temperature"))
    assert resolve(a).spec_hash != resolve(b).spec_hash
    one, both = _summary([a]), _summary([a, b])
    assert both.cells == 2
    assert both.requests == one.requests
    assert both.requests_before_dedup == 2 * one.requests_before_dedup


def test_different_models_never_share_requests() -> None:
    a = make_cell("logprobs", "none")
    b = make_cell("logprobs", "none", model=instant_model("other"))
    both = _summary([a, b])
    assert both.requests == 2 * _summary([a]).requests
    assert set(both.per_model) == {"instant", "other"}


def test_counts() -> None:
    survey = load_survey("opinionqa", data_dir="fixture")
    c = _summary(grid(methods=("logprobs",), steerings=("none", "persona")))
    assert c.cells == 2 and not c.failed
    assert c.units == len(survey.items) + len(survey.distributions)
    assert c.requests == c.requests_before_dedup == c.units  # one log-prob request per prompt
    assert c.per_model["instant"].unique == c.requests


def test_a_cell_that_cannot_be_planned_fails_alone() -> None:
    good, bad = resolve(make_cell("logprobs", "none")), resolve(make_cell("verbalize", "few_shot"))
    bad = replace(bad, survey=replace(bad.survey, similar={}))  # few-shot without any similar items
    summary = summarize([good, bad])
    assert summary.cells == 1 and len(summary.failed) == 1
    assert "few-shot prompt needs examples" in summary.failed[0][2]


def test_describe_reports_requests_tokens_and_cost() -> None:
    cells = grid(methods=("logprobs", "verbalize"), steerings=("none",))
    priced = [
        replace(c, model=replace(c.model, serving=replace(c.model.serving, input_cost_per_token=1e-6)))
        for c in cells
    ]
    summary = _summary(priced)
    text = describe(summary)
    assert f"requests: {summary.requests} after de-duplication" in text
    tokens = summary.per_model["instant"].prompt_tokens
    assert tokens > 0 and str(tokens) in text
    assert f"${tokens * 1e-6:.4f}" in text and "cells: 2" in text


def test_estimate_prices_api_models_from_config_or_litellms_table() -> None:
    def api(name: str, weights: str, **serving: object) -> ModelConfig:
        return ModelConfig(name=name, weights=weights, serving=serving_config("litellm", **serving))

    models = [
        api("gpt4", "openai/gpt-4-0613"),
        api("priced", "hosted_vllm/local", input_cost_per_token=1e-6, output_cost_per_token=2e-6),
        api("unknown", "hosted_vllm/local"),
        instant_model(),
    ]
    summary = _summary([make_cell("verbalize", "persona", model=m, max_items=1) for m in models])
    assert summary.cost("gpt4") > summary.cost("priced") > 0
    priced = summary.per_model["priced"]
    assert summary.cost("priced") == priced.prompt_tokens * 1e-6 + priced.completion_tokens * 2e-6
    assert summary.cost("unknown") is None
    assert summary.cost("instant") == 0.0


def test_a_shorter_sequence_is_asked_for_and_generated_alike() -> None:
    """``method.params.seq_len`` sets both the number of letters the prompt asks for and the number the
    engine generates (they were set in two places, and the prompt kept asking for 30)."""
    cell = make_cell("seq", "persona")
    cell = replace(cell, method=replace(cell.method, params={"seq_len": 10}))
    for unit in plan_cell(resolve(cell)).units[:3]:
        text = unit.prompt.messages[-1].content
        assert "10" in text and "30" not in text, text
        (request,) = unit.requests
        assert request.params.max_tokens == request.params.min_tokens == 10


def test_supervision_few_shot_shows_the_calibrations_example_sets_on_test_questions() -> None:
    """The supervision paper's few-shot prompt shows the 5 examples its 5-example calibrator trained on,
    in each of 3 random draws (the learning curve's draws), and is compared with calibration on the test
    questions; a target is asked once per draw."""
    from distalign.calibration.sampling import (
        distribution_key,
        few_shot_examples,
        training_pool,
        training_sets,
    )

    cell = replace(
        make_cell("self_random"),
        steering=SteeringConfig(
            name="kambhatla_sd_few_shot", protocol="supervision", steering="sd", few_shot=True,
            templates="kambhatla2025",
        ),
    )  # fmt: skip
    resolved = resolve(cell)
    plan = plan_cell(resolved)
    survey = resolved.survey
    sets = few_shot_examples(survey, seed=0)
    pool = training_pool([distribution_key(survey.name, d.item_id, d.attribute, d.group) for d in survey], 0)
    assert [tuple(d.item_id for d in s) for s in sets] == [
        tuple(k[1] for k in drawn) for drawn in training_sets(pool, 5, 10, 0)[:3]
    ]
    assert {u.example_set for u in plan.units} == {0, 1, 2}
    targets = {(u.item_id, u.group) for u in plan.units}
    assert len(plan.units) == 3 * len(targets)
    train_questions = {k[1] for k in pool}
    assert not {item for item, _ in targets} & train_questions  # test questions only
    for unit in plan.units:
        shown = sets[unit.example_set]
        text = unit.prompt.messages[-1].content
        assert all(survey.items[d.item_id].question in text for d in shown)


def test_demonstrations_rendered_once_per_sweep_read_as_if_rendered_afresh() -> None:
    """A sweep renders a demonstration shown to one group once and reuses the text in every prompt that
    shows it; every few-shot prompt of every format, in both protocols, must still read exactly as a prompt
    rendered on its own."""
    from distalign.prompts.render import render_prompt
    from distalign.sweep.plan import Examples, calibration_example_sets

    cells = [make_cell(m, "few_shot") for m in ("logprobs", "seq", "verbalize")]
    cells.append(
        replace(
            make_cell("verbalize"),
            steering=SteeringConfig(name="sup_few", protocol="supervision", steering="sd", few_shot=True),
        )
    )
    shared = Examples()
    blocks = 0
    for cell in map(resolve, cells):
        survey = cell.survey
        for unit in plan_cell(cell, shared).units:
            item = survey.items[unit.item_id]
            if unit.example_set is None:
                shown = shared.get(survey, item, unit.group, cell.spec)
            else:
                shown = calibration_example_sets(cell)[unit.example_set]
            probs = next(d.probs for d in survey.for_item(item.id) if d.group == unit.group)
            alone = render_prompt(
                item, unit.attribute, unit.group, shown, cell.spec, cell.templates, group_probs=probs
            )
            assert unit.prompt == alone, (cell.spec, unit.item_id, unit.group)
            blocks += len(shown)
    assert shared.rendered and blocks > len(shared.rendered)


def test_the_demonstrations_memo_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A survey far larger than the release must not keep every demonstration it rendered: past its limit
    the memo starts afresh, and the prompts read the same."""
    import distalign.prompts.render as render
    from distalign.sweep.plan import Examples, iter_units

    cell = resolve(make_cell("seq", "few_shot"))
    unbounded = plan_cell(cell, Examples())
    monkeypatch.setattr(render, "MEMO_LIMIT", 7)
    small = Examples()
    sizes = []
    for unit, again in zip(unbounded.units, iter_units(cell, small), strict=True):
        assert unit.prompt == again.prompt
        sizes.append(len(small.rendered))
    assert max(sizes) <= 7 + 2 * cell.spec.n_examples and sizes.index(max(sizes)) < len(sizes) - 1

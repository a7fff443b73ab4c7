"""Planning: units per steering mode, de-duplication across cells, counts, the dry run."""

from __future__ import annotations

from dataclasses import replace

from distalign.records.config import CalibrationConfig
from distalign.survey import load_survey
from distalign.sweep.dryrun import describe_plan, dry_run
from distalign.sweep.plan import build_plan, plan_cell
from tests.sweep.conftest import grid, instant_model, make_cell


def test_no_steering_is_one_unit_per_item_shared_by_its_groups() -> None:
    survey = load_survey("opinionqa", data_dir="fixture")
    units = plan_cell(make_cell("verbalize", "none"), survey)
    assert len(units) == len(survey.items)
    assert all(u.group is None and u.attribute is None for u in units)
    persona = plan_cell(make_cell("verbalize", "persona"), survey)
    assert len(persona) == len(survey.distributions)
    assert {(u.item_id, u.group) for u in persona} == {(d.item_id, d.group) for d in survey.distributions}
    # a persona prompt names its group, so prompts of one item differ across groups
    first = [u for u in persona if u.item_id == persona[0].item_id]
    assert len({u.prompt.prompt_hash for u in first}) == len(first)


def test_keys_align_with_requests() -> None:
    survey = load_survey("opinionqa", data_dir="fixture")
    for unit in plan_cell(make_cell("seq", "persona"), survey):
        assert len(unit.keys) == len(unit.requests) >= 1


def test_cells_differing_outside_the_prompt_share_requests() -> None:
    a = make_cell("verbalize", "persona")
    b = replace(a, calibration=CalibrationConfig(name="temperature"))
    one = build_plan([a])
    both = build_plan([a, b])
    assert len(both.cells) == 2
    assert both.cells[0].spec_hash != both.cells[1].spec_hash
    assert len(both.requests) == len(one.requests)
    assert both.requests_before_dedup == 2 * one.requests_before_dedup
    assert both.counts()["requests"] == one.counts()["requests"]


def test_different_models_never_share_requests() -> None:
    a = make_cell("logprobs", "none")
    b = make_cell("logprobs", "none", model=instant_model("other"))
    plan = build_plan([a, b])
    assert len(plan.requests) == 2 * len(build_plan([a]).requests)
    assert set(plan.counts()["per_model"]) == {"instant", "other"}


def test_counts() -> None:
    survey = load_survey("opinionqa", data_dir="fixture")
    plan = build_plan(grid(methods=("logprobs",), steerings=("none", "persona")))
    c = plan.counts()
    assert c["cells"] == 2 and c["cells_failed"] == 0
    assert c["units"] == len(survey.items) + len(survey.distributions)
    assert c["requests"] == c["requests_before_dedup"] == c["units"]  # one log-prob request per prompt
    assert c["per_model"]["instant"]["unique"] == c["requests"]


def test_a_cell_that_cannot_be_planned_fails_alone() -> None:
    bad = make_cell("verbalize", "persona", dataset="custom", path="/nonexistent/file.jsonl")
    plan = build_plan([make_cell("logprobs", "none"), bad])
    assert len(plan.cells) == 1 and len(plan.failed) == 1
    assert "planning failed" in plan.failed[0][2]


def test_describe_plan_reports_requests_tokens_and_cost() -> None:
    cells = grid(methods=("logprobs", "verbalize"), steerings=("none",))
    priced = [
        replace(c, model=replace(c.model, serving=replace(c.model.serving, input_cost_per_token=1e-6)))
        for c in cells
    ]
    plan = build_plan(priced)
    text = describe_plan(plan)
    assert f"requests: {len(plan.requests)} after de-duplication" in text
    tokens = int(plan.estimate()["instant"]["prompt_tokens"])
    assert tokens > 0 and str(tokens) in text
    assert f"${tokens * 1e-6:.4f}" in text
    assert "cells: 2" in dry_run(cells)


def test_planning_cell_by_cell_yields_each_new_key_once() -> None:
    from distalign.sweep.plan import Plan, plan_cells

    cells = grid(methods=("logprobs", "verbalize"), steerings=("none", "persona"))
    cells.append(replace(cells[0], calibration=CalibrationConfig(name="temperature")))  # adds no request
    plan = Plan(cells=[])
    added = list(plan_cells(plan, cells))
    assert len(added) == len(cells) and added[-1] == []
    flat = [k for keys in added for k in keys]
    assert flat == list(plan.requests) == list(build_plan(cells).requests)


def test_estimate_prices_api_models_from_config_or_litellms_table() -> None:
    from distalign.records.config import ModelConfig, ServingConfig

    def api(name: str, weights: str, **serving: object) -> ModelConfig:
        return ModelConfig(name=name, weights=weights, serving=ServingConfig(engine="litellm", **serving))

    models = [
        api("gpt4", "openai/gpt-4-0613"),
        api("priced", "hosted_vllm/local", input_cost_per_token=1e-6, output_cost_per_token=2e-6),
        api("unknown", "hosted_vllm/local"),
        instant_model(),
    ]
    est = build_plan([make_cell("verbalize", "persona", model=m, max_items=1) for m in models]).estimate()
    assert est["gpt4"]["cost_usd"] > est["priced"]["cost_usd"] > 0
    priced = est["priced"]
    assert priced["cost_usd"] == priced["prompt_tokens"] * 1e-6 + priced["completion_tokens"] * 2e-6
    assert est["unknown"]["cost_usd"] is None
    assert est["instant"]["cost_usd"] == 0.0


def test_a_shorter_sequence_is_asked_for_and_generated_alike() -> None:
    """``method.params.seq_len`` sets both the number of letters the prompt asks for and the number the
    engine generates (they were set in two places, and the prompt kept asking for 30)."""
    survey = load_survey("opinionqa", data_dir="fixture")
    cell = make_cell("seq", "persona")
    cell = replace(cell, method=replace(cell.method, params={"seq_len": 10}))
    for unit in plan_cell(cell, survey)[:3]:
        text = unit.prompt.messages[-1].content
        assert "10" in text and "30" not in text, text
        (request,) = unit.requests
        assert request.params.max_tokens == request.params.min_tokens == 10

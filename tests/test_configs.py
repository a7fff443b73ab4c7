"""Every shipped experiment composes and validates with every shipped model config: a model that cannot
serve one of the experiment's methods has those cells skipped (the papers leave them empty), never the
whole grid refused."""

from __future__ import annotations

import itertools
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from distalign.engines.registry import register_configs
from distalign.errors import InputError
from distalign.records.config import CellConfig, to_cell
from distalign.sweep.cells import clear_dataset_cache
from distalign.sweep.validate import validate_cells

CONF = Path(__file__).resolve().parents[1] / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
#: the supervision paper's 15 models (its Appendix A.1), the kambhatla2025 experiment's default list
KAMBHATLA2025_MODELS = {
    "claude_35_haiku",
    "claude_35_sonnet",
    "llama32_1b",
    "llama32_3b",
    "llama32_11b",
    "llama32_90b",
    "mistral_small",
    "mistral_large",
    "olmo2_7b_base",
    "olmo2_7b_sft",
    "olmo2_7b_dpo",
    "olmo2_7b",
    "qwen2_5_7b",
    "qwen25_32b",
    "qwen25_72b",
}
PAPER_MODELS = KAMBHATLA2025_MODELS | {"gpt4", "gpt35_turbo", "claude_3_opus", "claude_3_haiku", "llama3_70b"}


def _params(experiment: str) -> dict[str, list[str]]:
    params = yaml.safe_load((CONF / "experiment" / f"{experiment}.yaml").read_text())["hydra"]["sweeper"][
        "params"
    ]
    return {k: str(v).split(",") for k, v in params.items()}


def _grid(experiment: str) -> list[list[str]]:
    """The experiment's sweep without its model list, as override lists (its ``hydra.sweeper.params``)."""
    params = {k: v for k, v in _params(experiment).items() if k != "model"}
    keys = list(params)
    return [
        [f"{k}={v}" for k, v in zip(keys, combo, strict=True)]
        for combo in itertools.product(*(params[k] for k in keys))
    ]


def _dataset(grid: list[str]) -> str | None:
    return next((o for o in grid if o.startswith("dataset=")), None)


def test_the_papers_models_have_configs() -> None:
    assert PAPER_MODELS <= set(MODELS)


def test_the_supervision_experiment_runs_the_papers_15_models() -> None:
    listed = _params("kambhatla2025")["model"]
    assert len(listed) == len(set(listed)) == 15 and set(listed) == KAMBHATLA2025_MODELS


def _compose_cell(experiment: str, model: str, grid: list[str]) -> CellConfig:
    overrides = [f"experiment={experiment}", f"model={model}", *grid, "dataset.data_dir=fixture"]
    return to_cell(compose("config", overrides=overrides))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_runs_with_every_model(experiment: str) -> None:
    register_configs()
    GlobalHydra.instance().clear()
    clear_dataset_cache()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        full = _grid(experiment)
        one_dataset = [g for g in full if _dataset(g) == _dataset(full[0])]
        # a cell every engine can serve (it generates text): the one composed for each model
        probe = next(g for g in one_dataset if "method=logprobs" not in g)
        # the whole grid is composed once; each model composes one cell, and what it can serve (which
        # depends on the method and steering, not the dataset, and on what its engine declares) is
        # validated on every method x steering of one dataset with its model config in place
        composed = {tuple(g): _compose_cell(experiment, MODELS[0], g) for g in full}
        same = [composed[tuple(g)] for g in one_dataset if g != probe]
        for i, model in enumerate(MODELS):
            first = _compose_cell(experiment, model, probe)
            others = list(composed.values()) if i == 0 else [replace(c, model=first.model) for c in same]
            cells = [first, *others]
            out = validate_cells(cells, require_keys=False, unsupported=cells[0].sweep.unsupported)
            assert out.cells, f"{experiment} x {model}: every cell skipped"
            for cell, why in out.unsupported:
                assert cell.model.serving.engine == "litellm", (experiment, model, cell.method.name, why)


def _compose(*overrides: str, conf: Path = CONF) -> object:
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.mark.parametrize(
    ("override", "key", "known"),
    [
        ("+model.serving.rpmm=5", "model.serving.rpmm", "rpm, tpm"),
        ("+method.parms.x=1", "method.parms", "name, params"),
        ("+sweep.n_resample=5", "sweep.n_resample", "n_resamples"),
        ("+modle.name=x", "modle", "model, dataset, steering"),
    ],
)
def test_a_key_added_with_plus_is_checked_against_the_schema(override: str, key: str, known: str) -> None:
    """Hydra's own error for an unknown key suggests ``+key=value``, which bypasses the structured config."""
    cfg = _compose("model=instant", override)
    with pytest.raises(InputError) as err:
        to_cell(cfg)
    assert f"unknown key {key!r}" in str(err.value) and known in str(err.value)


def test_free_dicts_take_added_keys_and_their_readers_name_unknown_ones() -> None:
    cell = to_cell(_compose("model=instant", "+method.params.n=3", "+model.serving.resources.tpu=1"))
    assert cell.method.params == {"n": 3} and cell.model.serving.resources == {"tpu": 1}
    with pytest.raises(InputError, match="unknown parameter 'bogus' for method 'verbalize'"):
        validate_cells(
            [to_cell(_compose("model=instant", "+method.params.bogus=1", "dataset.data_dir=fixture"))]
        )


def test_a_typo_in_a_group_lists_only_real_choices() -> None:
    with pytest.raises(Exception) as err:  # noqa: PT011 - Hydra's MissingConfigException
        _compose("model=smolm")
    listed = str(err.value).split("Available options in 'model':")[1].split("Config search path")[0]
    choices = listed.split()
    assert "smollm2_135m" in choices and not [c for c in choices if "schema" in c], choices


def test_an_unknown_key_in_a_group_yaml_still_fails(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "model" / "odd.yaml").write_text("name: odd\nweights: x\nserving:\n  rpmm: 3\n")
    with pytest.raises(Exception, match="rpmm"):  # noqa: PT011 - Hydra's ConfigCompositionException
        _compose("model=odd", conf=conf)

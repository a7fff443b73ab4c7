"""Each bad input gets a clear InputError before anything starts (no Ray, no actor)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import ray

from distalign.errors import InputError
from distalign.records.config import (
    CalibrationConfig,
    MethodConfig,
    ModelConfig,
    SteeringConfig,
)
from distalign.records.config import serving as serving_config
from distalign.sweep.runner import run_sweep
from distalign.sweep.validate import validate_cells
from tests.sweep.conftest import instant_model, make_cell, settings


def _api_model(weights: str = "anthropic/claude-3-haiku-20240307", **serving: object) -> ModelConfig:
    return ModelConfig(name="haiku", weights=weights, serving=serving_config("litellm", **serving))


CASES = {
    "unknown method": (lambda: replace(make_cell(), method=MethodConfig(name="telepathy")), "telepathy"),
    "unknown steering": (
        lambda: replace(make_cell(), steering=SteeringConfig(name="odd", steering="hypnosis")),
        "hypnosis",
    ),
    "unknown protocol": (
        lambda: replace(make_cell(), steering=SteeringConfig(name="odd", protocol="nope", steering="none")),
        "unknown protocol 'nope'",
    ),
    "unknown dataset": (lambda: make_cell(dataset="no_such_dataset"), "no_such_dataset"),
    "unknown calibration": (
        lambda: replace(make_cell(), calibration=CalibrationConfig(name="magic")),
        "unknown calibration 'magic'",
    ),
    "unknown engine": (
        lambda: make_cell(model=instant_model("q", engine="quantum")),
        "unknown engine 'quantum'",
    ),
    "tensor parallel > gpus": (
        lambda: make_cell(
            model=ModelConfig(
                name="big",
                weights="org/big",
                serving=serving_config("vllm", tensor_parallel_size=4, num_gpus=2),
            )
        ),
        "tensor_parallel_size=4",
    ),
    "logprobs on an API without them": (
        lambda: make_cell("logprobs", model=_api_model()),
        "cannot serve method 'logprobs'",
    ),
    "missing api key": (
        lambda: make_cell("verbalize", model=_api_model(api_key_env="DISTALIGN_TEST_MISSING_KEY")),
        "DISTALIGN_TEST_MISSING_KEY is not set",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_rejected_before_ray(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISTALIGN_TEST_MISSING_KEY", raising=False)
    build, message = CASES[case]
    with pytest.raises(InputError, match=message.replace("(", r"\(")):
        validate_cells([make_cell(), build()])
    assert not ray.is_initialized()


def test_logprobs_message_names_model_and_fix() -> None:
    with pytest.raises(InputError) as err:
        validate_cells([make_cell("logprobs", model=_api_model())])
    text = str(err.value)
    assert "haiku" in text and "anthropic/claude-3-haiku" in text and "method=seq or verbalize" in text


def test_missing_key_never_prints_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTALIGN_TEST_PRESENT_KEY", "sk-secret-value-123")
    validate_cells([make_cell("verbalize", model=_api_model(api_key_env="DISTALIGN_TEST_PRESENT_KEY"))])
    monkeypatch.delenv("DISTALIGN_TEST_PRESENT_KEY")
    with pytest.raises(InputError) as err:
        validate_cells([make_cell("verbalize", model=_api_model(api_key_env="DISTALIGN_TEST_PRESENT_KEY"))])
    assert "sk-secret" not in str(err.value)


def test_missing_dataset_names_path_and_download(tmp_path) -> None:
    cell = replace(make_cell(), dataset=replace(make_cell().dataset, data_dir=str(tmp_path)))
    with pytest.raises(InputError) as err:
        validate_cells([cell])
    assert str(tmp_path) in str(err.value) and "distalign data download opinionqa" in str(err.value)
    # the hint names launch.py's own options, not the distalign CLI's
    assert "dataset.data_dir=fixture" in str(err.value) and "--data-dir" not in str(err.value)


def test_one_name_two_models_is_rejected() -> None:
    other = instant_model(batch_size=99)
    with pytest.raises(InputError, match="share this name"):
        validate_cells([make_cell(), make_cell(model=other)])


def test_run_sweep_validates_before_starting_ray(tmp_path) -> None:
    bad = replace(make_cell(), method=MethodConfig(name="telepathy"))
    with pytest.raises(InputError):
        run_sweep([make_cell(), bad], settings(tmp_path / "store"))
    assert not ray.is_initialized()
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(
    "engine,field,value",
    [
        ("litellm", "dtype", "bfloat16"),
        ("vllm", "rpm", 5.0),
        ("hf", "tensor_parallel_size", 2),
        ("instant", "api_base", "x"),
    ],
)
def test_a_serving_field_the_engine_ignores_is_rejected(engine: str, field: str, value: object) -> None:
    weights = "openai/gpt-4o-mini" if engine == "litellm" else "org/model"
    model = ModelConfig(name="m", weights=weights, serving=serving_config(engine, **{field: value}))
    with pytest.raises(
        InputError, match=f"{field} set, but the {engine} engine does not use it; it reads: "
    ) as err:
        validate_cells([make_cell("verbalize", model=model)], require_keys=False)
    assert f"serving.{field}" in str(err.value)


def test_unsupported_cells_are_skipped_and_listed_when_asked() -> None:
    api = _api_model(api_key_env=None)
    cells = [make_cell("logprobs", model=api), make_cell("verbalize", model=api), make_cell("logprobs")]
    out = validate_cells(cells, unsupported="skip")
    assert [c.config.method.name for c in out.cells] == ["verbalize", "logprobs"]
    (line,) = out.unsupported_lines()
    assert "haiku" in line and "logprobs" in line and "option log-probabilities" in line
    with pytest.raises(InputError, match="sweep.unsupported=skip"):
        validate_cells(cells, unsupported="error")


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("n_resamples", -1, "sweep.n_resamples: must be a whole number of at least 1"),
        ("n_resamples", 0, "sweep.n_resamples"),
        ("seed", -2, "sweep.seed: must be a whole number >= 0"),
        ("seed", 1.5, "sweep.seed"),
        ("unparsed", "ignore", "sweep.unparsed: must be one of uniform, exclude, worst"),
        ("unsupported", "maybe", "sweep.unsupported"),
        ("num_cpus", 0, "sweep.num_cpus: must be a whole number of at least 1"),
        ("experiment", "", "sweep.experiment: must be a non-empty text"),
        ("progress", "yes", "sweep.progress: must be true or false"),
        ("executor", "threads", "sweep.executor: must be one of ray, inline"),
    ],
)
def test_every_sweep_setting_is_checked_before_anything_runs(
    setting: str, value: object, message: str, tmp_path
) -> None:
    cell = make_cell()
    cell = replace(cell, sweep=replace(cell.sweep, **{setting: value}))
    with pytest.raises(InputError) as err:
        validate_cells([cell], unsupported="skip")
    assert message in str(err.value) and repr(value) in str(err.value)
    with pytest.raises(InputError, match=f"sweep.{setting}"):  # the same check when run_sweep is called
        run_sweep([make_cell()], replace(settings(tmp_path / "store"), **{setting: value}))
    assert not ray.is_initialized() and not (tmp_path / "store").exists()

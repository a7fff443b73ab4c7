"""Adding an engine takes one module in ``distalign/engines/`` and one model YAML, nothing else: the engine
below is written to a folder added to the package's path, and a sweep over it composes, validates, plans
and answers through the same entry points as the shipped engines."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

import distalign.engines
from distalign.engines import registry
from distalign.errors import InputError
from distalign.records.config import to_cell
from distalign.records.engine import GenerateRequest, Message, SamplingParams
from distalign.sweep.plan import plan_cell
from distalign.sweep.validate import validate_cells

CONF = Path(__file__).resolve().parents[2] / "conf"

MODULE = '''
"""A toy engine: answers with one letter, set in the model's config."""
from __future__ import annotations

from dataclasses import dataclass

from distalign.engines.base import EngineSpec, with_overrides
from distalign.records.engine import Capabilities, GenerateResult, OptionLogprobResult


@dataclass
class EchoSettings:
    letter: str = "A"
    rate: float = 1.0


class EchoEngine:
    capabilities = Capabilities(option_logprobs=False)

    def __init__(self, identity, letter):
        self.identity, self.letter = identity, letter

    def option_logprobs(self, requests):
        return [OptionLogprobResult(error="no log-probs") for _ in requests]

    def generate(self, requests):
        return [GenerateResult(texts=(self.letter,) * r.params.n) for r in requests]


def _check(model, settings, require_keys):
    if settings.rate <= 0:
        from distalign.errors import InputError

        where = f"model {model.name!r}: serving.rate"
        raise InputError(f"must be positive, got {settings.rate}", where=where)


ENGINE = EngineSpec(
    name="echo",
    settings=EchoSettings,
    build=lambda model, settings, identity: EchoEngine(identity, settings.letter),
    capabilities=lambda model, settings: with_overrides(
        Capabilities(option_logprobs=False), model.serving.capabilities, "serving.capabilities"
    ),
    check=_check,
)
'''


@pytest.fixture
def echo_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The engine module in a folder of the engines package, and a conf/ with its model YAML."""
    folder = tmp_path / "engines"
    folder.mkdir()
    (folder / "echo.py").write_text(textwrap.dedent(MODULE), encoding="utf-8")
    monkeypatch.setattr(distalign.engines, "__path__", [*distalign.engines.__path__, str(folder)])
    for cached in (registry.builtin_engines, registry._spec_of):
        cached.cache_clear()
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    (conf / "model" / "echo.yaml").write_text(
        "name: echo\nweights: toy-echo\nserving:\n  engine: echo\n  letter: B\n  batch_size: 4\n",
        encoding="utf-8",
    )
    yield conf
    monkeypatch.undo()
    for cached in (registry.builtin_engines, registry._spec_of):
        cached.cache_clear()
    registry.register_configs()  # the schema of the shipped engines again


def _cells(conf: Path, *overrides: str) -> list:
    registry.register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=["model=echo", "dataset.data_dir=fixture", "dataset.max_items=2", *overrides],
        )
    return [to_cell(cfg)]


def test_a_new_engine_module_and_yaml_run_through_the_sweep_entry_points(echo_engine: Path) -> None:
    cells = _cells(echo_engine, "method=verbalize", "model.serving.rate=2.5")
    model = cells[0].model
    assert model.serving.settings == {"letter": "B", "rate": 2.5}
    validated = validate_cells(cells)
    plan = plan_cell(validated.cells[0])
    assert plan.requests
    engine = registry.make_engine(model)
    request = GenerateRequest((Message("user", "?"),), params=SamplingParams(n=2))
    assert engine.generate([request])[0].texts == ("B", "B")
    traits = registry.pool_traits(model)
    assert (traits.engine, traits.api, traits.num_gpus) == ("echo", False, 0.0)
    assert registry.serving_params(model)["serving.letter"] == "B"


def test_the_new_engines_declaration_is_what_validation_reads(echo_engine: Path) -> None:
    with pytest.raises(InputError, match="serving.rate"):
        validate_cells(_cells(echo_engine, "method=verbalize", "model.serving.rate=0"))
    with pytest.raises(InputError, match="cannot serve method 'logprobs'"):
        validate_cells(_cells(echo_engine, "method=logprobs", "sweep.unsupported=error"))
    with pytest.raises(InputError, match="rpm set, but the echo engine does not use it"):
        validate_cells(_cells(echo_engine, "method=verbalize", "model.serving.rpm=5"))

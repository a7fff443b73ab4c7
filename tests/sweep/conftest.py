"""Cells over the shipped fixture, served by the instant engine, and a shared local Ray for slow tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from distalign.records.config import (
    CellConfig,
    DatasetConfig,
    MethodConfig,
    ModelConfig,
    SteeringConfig,
    SweepSettings,
)
from distalign.records.config import serving as serving_config
from distalign.sweep.cells import clear_dataset_cache


def instant_model(name: str = "instant", **serving: object) -> ModelConfig:
    kw: dict[str, object] = {"engine": "instant", "batch_size": 16, **serving}
    return ModelConfig(name=name, weights="instant", serving=serving_config(**kw))  # type: ignore[arg-type]


def probe_model(name: str = "instant", **serving: object) -> ModelConfig:
    """The instant model on the test engine that journals and fails on demand (``engines/probe_engine``)."""
    from tests.engines.probe_engine import NAME

    return instant_model(name, engine=NAME, **serving)


def make_cell(
    method: str = "verbalize",
    steering: str = "persona",
    dataset: str = "opinionqa",
    model: ModelConfig | None = None,
    **dataset_kw: object,
) -> CellConfig:
    return CellConfig(
        model=model or instant_model(),
        dataset=DatasetConfig(name=dataset, data_dir="fixture", **dataset_kw),
        steering=SteeringConfig(name=steering, protocol="benchmark", steering=steering),
        method=MethodConfig(name=method),
    )


def grid(
    methods: tuple[str, ...] = ("logprobs", "seq", "verbalize"),
    steerings: tuple[str, ...] = ("none", "persona"),
    datasets: tuple[str, ...] = ("opinionqa",),
    model: ModelConfig | None = None,
    **dataset_kw: object,
) -> list[CellConfig]:
    return [make_cell(m, s, d, model, **dataset_kw) for d in datasets for s in steerings for m in methods]


def settings(store: object, **kw: object) -> SweepSettings:
    """Settings with their own response store and, beside it, their own sweep folders."""
    base: dict[str, object] = {
        "num_cpus": 2,
        "progress": False,
        "n_resamples": 200,
        "output_dir": f"{store}-sweeps",
        **kw,
    }
    return SweepSettings(store=str(store), **base)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def _fresh_datasets() -> Iterator[None]:
    clear_dataset_cache()
    yield
    clear_dataset_cache()


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray per test module (starting Ray costs seconds on 2 cores)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 2**20, logging_level="WARNING")
    yield
    ray.shutdown()

"""What a cell config resolves to: its survey, its elicitation method and its prompt spec.

Datasets are loaded once per sweep (a cache keyed by the dataset config), whatever the number of cells that
use them; validation and planning share that cache, so validating a dataset costs no second load.
"""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass
from typing import Any

from distalign.errors import InputError
from distalign.methods.base import Method
from distalign.methods.registry import get_method
from distalign.prompts.render import PromptSpec
from distalign.records.config import CellConfig, DatasetConfig
from distalign.survey.model import Survey

CALIBRATIONS: tuple[str, ...] = ("none", "temperature", "regression")

_SURVEYS: dict[str, Survey] = {}


def as_cell(obj: Any) -> CellConfig:
    """Accept a ``CellConfig`` or anything OmegaConf can turn into one (a composed Hydra config)."""
    if isinstance(obj, CellConfig):
        return obj
    from omegaconf import OmegaConf

    try:
        conf = OmegaConf.merge(OmegaConf.structured(CellConfig), obj)
        cell = OmegaConf.to_object(conf)
    except Exception as exc:  # omegaconf reports the offending key in its message
        raise InputError(f"not a valid cell config: {exc}") from exc
    assert isinstance(cell, CellConfig)
    return cell


def dataset_key(ds: DatasetConfig) -> str:
    return json.dumps(asdict(ds) if is_dataclass(ds) else dict(ds), sort_keys=True, default=str)


def load_dataset(ds: DatasetConfig) -> Survey:
    """The survey a dataset config names, restricted to ``max_items`` and ``groups`` (cached per sweep)."""
    key = dataset_key(ds)
    if key in _SURVEYS:
        return _SURVEYS[key]
    from distalign.survey import load_survey

    kwargs: dict[str, Any] = {"path": ds.path} if ds.path else {}
    survey = load_survey(ds.name, data_dir=ds.data_dir, **kwargs)
    if ds.groups:
        wanted = set(ds.groups)
        known = {g for _, g in survey.groups()}
        missing = sorted(wanted - known)
        if missing:
            raise InputError(
                f"groups {missing} are not in dataset {ds.name!r} (it has: {', '.join(sorted(known))})",
                where="dataset.groups",
            )
        survey = Survey(
            name=survey.name,
            items=survey.items,
            distributions=tuple(d for d in survey.distributions if d.group in wanted),
            similar=survey.similar,
            source=survey.source,
        )
    if ds.max_items is not None:
        if ds.max_items < 1:
            raise InputError(f"must be at least 1, got {ds.max_items}", where="dataset.max_items")
        survey = survey.subset(list(survey.items)[: ds.max_items])
    _SURVEYS[key] = survey
    return survey


def clear_dataset_cache() -> None:
    _SURVEYS.clear()


def cell_method(cell: CellConfig) -> Method:
    return get_method(cell.method.name, cell.steering.protocol, **dict(cell.method.params or {}))


def prompt_spec(cell: CellConfig, method: Method) -> PromptSpec:
    """The prompt spec of a cell, as its method specifies it."""
    return method.prompt_spec(cell.steering)


def load_templates(cell: CellConfig) -> Any:
    """A user's template file, or ``None`` for the packaged templates."""
    if not cell.steering.templates:
        return None
    from distalign.prompts.presets import load_templates as load

    return load(cell.steering.templates)

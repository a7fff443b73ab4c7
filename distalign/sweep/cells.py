"""What a cell config resolves to: its survey, templates, method, prompt spec and identity hash.

Datasets and template files are read once per sweep (a cache keyed by their config), whatever the number of
cells that use them; validation, planning and the identity hash share that cache. A cell's identity covers
the *content* it reads (``Survey.digest``, ``Templates.digest``), computed once per distinct dataset and
templates value.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from distalign.errors import InputError
from distalign.methods.base import Method
from distalign.methods.registry import get_method
from distalign.prompts.presets import load_templates
from distalign.prompts.render import PromptSpec
from distalign.prompts.templates import Templates
from distalign.records.config import CellConfig, DatasetConfig, from_config, spec_hash
from distalign.survey.model import Survey
from distalign.survey.paths import HYDRA_OPTION, MissingDataError
from distalign.survey.registry import load_survey

CALIBRATIONS: tuple[str, ...] = ("none", "temperature", "regression")

_SURVEYS: dict[str, Survey] = {}
_TEMPLATES: dict[tuple[str | None, str | None], Templates] = {}


@dataclass(frozen=True)
class Cell:
    """A cell config with everything it reads resolved; ``spec_hash`` is its identity."""

    config: CellConfig
    survey: Survey
    templates: Templates
    method: Method
    spec: PromptSpec
    spec_hash: str

    @property
    def content(self) -> dict[str, str]:
        return {"dataset": self.survey.digest, "templates": self.templates.digest}


def as_cell(obj: Any) -> CellConfig:
    """Accept a ``CellConfig`` or anything OmegaConf can turn into one (a composed Hydra config)."""
    if isinstance(obj, CellConfig):
        return obj
    try:
        cell = from_config(CellConfig, obj)
    except Exception as exc:  # omegaconf reports the offending key in its message
        raise InputError(f"not a valid cell config: {exc}") from exc
    assert isinstance(cell, CellConfig)
    return cell


def dataset_key(ds: DatasetConfig) -> str:
    return json.dumps(asdict(ds), sort_keys=True, default=str)


def load_dataset(ds: DatasetConfig) -> Survey:
    """The survey a dataset config names, restricted to ``max_items`` and ``groups`` (cached per sweep)."""
    key = dataset_key(ds)
    if key in _SURVEYS:
        return _SURVEYS[key]
    kwargs: dict[str, Any] = {"path": ds.path} if ds.path else {}
    try:
        survey = load_survey(ds.name, data_dir=ds.data_dir, **kwargs)
    except MissingDataError as exc:  # the hint in launch.py's option form
        raise exc.for_option(HYDRA_OPTION) from None
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


def cell_templates(cell: CellConfig) -> Templates:
    """The packaged templates, a preset (``meister2024`` reads the release in the dataset's data folder) or
    the steering config's own file; each read and validated once per sweep."""
    key = (cell.steering.templates or None, cell.dataset.data_dir)
    hit = _TEMPLATES.get(key)
    if hit is None:
        hit = _TEMPLATES[key] = load_templates(key[0], data_dir=key[1])
    return hit


def clear_dataset_cache() -> None:
    _SURVEYS.clear()
    _TEMPLATES.clear()


def cell_method(cell: CellConfig) -> Method:
    return get_method(cell.method.name, cell.steering.protocol, **dict(cell.method.params or {}))


def resolve(config: CellConfig) -> Cell:
    """Everything a cell reads, or the ``InputError`` that says what is wrong with it."""
    method = cell_method(config)
    spec = method.prompt_spec(config.steering)
    survey = load_dataset(config.dataset)
    templates = cell_templates(config)
    content = {"dataset": survey.digest, "templates": templates.digest}
    return Cell(config, survey, templates, method, spec, spec_hash(config, content))


def cell_hash(config: CellConfig) -> str:
    """A cell config's identity hash (reads its dataset and templates through the per-sweep cache)."""
    return resolve(config).spec_hash

"""Dataset names -> loaders, so configs and the CLI name a dataset instead of importing a loader."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import distalign.survey.global_opinions as global_opinions
import distalign.survey.nyt as nyt
import distalign.survey.opinionqa as opinionqa
from distalign.errors import InputError
from distalign.survey.custom import load_custom
from distalign.survey.model import Survey
from distalign.survey.paths import data_dir as resolve_data_dir


@dataclass(frozen=True)
class DatasetLoader:
    name: str
    description: str
    load: Callable[..., Survey]  # (root, **kw) -> Survey
    files: tuple[str, ...]  # release files it reads (relative to the data folder)


DATASET_LOADERS: dict[str, DatasetLoader] = {
    "opinionqa": DatasetLoader(
        "opinionqa",
        "OpinionQA: 100 contentious Pew ATP questions x 6 groups (599 pairs)",
        opinionqa.load_opinionqa,
        tuple(opinionqa.required_files("100")),
    ),
    "opinionqa_500": DatasetLoader(
        "opinionqa_500",
        "OpinionQA: the 500-question pool the 100 were drawn from",
        partial(opinionqa.load_opinionqa, pool="500"),
        tuple(opinionqa.required_files("500")),
    ),
    "nyt_books": DatasetLoader(
        "nyt_books",
        "NYT Book Opinions: 235 books x Democrat/Republican/Male/Female (940 pairs)",
        nyt.load_nyt_books,
        (nyt.DATA, nyt.SIMILARITY),
    ),
    "global_opinions": DatasetLoader(
        "global_opinions",
        "GlobalOpinionQA: 100 questions x 3 countries (300 pairs)",
        global_opinions.load_global_opinions,
        (global_opinions.DATA, global_opinions.SIMILARITY),
    ),
}
CUSTOM = "custom"


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_survey` (``custom`` needs ``path=``)."""
    return [*DATASET_LOADERS, CUSTOM]


def load_survey(name: str, data_dir: str | Path | None = None, **kw: Any) -> Survey:
    """Load a released dataset from the data folder (see ``paths.data_dir``) or a custom file (``path=``)."""
    if name == CUSTOM:
        path = kw.pop("path", None)
        if path is None:
            raise InputError("dataset 'custom' needs a file: pass path=FILE (JSONL, CSV or Parquet)")
        if kw:
            raise InputError(f"dataset 'custom' takes no options {sorted(kw)}")
        survey = load_custom(path)
        if survey.name in DATASET_LOADERS or survey.name == CUSTOM:
            # it would stand in for the benchmark dataset wherever surveys are looked up by name
            raise InputError(
                f"the custom survey is named {survey.name!r}, the name of a built-in dataset; give it its "
                f"own name (its 'dataset' column, else the file's name)",
                file=path,
            )
        return survey
    loader = DATASET_LOADERS.get(name)
    if loader is None:
        raise InputError(f"unknown dataset {name!r}; known: {', '.join(list_datasets())}")
    root = resolve_data_dir(data_dir)
    try:
        inspect.signature(loader.load).bind(root, **kw)
    except TypeError as exc:
        raise InputError(f"dataset {name!r}: bad options {sorted(kw)} ({exc})") from None
    return loader.load(root, **kw)


def surveys_for(
    names: Iterable[str], data_dir: str | Path | None = None, custom: Iterable[str | Path] = ()
) -> dict[str, Survey]:
    """The surveys a predictions file names: custom survey files first (by their own names), then the
    benchmark datasets among ``names``; other names are left for the caller to report per row."""
    surveys: dict[str, Survey] = {}
    for path in custom:
        s = load_survey(CUSTOM, path=path)
        surveys[s.name] = s
    for name in names:
        if name in DATASET_LOADERS and name not in surveys:
            surveys[name] = load_survey(name, data_dir)
    return surveys

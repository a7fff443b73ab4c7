"""The release's model outputs (its ``results/`` tree) as a predictions table (``distalign score`` format).

Layout: ``results/{opinionqa,nytimes,globalvalues}/OUTPUT/MODEL/TASK/[WAVE/]ATTRIBUTE/GROUP.json``, one
object per question holding the model's raw ``response`` list and, per option letter,
``avg_actual_results`` (for log-p: the probabilities of the option letters; for the ``rescaled_`` outputs,
after the release's temperature scaling).

Rows are kept as the release has them, including groups the benchmark never evaluates and log-p rows
whose probabilities are all zero or NaN. Raw responses are kept raw (the project's parsers read them);
log-p rows carry their probabilities. ``options`` are the option labels as the prompts showed them: the
release lists the options of the group's count table in that table's order (OpinionQA: alphabetical, and
options nobody in the group chose are left out; no steering shows the Democrat table), the four Likert
options for NYT and the option list of GlobalOpinionQA. Where the release lacks the count table (the
groups it does not evaluate) and the labels cannot be told from the letters, ``options`` is empty.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from distalign.errors import InputError
from distalign.prompts.meister import FORMAT_FOLDERS
from distalign.survey.global_opinions import DATA as GLOBAL_DATA
from distalign.survey.nyt import DATA as NYT_DATA
from distalign.survey.opinionqa import INFO, pool_dir
from distalign.survey.parsing import literal_list, read_json
from distalign.survey.paths import data_dir as resolve_data_dir

RESULTS = "results"
#: the release's dataset folders -> the project's dataset names
DATASET_DIRS: dict[str, str] = {
    "opinionqa": "opinionqa",
    "nytimes": "nyt_books",
    "globalvalues": "global_opinions",
}
#: the release's distribution expressions -> the project's method names (its result folders: the prompt
#: folders' formats, and log-probs after temperature scaling)
METHODS: dict[str, str] = {
    **{folder: method for method, folder in FORMAT_FOLDERS.items()},
    "rescaled_model_logprobs": "logprobs+temperature",
}
PROB_METHODS = frozenset({"logprobs", "logprobs+temperature"})
#: the release's task folders -> steering modes (``task3_easy_hard`` is the few-shot run of prompt_task2)
STEERING: dict[str, str] = {
    "task0": "none",
    "task1": "persona",
    "task2": "few_shot",
    "task3_easy_hard": "few_shot",
}
#: the models of the paper, in its order, with the release's names (kept: the figure style knows them)
MODELS: tuple[str, ...] = ("gpt-4", "gpt-3.5-turbo-0125", "llama3-70b", "anthropic_opus", "anthropic_haiku")
NO_GROUP = "NONE"
#: the prediction's identity (``distalign score`` accepts one row per key)
KEYS: tuple[str, ...] = ("model", "method", "steering", "dataset", "item_id", "attribute", "group")
#: the steering suffix of an answer the release holds twice for one (item, group)
RERUN = "_rerun"
COUNTRY = "country"
COLUMNS: tuple[str, ...] = (
    "model", "method", "steering", "dataset", "item_id", "attribute", "group",
    "probs", "response", "options", "source",
)  # fmt: skip


def steering_of(task: str) -> str:
    """``task1`` -> ``persona``; a re-run (``task3_easy_hard_v1``) keeps its suffix (``few_shot_v1``)."""
    if task in STEERING:
        return STEERING[task]
    for prefix, mode in STEERING.items():
        if task.startswith(prefix + "_"):
            return f"{mode}_{task[len(prefix) + 1 :]}"
    return task


@dataclass(frozen=True)
class _Shown:
    """What the prompts showed, per dataset: OpinionQA count tables, NYT and GlobalOpinionQA option lists."""

    oqa_tables: Mapping[str, Mapping[str, Any]]  # attribute -> question -> {group: {label: count}}
    oqa_options: Mapping[str, tuple[str, ...]]  # question -> all labels (info.csv)
    nyt_options: Mapping[str, tuple[str, ...]]
    global_options: Mapping[str, tuple[str, ...]]
    global_countries: Mapping[str, tuple[str, ...]]
    global_probs: Mapping[tuple[str, str], np.ndarray]

    @classmethod
    def read(cls, root: Path) -> _Shown:
        tables = {}
        for path in sorted((root / pool_dir("100")).glob("*_data.json")):
            tables[path.name.removesuffix("_data.json")] = read_json(path)
        info = pd.read_csv(root / INFO, usecols=["key", "references"], dtype=str)
        oqa = {
            k: tuple(map(str, literal_list(r, file=root / INFO, where=f"key {k!r}")))
            for k, r in zip(info["key"], info["references"], strict=True)
        }
        nyt = {t: tuple(map(str, e["MC_options"])) for t, e in read_json(root / NYT_DATA).items()}
        gdata = read_json(root / GLOBAL_DATA)
        gopts, countries, gprobs = {}, {}, {}
        for q, e in gdata.items():
            raw = e["MC_options"]
            opts = literal_list(raw, file=root / GLOBAL_DATA, where=q[:60]) if isinstance(raw, str) else raw
            gopts[q] = tuple(map(str, opts))
            countries[q] = tuple(map(str, e["countries"]))
            gprobs.update({(q, c): np.asarray(e[c], dtype=float) for c in countries[q] if c in e})
        return cls(tables, oqa, nyt, gopts, countries, gprobs)

    def options(
        self, dataset: str, question: str, attribute: str | None, group: str | None, n: int
    ) -> list | None:
        """The labels behind letters A, B, ... (``n`` of them), or ``None`` when the release cannot tell."""
        if dataset == "nyt_books":
            shown = self.nyt_options.get(question)
        elif dataset == "global_opinions":
            shown = self.global_options.get(question)
        else:
            table_attr, table_group = (attribute, group) if attribute else ("POLPARTY", "Democrat")
            counts = self.oqa_tables.get(table_attr, {}).get(question, {}).get(table_group)
            if isinstance(counts, dict):
                shown = tuple(counts)
            else:  # no table shipped: the count tables are alphabetical, so a full one is the sorted labels
                labels = self.oqa_options.get(question, ())
                shown = tuple(sorted(labels)) if len(labels) == n else None
        return list(shown) if shown is not None and len(shown) == n >= 2 else None

    def country(self, question: str, slot: int, target: Sequence[float]) -> str | None:
        """The country of slot ``slot``, or, when the release's stored target is another country's
        distribution (one run used a shifted country list), that country."""
        countries = self.global_countries.get(question, ())
        t = np.asarray(list(target), dtype=float)

        def same(c: str) -> bool:
            p = self.global_probs.get((question, c))
            return p is not None and p.shape == t.shape and bool(np.allclose(p, t))

        if slot < len(countries) and (t.size == 0 or same(countries[slot])):
            return countries[slot]
        hits = [c for c in countries if same(c)]
        if len(hits) == 1:
            return hits[0]
        return countries[slot] if slot < len(countries) else None


def _result_files(root: Path) -> Iterator[tuple[str, str, str, str, tuple[str, ...], Path]]:
    """(dataset dir, output, model, task, folders below the task, file) for every results file."""
    base = root / RESULTS
    for ds in DATASET_DIRS:
        for output in METHODS:
            folder = base / ds / output
            for path in sorted(folder.glob("*/*/**/*.json")):
                model, task, *below = path.relative_to(folder).parts
                yield ds, output, model, task, tuple(below), path


def _letters(entry: Mapping[str, Any]) -> list[str]:
    return list(entry.get("avg_actual_results") or {})


def _n_shown(entry: Mapping[str, Any]) -> int:
    """How many options the prompt showed: the letters of the stored target (a model may answer with
    letters it was not shown)."""
    for key in ("expected_results", "expected_results_NONE_Democrat", "expected_results_POLPARTY_Democrat"):
        target = entry.get(key)
        if isinstance(target, dict) and target:
            return len(target)
    return len(_letters(entry))


def _finite_or_nan(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


#: what the release's own evaluation made of a row: its TV (NaN where it had none) and the total of its
#: parsed per-letter numbers (a sequence or answer it could not read totals 0; log-p mass off the letters
#: makes it < 1)
PROVENANCE: tuple[str, ...] = ("release_tv", "release_mass")


def _release_view(entry: Mapping[str, Any]) -> tuple[float, float]:
    """The release's TV of a steered row (its parsed numbers against its stored target, unnormalised, as
    its evaluation computed it) and the total of the parsed numbers."""
    parsed = [_finite_or_nan(x) for x in (entry.get("avg_actual_results") or {}).values()]
    # numpy's summation order: totals of exactly 0.99 sit on the 1% boundary of ``off``
    mass = float(np.sum(parsed)) if parsed else math.nan
    target = entry.get("expected_results")
    if not parsed or not isinstance(target, dict) or len(target) != len(parsed):
        return math.nan, mass
    stored = [_finite_or_nan(x) for x in target.values()]
    return 0.5 * sum(abs(p - t) for p, t in zip(parsed, stored, strict=True)), mass


def import_release(data_dir: str | Path | None = None, provenance: bool = False) -> pd.DataFrame:
    """Every model output of the release as one predictions row (``COLUMNS``; ``source`` is the file,
    relative to the release root); with ``provenance``, also ``PROVENANCE`` (see there)."""
    root = resolve_data_dir(data_dir)
    if not (root / RESULTS).is_dir():
        raise InputError(
            "the release's model outputs (results/) are not here; get them with "
            "`distalign data download meister2024` or point --data-dir at the release",
            file=root / RESULTS,
        )
    shown = _Shown.read(root)
    rows: list[tuple] = []
    for ds, output, model, task, below, path in _result_files(root):
        dataset, method = DATASET_DIRS[ds], METHODS[output]
        attribute, group_file = below[-2], below[-1].removesuffix(".json")
        steering = steering_of(task)
        source = str(path.relative_to(root))
        for question, entry in read_json(path).items():
            letters = _letters(entry)
            if dataset == "global_opinions":
                attr: str | None = COUNTRY
                group = shown.country(
                    question, int(group_file), (entry.get("expected_results") or {}).values()
                )
            elif attribute == NO_GROUP:
                attr, group = None, None
            else:
                attr, group = attribute, group_file
            n = _n_shown(entry)
            options = shown.options(dataset, question, attr, group, n)
            if method in PROB_METHODS:
                probs = [_finite_or_nan(entry["avg_actual_results"][x]) for x in letters]
                options = options if len(probs) == n else None
                response = None
            else:
                probs, response = None, [str(r) for r in entry.get("response") or []]
            row = (model, method, steering, dataset, question, attr, group, probs, response, options, source)
            rows.append(row + _release_view(entry) if provenance else row)
    df = pd.DataFrame(rows, columns=[*COLUMNS, *(PROVENANCE if provenance else ())])
    # GPT-3.5's GlobalOpinionQA persona sequences come in two file sets whose country lists are shifted
    # against each other, so some countries were asked twice: the later answer is a re-run, as the
    # release's own re-runs are (``few_shot_v1``), not a second prediction for the same pair
    again = df.duplicated(list(KEYS), keep="first")
    df.loc[again, "steering"] = df.loc[again, "steering"] + RERUN
    return df


__all__ = [
    "COLUMNS",
    "PROVENANCE",
    "DATASET_DIRS",
    "METHODS",
    "MODELS",
    "STEERING",
    "import_release",
    "steering_of",
]

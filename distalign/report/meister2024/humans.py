"""The human-annotator study (Table 2): people estimating a group's answer distribution, read from the
survey tool's exports in ``results/human_annotations/`` into predictions rows (model ``human``).

An export has one column per question x block x option, named ``{N}_{block}_{k}`` (``k`` = 1 for option A,
2 for B, ...), holding the percentage an annotator gave; its first two rows are the question texts and
import ids. The question behind ``N`` is read from the header of ``{N}_Q138`` (the question, or the book,
with its options as shown), so nothing depends on the order of the items. Blocks are the groups: no
steering asks one question per item (``Q_NoSteering``, scored against every group); under persona and
few-shot steering ``Q_NoSteering`` is the Democrat block (as in the authors' evaluation), ``Q135``
Republicans, ``Q136`` men, ``Q137`` women, ``Q138`` Black and ``Q139`` White people.

A group's estimate is the mean of the first ``max_annotators`` complete answers in the export's order
(the authors' protocol: four per question), renormalised by the scorer.
"""

from __future__ import annotations

import csv
import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from distalign.errors import InputError
from distalign.survey.nyt import DATA as NYT_DATA
from distalign.survey.opinionqa import pool_dir
from distalign.survey.parsing import read_json
from distalign.survey.paths import data_dir as resolve_data_dir

ANNOTATIONS = "results/human_annotations"
HUMAN = "human"
METHOD = "estimate"
#: (dataset, steering) -> the exports the authors' evaluation read. The NYT persona survey was exported
#: twice; the July 3 export holds every response of the July 2 one plus one more.
EXPORTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("opinionqa", "none"): ("Distributional_Alignment_No_Steering_May 21, 2024_18.01.csv",),
    ("opinionqa", "persona"): ("Distributional_Alignment_Persona_Steering_May 21, 2024_19.06.csv",),
    ("opinionqa", "few_shot"): ("Distributional_Alignment_FewShot_Steering_May 21, 2024_18.00.csv",),
    ("nyt_books", "none"): (
        "Distributional_Alignment_No_Steering - NYT_July 1, 2024_12.41.csv",
        "Distributional_Alignment_No_Steering - NYT - V2_July 2, 2024_18.52.csv",
    ),
    ("nyt_books", "persona"): ("Distributional_Alignment_Persona_Steering - NYT_July 3, 2024_10.32.csv",),
    ("nyt_books", "few_shot"): ("Distributional_Alignment_FewShot_Steering - NYT_July 17, 2024_10.52.csv",),
}
NO_STEERING_BLOCK = "Q_NoSteering"
#: block -> (attribute, group, a word its header text must contain; None: the header does not say)
BLOCKS: dict[str, dict[str, tuple[str, str, str | None]]] = {
    "opinionqa": {
        NO_STEERING_BLOCK: ("POLPARTY", "Democrat", None),
        "Q135": ("POLPARTY", "Republican", "republican"),
        "Q136": ("SEX", "Male", "men"),
        "Q137": ("SEX", "Female", "women"),
        "Q138": ("RACE", "Black", "black"),
        "Q139": ("RACE", "White", "white"),
    },
    "nyt_books": {
        NO_STEERING_BLOCK: ("POLPARTY", "Democrat", None),
        "Q135": ("POLPARTY", "Republican", "republican"),
        "Q136": ("SEX", "Male", "men"),
        "Q137": ("SEX", "Female", "women"),
    },
}
QUESTION_BLOCK = "Q138"  # the block without an option suffix: the annotator's own answer, with the question
_HEADER = re.compile(r"^(?P<text>.*?)<br>(?P<options>(?:[A-Z]\. [^<]*<br>)+)\s*-", re.S)
_OPTION = re.compile(r"[A-Z]\. ([^<]*)<br>")
DERIVED = {"opinionqa": "OQA_human_tv_data.json", "nyt_books": "NYT_human_tv_data.json"}
#: the annotators' own demographics in the exports: attribute -> (column, {group: the answer given})
ANNOTATOR_COLUMNS: dict[str, tuple[str, dict[str, str]]] = {
    "POLPARTY": ("Q_DemRepub", {"Democrat": "Democrat", "Republican": "Republican"}),
    "SEX": ("QDem_Gend", {"Male": "Male", "Female": "Female"}),
    "RACE": ("QDem_Race", {"Black": "Black or African American", "White": "White or Caucasian American"}),
}
IN_GROUP, OUT_GROUP = "in-group", "out-group"
_DERIVED_STEERING = {"nosteer": "none", "persona": "persona", "fewshot": "few_shot"}


def _clean(text: str) -> str:
    return " ".join(html.unescape(text).split())


def _item_keys(root: Path, dataset: str) -> dict[str, str]:
    """Displayed text -> item id: OpinionQA question texts (as the survey tool showed them), NYT titles."""
    if dataset == "nyt_books":
        return {_clean(t): t for t in read_json(root / NYT_DATA)}
    out: dict[str, str] = {}
    for path in sorted((root / pool_dir("100")).glob("*_data.json")):
        for key, entry in read_json(path).items():
            out[_clean(str(entry.get("question_text", ""))).rstrip("?").strip()] = key
    return out


def _questions(header: pd.Series, dataset: str, keys: Mapping[str, str], file: Path) -> dict[str, tuple]:
    """Question number -> (item id, options as shown), from the ``{N}_Q138`` column headers."""
    out = {}
    for column, text in header.items():
        m = re.fullmatch(rf"(\d+)_{QUESTION_BLOCK}", str(column))
        if not m:
            continue
        h = _HEADER.match(str(text))
        if h is None:
            raise InputError(
                "cannot read the question and its options from the header", file=file, where=column
            )
        shown = [_clean(o) for o in _OPTION.findall(h["options"])]
        first_line = _clean(h["text"].split("<br>")[0])
        if dataset == "nyt_books":
            text = first_line.removeprefix("Book Title:").strip()
        else:
            text = first_line.removeprefix("Question:").strip().rstrip("?").strip()
        if text not in keys:
            raise InputError(f"question {text[:80]!r} is not an item of {dataset}", file=file, where=column)
        out[m.group(1)] = (keys[text], shown)
    return out


_ESTIMATE = re.compile(r"\d+_Q\w+_\d+")


def _records(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise InputError(
            "annotation export not found; get the release's results with `distalign data download "
            "meister2024` or point --data-dir at the release",
            file=path,
        )
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read the survey-tool export: {exc}", file=path) from None


@dataclass(frozen=True)
class _Export:
    """One export: its question-text header row, the estimate columns as one float matrix and the
    annotators' own demographics (``ANNOTATOR_COLUMNS``)."""

    header: pd.Series
    values: np.ndarray  # (annotators, estimate columns); NaN where not answered
    column: Mapping[str, int]
    own: Mapping[str, np.ndarray]  # demographic column -> each annotator's answer ("" where absent)

    @classmethod
    def read(cls, paths: Sequence[Path]) -> _Export:
        """Exports of one survey (several when it was exported in parts; columns matched by name),
        answers in file order."""
        columns: list[str] = []
        header = pd.Series(dtype=object)
        parts: list[np.ndarray] = []
        own: dict[str, list[str]] = {c: [] for c, _ in ANNOTATOR_COLUMNS.values()}
        for path in paths:
            records = _records(path)
            if len(records) < 3:
                raise InputError("expected a survey-tool export (three header rows, then answers)", file=path)
            names = records[0]
            position = {c: i for i, c in enumerate(names)}
            if not columns:
                columns = [c for c in names if _ESTIMATE.fullmatch(c)]
                header = pd.Series(records[1], index=names)
            missing = [c for c in columns if c not in position]
            if missing:
                raise InputError(f"column {missing[0]!r} of the survey's other export is missing", file=path)
            idx = [position[c] for c in columns]
            cells = np.array([[r[i] if i < len(r) else "" for i in idx] for r in records[3:]], dtype=object)
            flat = pd.to_numeric(pd.Series(cells.ravel(), dtype=object), errors="coerce")
            parts.append(flat.to_numpy(dtype=float).reshape(len(records) - 3, len(idx)))
            for c, answers in own.items():
                i = position.get(c)
                answers += [r[i] if i is not None and i < len(r) else "" for r in records[3:]]
        values = np.vstack(parts) if parts else np.zeros((0, len(columns)))
        mine = {c: np.asarray(a, dtype=object) for c, a in own.items()}
        return cls(header, values, {c: j for j, c in enumerate(columns)}, mine)

    def where(self, column: str, answer: str) -> _Export:
        """The annotators who gave ``answer`` to the demographic question ``column``, in file order."""
        keep = self.own[column] == answer
        return _Export(self.header, self.values[keep], self.column, {c: a[keep] for c, a in self.own.items()})

    def estimate(
        self, number: str, block: str, n_options: int, max_annotators: int | None
    ) -> tuple[np.ndarray, int] | None:
        """Mean percentages of the first complete answers to one question block, and how many were used."""
        idx = [self.column.get(f"{number}_{block}_{k}") for k in range(1, n_options + 1)]
        if any(i is None for i in idx):
            return None
        x = self.values[:, idx]
        x = x[np.isfinite(x).all(axis=1) & (x.sum(axis=1) > 0)]
        if max_annotators is not None:
            x = x[:max_annotators]
        if not len(x):
            return None
        return x.mean(axis=0), len(x)


def read_exports(
    data_dir: str | Path | None = None, keys: Iterable[tuple[str, str]] = tuple(EXPORTS)
) -> dict[tuple[str, str], _Export]:
    """The exports of ``EXPORTS`` (those of ``keys``: (dataset, steering)), each read once."""
    root = resolve_data_dir(data_dir)
    return {key: _Export.read([root / ANNOTATIONS / f for f in EXPORTS[key]]) for key in keys}


def _block_rows(
    export: _Export,
    dataset: str,
    steering: str,
    questions: Mapping[str, tuple],
    blocks: Mapping[str, tuple[str | None, str | None, str | None]],
    max_annotators: int | None,
    file: Path,
    **extra: str,
) -> list[dict]:
    """One predictions row per question x block with the annotators' mean estimate."""
    header, rows = export.header, []
    for block, (attribute, group, word) in blocks.items():
        first = next((f"{n}_{block}_1" for n in questions if f"{n}_{block}_1" in header.index), None)
        if first is None:
            raise InputError(f"no columns of block {block!r}", file=file)
        if word is not None and not re.search(rf"\b{word}s?\b", str(header[first]).lower()):
            raise InputError(f"block {block!r} was expected to ask about {group}", file=file)
        for number, (item_id, shown) in questions.items():
            est = export.estimate(number, block, len(shown), max_annotators)
            if est is None:
                continue
            mean, n = est
            rows.append(
                {
                    "model": HUMAN,
                    "method": METHOD,
                    "steering": steering,
                    "dataset": dataset,
                    "item_id": item_id,
                    "attribute": attribute,
                    "group": group,
                    "probs": mean.tolist(),
                    "options": shown,
                    "n_annotators": n,
                    "source": f"{ANNOTATIONS}/{EXPORTS[(dataset, steering)][0]}",
                    **extra,
                }
            )
    return rows


def _questions_of(root: Path, dataset: str, export: _Export, file: Path) -> dict[str, tuple]:
    return _questions(export.header, dataset, _item_keys(root, dataset), file)


def human_predictions(
    data_dir: str | Path | None = None,
    max_annotators: int | None = 4,
    exports: Mapping[tuple[str, str], _Export] | None = None,
) -> pd.DataFrame:
    """One predictions row per dataset x steering x item x group with the annotators' mean estimate
    (``probs`` aligned with ``options`` as shown); extra columns ``n_annotators`` and ``source``.
    ``exports``: those of ``read_exports`` (read here when not given)."""
    root = resolve_data_dir(data_dir)
    exports = exports if exports is not None else read_exports(root)
    rows = []
    for (dataset, steering), export in exports.items():
        file = root / ANNOTATIONS / EXPORTS[(dataset, steering)][0]
        questions = _questions_of(root, dataset, export, file)
        blocks = {NO_STEERING_BLOCK: (None, None, None)} if steering == "none" else BLOCKS[dataset]
        rows += _block_rows(export, dataset, steering, questions, blocks, max_annotators, file)
    return pd.DataFrame(rows)


def in_out_group_predictions(
    data_dir: str | Path | None = None,
    max_annotators: int | None = 4,
    exports: Mapping[tuple[str, str], _Export] | None = None,
) -> pd.DataFrame:
    """The annotators split by their own group (persona and few-shot steering): ``method`` ``in-group``
    rows are the estimates of a group's members for their own group, ``out-group`` rows the same members'
    estimates for the other group of the attribute (Democrats estimating Republicans, ...), each from the
    first ``max_annotators`` complete answers of those members; ``annotators`` names the members' group.
    This is the split of the authors' notebooks (annotators filtered on their answer to the demographic
    question, then estimates of their own vs the other group)."""
    root = resolve_data_dir(data_dir)
    exports = exports if exports is not None else read_exports(root)
    rows = []
    for (dataset, steering), export in exports.items():
        if steering == "none":
            continue
        file = root / ANNOTATIONS / EXPORTS[(dataset, steering)][0]
        questions = _questions_of(root, dataset, export, file)
        blocks = BLOCKS[dataset]
        for block, spec in blocks.items():
            attribute, group, _ = spec
            column, answers = ANNOTATOR_COLUMNS[str(attribute)]
            members = export.where(column, answers[str(group)])
            (other,) = [b for b, s in blocks.items() if s[0] == attribute and b != block]
            for method, chosen in ((IN_GROUP, block), (OUT_GROUP, other)):
                part = _block_rows(
                    members, dataset, steering, questions, {chosen: blocks[chosen]}, max_annotators, file,
                    annotators=str(group),
                )  # fmt: skip
                rows += [r | {"method": method} for r in part]
    return pd.DataFrame(rows)


def derived_human_tvs(data_dir: str | Path | None = None) -> pd.DataFrame:
    """The per-pair TVs the authors derived (``*_human_tv_data.json``): dataset, steering, tv."""
    root = resolve_data_dir(data_dir)
    frames = []
    for dataset, name in DERIVED.items():
        data = read_json(root / ANNOTATIONS / name)
        for key, steering in _DERIVED_STEERING.items():
            tv = np.asarray(data.get(key, []), dtype=float)
            frames.append(pd.DataFrame({"dataset": dataset, "steering": steering, "tv": tv}))
    return pd.concat(frames, ignore_index=True)


__all__ = [
    "ANNOTATOR_COLUMNS",
    "EXPORTS",
    "HUMAN",
    "IN_GROUP",
    "OUT_GROUP",
    "derived_human_tvs",
    "human_predictions",
    "in_out_group_predictions",
    "read_exports",
]

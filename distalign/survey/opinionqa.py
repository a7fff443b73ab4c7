"""OpinionQA (Santurkar et al. 2023) as used by the distributional-alignment benchmark.

Conventions (checked against the release): options and ordinal positions come from the 500-pool
``info.csv`` (its ``references`` list is complete and properly quoted, "Refused" last); the ``MC_options`` of
the JSON files are ignored because some are split at commas. Count tables omit options nobody in a group
chose (probability 0). Groups without respondents are skipped. Question text comes from ``info.csv`` too
(it is the wording shown to every group; the JSON sometimes holds a group-specific variant).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from distalign.errors import InputError
from distalign.survey.model import Example, GroupDistribution, Item, Survey
from distalign.survey.parsing import counts_to_probs, literal_list, read_json
from distalign.survey.paths import require_files

DATASET = "opinionqa"
HUMAN_RESP = "opinions_qa/data/human_resp"
#: attribute -> the groups the benchmark evaluates, in report order.
GROUPS: dict[str, tuple[str, ...]] = {
    "POLPARTY": ("Democrat", "Republican"),
    "SEX": ("Male", "Female"),
    "RACE": ("Black", "White"),
}
Pool = Literal["100", "500"]


def pool_dir(pool: str) -> str:
    return f"{HUMAN_RESP}/Pew_American_Trends_Panel_disagreement_{pool}"


INFO = f"{pool_dir('500')}/info.csv"
SIMILARITY = "question_similarity_top10.json"


def required_files(pool: str = "100") -> list[str]:
    files = [f"{pool_dir(p)}/{a}_data.json" for p in dict.fromkeys((pool, "500")) for a in GROUPS]
    return [*files, INFO, f"{pool_dir(pool)}/{SIMILARITY}"]


@dataclass(frozen=True)
class _Question:
    text: str
    options: tuple[str, ...]
    ordinal: tuple[float | None, ...]
    wave: str


def _read_info(path: Path) -> dict[str, _Question]:
    out: dict[str, _Question] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"key", "question", "references", "option_ordinal"} - set(reader.fieldnames or ())
        if missing:
            raise InputError(f"missing column(s) {sorted(missing)}", file=path)
        for row_no, row in enumerate(reader, start=1):
            where = f"row {row_no} (key {row['key']!r})"
            refs = literal_list(row["references"], file=path, where=f"{where}, references")
            options = tuple(str(o) for o in refs)
            ords_in = literal_list(row["option_ordinal"], file=path, where=f"{where}, option_ordinal")
            ords = [float(x) for x in ords_in]
            if len(ords) > len(options):
                raise InputError(
                    f"{len(ords)} ordinal positions for {len(options)} options", file=path, where=where
                )
            # The release lists positions for the substantive options, which come first; the rest
            # ("Not sure", "Refused") carry no position.
            ordinal = tuple(ords) + (None,) * (len(options) - len(ords))
            out[row["key"]] = _Question(row["question"], options, ordinal, row.get("survey", ""))
    return out


def _group_probs(entry: dict, group: str, q: _Question, *, file: Path, key: str) -> tuple | None:
    counts = entry.get(group)
    if not isinstance(counts, dict):
        return None
    unknown = [label for label in counts if label not in q.options]
    if unknown:
        raise InputError(
            f"count for option {unknown[0]!r} not among the options {list(q.options)} of info.csv",
            file=file,
            where=f"question {key!r}, group {group!r}",
        )
    return counts_to_probs(counts, q.options)


def load_opinionqa(root: str | Path, pool: Pool = "100") -> Survey:
    """The 100 contentious questions (or the 500-question pool) with six evaluated groups."""
    if pool not in ("100", "500"):
        raise InputError(f"unknown OpinionQA pool {pool!r}; use '100' or '500'")
    root = Path(root)
    require_files(root, required_files(pool), DATASET if pool == "100" else f"{DATASET}_{pool}")
    info = _read_info(root / INFO)
    data_files = {a: root / pool_dir(pool) / f"{a}_data.json" for a in GROUPS}
    data = {a: read_json(f) for a, f in data_files.items()}
    cand_files = {a: root / pool_dir("500") / f"{a}_data.json" for a in GROUPS}
    cand = data if pool == "500" else {a: read_json(f) for a, f in cand_files.items()}
    similarity = read_json(root / pool_dir(pool) / SIMILARITY)

    keys = list(dict.fromkeys(k for a in GROUPS for k in data[a]))
    items: dict[str, Item] = {}
    dists: list[GroupDistribution] = []
    similar: dict[tuple[str, str], tuple[Example, ...]] = {}
    examples: dict[tuple[str, str, str], Example | None] = {}

    def example(cand_key: str, attribute: str, group: str) -> Example | None:
        memo = (cand_key, attribute, group)
        if memo not in examples:
            q, entry = info.get(cand_key), cand[attribute].get(cand_key)
            res = None
            if q is not None and entry is not None:
                res = _group_probs(entry, group, q, file=cand_files[attribute], key=cand_key)
            probs = None if res is None else tuple(map(float, res[0]))
            examples[memo] = None if probs is None else Example(cand_key, q.text, q.options, probs)
        return examples[memo]

    for key in keys:
        q = info.get(key)
        if q is None:
            raise InputError(f"question {key!r} has no row in info.csv", file=root / INFO)
        items[key] = Item(DATASET, key, q.text, q.options, q.ordinal, {"survey": q.wave})
        for attribute, groups in GROUPS.items():
            entry = data[attribute].get(key)
            if entry is None:
                continue
            for group in groups:
                res = _group_probs(entry, group, q, file=data_files[attribute], key=key)
                if res is None:
                    continue  # nobody in this group answered (e.g. FEM2_W29 has no Male respondents)
                dists.append(GroupDistribution(DATASET, key, attribute, group, res[0], res[1]))
                cands = (example(c, attribute, group) for c in similarity.get(key, ()) if c != key)
                similar[(key, group)] = tuple(e for e in cands if e is not None)
    name = DATASET if pool == "100" else f"{DATASET}_{pool}"
    return Survey(name, items, tuple(dists), similar, source=str(root / pool_dir(pool)))

"""NYT Book Opinions: how likely a group is to read a book, on a 4-point Likert scale.

The item is the book. Its ``question`` is the book's description (title, genre, summary), so a few-shot
``Example`` carries everything needed to show the book; the prompt template asks the Likert question.
"""

from __future__ import annotations

from pathlib import Path

from distalign.errors import InputError
from distalign.survey.model import Example, GroupDistribution, Item, Survey
from distalign.survey.parsing import counts_to_probs, read_json
from distalign.survey.paths import require_files

DATASET = "nyt_books"
DATA = "nytimes/data.json"
SIMILARITY = "nytimes/question_similarity_top10.json"
GROUPS: dict[str, tuple[str, ...]] = {"POLPARTY": ("Democrat", "Republican"), "SEX": ("Male", "Female")}


def book_text(title: str, genre: str, summary: str) -> str:
    return f"Book Title: {title}\nBook Genre: {genre}\nBook Summary: {summary}"


def load_nyt_books(root: str | Path) -> Survey:
    """235 books x {Democrat, Republican, Male, Female}; p = count / total."""
    root = Path(root)
    require_files(root, (DATA, SIMILARITY), DATASET)
    path = root / DATA
    data = read_json(path)
    similarity = read_json(root / SIMILARITY)

    items: dict[str, Item] = {}
    dists: list[GroupDistribution] = []
    probs: dict[tuple[str, str], tuple[float, ...]] = {}
    for title, entry in data.items():
        options = tuple(str(o) for o in entry.get("MC_options", ()))
        if len(options) < 2:
            raise InputError("MC_options must list at least two options", file=path, where=f"book {title!r}")
        genre, summary = str(entry.get("genre", "")), str(entry.get("summary", ""))
        items[title] = Item(
            DATASET,
            title,
            book_text(title, genre, summary),
            options,
            tuple(float(i) for i in range(1, len(options) + 1)),
            {"title": title, "genre": genre, "summary": summary},
        )
        for attribute, groups in GROUPS.items():
            for group in groups:
                counts = entry.get(group)
                if not isinstance(counts, dict):
                    continue
                unknown = [label for label in counts if label not in options]
                if unknown:
                    raise InputError(
                        f"count for option {unknown[0]!r} not among MC_options {list(options)}",
                        file=path,
                        where=f"book {title!r}, group {group!r}",
                    )
                res = counts_to_probs(counts, options)
                if res is None:
                    continue
                dists.append(GroupDistribution(DATASET, title, attribute, group, res[0], res[1]))
                probs[(title, group)] = tuple(map(float, res[0]))

    similar: dict[tuple[str, str], tuple[Example, ...]] = {}
    for d in dists:
        cands = [c for c in similarity.get(d.item_id, ()) if c != d.item_id and (c, d.group) in probs]
        similar[(d.item_id, d.group)] = tuple(
            Example(c, items[c].question, items[c].options, probs[(c, d.group)]) for c in cands
        )
    return Survey(DATASET, items, tuple(dists), similar, source=str(path))

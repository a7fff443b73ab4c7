"""The survey data model: items, group distributions and few-shot examples.

Records are frozen so they can be shared across cells and Ray workers without defensive copies.
Probabilities are numpy arrays aligned with ``Item.options``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

DATASETS: tuple[str, ...] = ("opinionqa", "nyt_books", "global_opinions")
NON_SUBSTANTIVE_LABELS: frozenset[str] = frozenset(
    {"refused", "dk/refused", "don't know", "dont know", "don't know/refused", "no answer"}
)


def is_non_substantive(label: str) -> bool:
    """Heuristic used when a release does not say which options carry no opinion."""
    return label.strip().lower() in NON_SUBSTANTIVE_LABELS


@dataclass(frozen=True)
class Item:
    """One survey question as shown to respondents and models."""

    dataset: str
    id: str
    question: str
    options: tuple[str, ...]
    #: ordinal position of each option (Santurkar et al.); ``None`` for non-substantive options.
    ordinal: tuple[float | None, ...]
    metadata: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if len(self.options) < 2:
            raise ValueError(f"item {self.id!r} of {self.dataset!r}: needs at least 2 options")
        if len(self.ordinal) != len(self.options):
            raise ValueError(
                f"item {self.id!r} of {self.dataset!r}: {len(self.ordinal)} ordinal positions "
                f"for {len(self.options)} options"
            )
        if len(set(self.options)) != len(self.options):
            raise ValueError(f"item {self.id!r} of {self.dataset!r}: duplicate option labels")

    @property
    def n_options(self) -> int:
        return len(self.options)

    @property
    def substantive(self) -> np.ndarray:
        """Boolean mask of options that express an opinion."""
        return np.array([o is not None for o in self.ordinal], dtype=bool)

    @property
    def non_substantive(self) -> tuple[int, ...]:
        return tuple(i for i, o in enumerate(self.ordinal) if o is None)

    def option_index(self, label: str) -> int:
        """Index of an option label, matched exactly, then case- and space-insensitively."""
        try:
            return self.options.index(label)
        except ValueError:
            norm = label.strip().casefold()
            for i, opt in enumerate(self.options):
                if opt.strip().casefold() == norm:
                    return i
            raise KeyError(f"item {self.id!r}: unknown option {label!r}") from None


@dataclass(frozen=True)
class GroupDistribution:
    """The human answer distribution of one group on one item."""

    dataset: str
    item_id: str
    attribute: str
    group: str
    probs: np.ndarray
    n_respondents: float | None = None

    def __post_init__(self) -> None:
        p = np.asarray(self.probs, dtype=float)
        if (
            p.ndim != 1
            or not np.all(np.isfinite(p))
            or np.any(p < 0)
            or not np.isclose(p.sum(), 1.0, atol=1e-6)
        ):
            raise ValueError(
                f"{self.dataset}/{self.item_id}/{self.attribute}={self.group}: "
                f"probabilities must be finite, non-negative and sum to 1 (got {p.tolist()})"
            )
        p.setflags(write=False)
        object.__setattr__(self, "probs", p)


@dataclass(frozen=True)
class Example:
    """A solved question used as a few-shot demonstration: its text, options and true distribution."""

    id: str
    question: str
    options: tuple[str, ...]
    probs: tuple[float, ...]


@dataclass(frozen=True)
class Survey:
    """A dataset: items, the group distributions evaluated on them, and few-shot candidates.

    ``similar`` maps ``(item_id, group)`` -> the candidate demonstrations for that group, most similar
    first (the release ships these lists; a custom survey computes them with an embedding model).
    """

    name: str
    items: Mapping[str, Item]
    distributions: tuple[GroupDistribution, ...]
    similar: Mapping[tuple[str, str], tuple[Example, ...]] = field(default_factory=dict, compare=False)
    source: str = ""

    def __post_init__(self) -> None:
        for d in self.distributions:
            item = self.items.get(d.item_id)
            if item is None:
                raise ValueError(f"{self.name}: distribution for unknown item {d.item_id!r}")
            if len(d.probs) != item.n_options:
                raise ValueError(
                    f"{self.name}/{d.item_id}/{d.attribute}={d.group}: {len(d.probs)} probabilities "
                    f"for {item.n_options} options"
                )

    def __len__(self) -> int:
        return len(self.distributions)

    def __iter__(self) -> Iterator[GroupDistribution]:
        return iter(self.distributions)

    @cached_property
    def digest(self) -> str:
        """sha256 of the survey's content (items, distributions, few-shot candidates), not of where it was
        read from: part of every cell's identity, so edited data re-runs its cells and a moved folder
        does not."""
        h = hashlib.sha256()

        def put(*parts: object) -> None:
            for part in parts:
                text = repr(part)
                h.update(f"{len(text)}:{text}".encode())

        put(self.name)
        for item in self.items.values():
            put(item.dataset, item.id, item.question, item.options, item.ordinal)
            put(sorted(item.metadata.items()))
        for d in self.distributions:
            put(d.item_id, d.attribute, d.group, np.asarray(d.probs, dtype=float).tobytes(), d.n_respondents)
        for key in sorted(self.similar):
            put(key, [(e.id, e.question, e.options, e.probs) for e in self.similar[key]])
        return h.hexdigest()

    def for_item(self, item_id: str) -> list[GroupDistribution]:
        return list(self._by_item.get(item_id, ()))

    @cached_property
    def _by_item(self) -> dict[str, tuple[GroupDistribution, ...]]:
        """The distributions of each item (a sweep asks once per prompt; a scan would be quadratic)."""
        out: dict[str, list[GroupDistribution]] = {}
        for d in self.distributions:
            out.setdefault(d.item_id, []).append(d)
        return {k: tuple(v) for k, v in out.items()}

    def groups(self) -> list[tuple[str, str]]:
        """Distinct (attribute, group) pairs in first-seen order."""
        return list(dict.fromkeys((d.attribute, d.group) for d in self.distributions))

    def examples(self, item_id: str, group: str) -> tuple[Example, ...]:
        return tuple(self.similar.get((item_id, group), ()))

    def subset(self, item_ids: Sequence[str]) -> Survey:
        """The same survey restricted to some items (few-shot candidates are kept whole)."""
        keep = [i for i in item_ids if i in self.items]
        ks = set(keep)
        return Survey(
            name=self.name,
            items={i: self.items[i] for i in keep},
            distributions=tuple(d for d in self.distributions if d.item_id in ks),
            similar=self.similar,
            source=self.source,
        )

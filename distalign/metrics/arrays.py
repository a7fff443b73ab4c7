"""Padded 2-D arrays for distributions of varying length.

Items have different numbers of options, yet every metric must run on all (item, group) rows at
once. Rows are therefore zero-padded to a common width ``K`` and carried with a boolean mask of the
valid options; padded entries hold probability 0, so sums and distances over the last axis ignore
them without special cases.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from distalign.errors import InputError


def pad(rows: Sequence[Sequence[float | None]], fill: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Stack ragged rows into ``(values, mask)`` of shape ``(n, K)``, ``K`` = the longest row.

    ``None`` inside a row becomes NaN (ordinal positions of non-substantive options); it is still a
    valid option as far as the mask is concerned.
    """
    arrays = []
    for i, row in enumerate(rows):
        try:
            a = np.asarray(row, dtype=float)
        except (TypeError, ValueError) as exc:
            raise InputError(f"not a list of numbers: {exc}", where=f"row {i}") from None
        if a.ndim != 1:
            raise InputError(f"expected a 1-D row, got shape {a.shape}", where=f"row {i}")
        arrays.append(a)
    lengths = np.array([a.size for a in arrays], dtype=int)
    width = int(lengths.max()) if lengths.size else 0
    mask = np.arange(width)[None, :] < lengths[:, None]
    values = np.full((len(arrays), width), fill, dtype=float)
    if arrays:
        values[mask] = np.concatenate(arrays)
    return values, mask


def unpad(values: np.ndarray, mask: np.ndarray) -> list[np.ndarray]:
    """Inverse of :func:`pad`: the valid entries of each row."""
    values, mask = np.asarray(values), np.asarray(mask, dtype=bool)
    return [v[m] for v, m in zip(values, mask, strict=True)]


def as_array(x: object, name: str, *, nonnegative: bool = True) -> np.ndarray:
    """A float array, checked to be finite (and non-negative) so that metrics never emit NaN silently."""
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"not numeric: {exc}", where=name) from None
    if not np.all(np.isfinite(a)):
        raise InputError("contains NaN or infinite values", where=name)
    if nonnegative and np.any(a < 0):
        raise InputError("contains negative probabilities", where=name)
    return a


def as_mask(mask: object | None, shape: tuple[int, ...], name: str = "mask") -> np.ndarray:
    """A boolean mask of ``shape``; ``None`` means every entry is valid."""
    if mask is None:
        return np.ones(shape, dtype=bool)
    m = np.asarray(mask)
    if m.dtype != bool:
        raise InputError(f"expected a boolean mask, got dtype {m.dtype}", where=name)
    if m.shape != shape:
        raise InputError(f"shape {m.shape} does not match the values' shape {shape}", where=name)
    return m


def same_shape(a: np.ndarray, b: np.ndarray, names: tuple[str, str] = ("p", "q")) -> None:
    """Refuse silent broadcasting between two distributions."""
    if a.shape != b.shape:
        raise InputError(f"shapes differ: {names[0]} {a.shape} vs {names[1]} {b.shape}", where=names[1])


def renormalise(p: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Restrict each row to its valid options and rescale it to sum to 1.

    A row with no mass on its valid options becomes uniform over them (no evidence either way, and
    it keeps every later metric finite); a row with no valid option stays all zero.
    """
    p = as_array(p, "p")
    m = as_mask(mask, p.shape)
    kept = np.where(m, p, 0.0)
    total = kept.sum(axis=-1, keepdims=True)
    n_valid = m.sum(axis=-1, keepdims=True)
    uniform = np.divide(m, n_valid, out=np.zeros(p.shape), where=n_valid > 0)
    scaled = np.divide(kept, total, out=np.zeros(p.shape), where=total > 0)
    return np.where(total > 0, scaled, uniform)

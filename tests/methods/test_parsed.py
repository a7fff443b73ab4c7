"""``Parsed`` refuses anything that is not a probability vector, whatever parser built it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from distalign.methods.parsed import Parsed


@pytest.mark.parametrize(
    "probs",
    [
        [0.5, 0.6],  # sums to 1.1
        [1.5, -0.5],  # negative entry, sum 1
        [math.nan, 1.0],
        [math.inf, -math.inf],
        [0.5, math.inf],
        [],
        [[0.5, 0.5]],  # not one-dimensional
    ],
)
def test_rejects_what_is_not_a_distribution(probs: list) -> None:
    with pytest.raises(ValueError, match="not a distribution"):
        Parsed(probs=np.array(probs, dtype=float), status="ok")


def test_accepts_rounding_and_freezes_the_array() -> None:
    p = Parsed(probs=np.array([1 / 3, 1 / 3, 1 / 3 + 1e-7]), status="partial")
    assert p.probs is not None and not p.probs.flags.writeable
    with pytest.raises(ValueError):
        p.probs[0] = 1.0


def test_status_and_distribution_must_agree() -> None:
    with pytest.raises(ValueError):
        Parsed(probs=None, status="ok")
    with pytest.raises(ValueError):
        Parsed(probs=np.array([1.0]), status="unparsed")
    assert not Parsed.unparsed("nothing").extracted

"""The knowledge-to-simulation gap of Meister et al. (2024), Table 1b.

A model that can *describe* a distribution (verbalize) better than it can *sample* from it
(sequence) has a positive gap: ``TV(sequence) / TV(verbalize) - 1``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def knowledge_to_simulation_gap(tv_seq: ArrayLike, tv_verbalize: ArrayLike) -> float | np.ndarray:
    """Relative excess TV of sampling over verbalizing (0.21 = sequence is 21% worse).

    Works element-wise on arrays; a zero verbalize TV gives ``inf`` (or NaN if both are 0).
    """
    seq, verb = np.asarray(tv_seq, dtype=float), np.asarray(tv_verbalize, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = seq / verb - 1.0
    return float(gap) if gap.ndim == 0 else gap

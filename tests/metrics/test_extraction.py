from __future__ import annotations

import numpy as np
import pytest

from distalign.errors import InputError
from distalign.metrics import extraction_rate


def test_ok_and_partial_count_as_extracted() -> None:
    assert extraction_rate(["ok", "partial", "unparsed", "ok"]) == pytest.approx(0.75)
    assert extraction_rate(["unparsed"] * 3) == 0.0
    assert extraction_rate(iter(["ok", "partial"])) == 1.0


def test_empty_is_nan_and_unknown_status_raises() -> None:
    assert np.isnan(extraction_rate([]))
    with pytest.raises(InputError, match="'failed'"):
        extraction_rate(["ok", "failed"])

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distalign.errors import InputError
from distalign.metrics import pad, renormalise, unpad


def test_pad_shapes_values_and_mask() -> None:
    values, mask = pad([[0.5, 0.5], [0.2, 0.3, 0.5], [1.0]])
    np.testing.assert_array_equal(values, [[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(mask, [[True, True, False], [True, True, True], [True, False, False]])


def test_pad_none_is_nan_but_still_valid() -> None:
    ordinal, mask = pad([(1, 2, None), (1, 2, 3, 4)], fill=np.nan)
    assert np.isnan(ordinal[0, 2]) and mask[0, 2]
    assert np.isnan(ordinal[0, 3]) and not mask[0, 3]


def test_pad_empty_and_bad_rows() -> None:
    values, mask = pad([])
    assert values.shape == mask.shape == (0, 0)
    with pytest.raises(InputError, match="row 1"):
        pad([[0.5, 0.5], [[0.5], [0.5]]])
    with pytest.raises(InputError, match="row 0"):
        pad([["a", "b"]])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.floats(0, 1), min_size=1, max_size=6), min_size=1, max_size=6))
def test_unpad_inverts_pad(rows) -> None:
    back = unpad(*pad(rows))
    assert [r.tolist() for r in back] == rows


def test_renormalise_restricts_to_mask() -> None:
    p = np.array([[0.2, 0.2, 0.6], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    mask = np.array([[True, True, False], [True, True, False], [False, False, False]])
    out = renormalise(p, mask)
    np.testing.assert_allclose(out[0], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(out[1], [0.5, 0.5, 0.0])  # no mass on valid options: uniform over them
    np.testing.assert_array_equal(out[2], 0.0)  # no valid option at all
    np.testing.assert_allclose(renormalise([2.0, 6.0]), [0.25, 0.75])


def test_renormalise_rejects_bad_mask() -> None:
    with pytest.raises(InputError, match="mask"):
        renormalise(np.ones((2, 3)), np.ones((2, 2), dtype=bool))
    with pytest.raises(InputError, match="boolean"):
        renormalise(np.ones((2, 3)), np.ones((2, 3)))

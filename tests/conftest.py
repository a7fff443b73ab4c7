"""Shared fixtures. The benchmark release lives in ../shared/data next to the checkout during
development and CI; a user's fresh clone lacks it, so tests that need it skip with that reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DISTALIGN_SHARED_DATA", REPO.parent / "shared" / "data" / "meister2024"))


@pytest.fixture(scope="session")
def release_dir() -> Path:
    """The public benchmark release (layout as released), or skip."""
    if not (SHARED_DATA / "opinions_qa").is_dir():
        pytest.skip(f"benchmark release not found at {SHARED_DATA} (set DISTALIGN_SHARED_DATA)")
    return SHARED_DATA

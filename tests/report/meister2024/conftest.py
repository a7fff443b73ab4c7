"""The release imported once per session (reading its 60 MB of model outputs takes seconds)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from distalign.report.meister2024.release import import_release
from distalign.report.meister2024.reproduce import load_surveys
from distalign.survey.model import Survey


@pytest.fixture(scope="session")
def imported(release_dir: Path) -> pd.DataFrame:
    return import_release(release_dir, provenance=True)


@pytest.fixture(scope="session")
def release_surveys(release_dir: Path) -> dict[str, Survey]:
    return load_surveys(release_dir)

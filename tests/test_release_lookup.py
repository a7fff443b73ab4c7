"""The tests find the release where the tool finds it, so a contributor's download is used, not skipped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

RELEASE_TEST = "tests/cli/test_data.py::test_info_on_release"


def _copy(release: Path, to: Path) -> Path:
    """The release as a tree of links (a copy, as far as a reader can tell, without 70 MB of writes)."""
    shutil.copytree(release, to, copy_function=os.symlink)
    return to


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "DISTALIGN_DATA_DIR"}
    full.update(DISTALIGN_SHARED_DATA="/nonexistent/shared/data/meister2024", **env)  # the shared copy hidden
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", RELEASE_TEST],
        cwd=REPO,
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
@pytest.mark.parametrize("where", ["DISTALIGN_DATA_DIR", "default data folder"])
def test_a_release_in_the_tools_data_folder_is_used(release_dir: Path, tmp_path: Path, where: str) -> None:
    if where == "DISTALIGN_DATA_DIR":
        env = {"DISTALIGN_DATA_DIR": str(_copy(release_dir, tmp_path / "elsewhere"))}
    else:  # where `distalign data download meister2024` puts it
        _copy(release_dir, tmp_path / "cache" / "distalign" / "data")
        env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = _run(env)
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.slow
def test_without_a_release_the_skip_says_how_to_get_it(tmp_path: Path) -> None:
    proc = _run({"XDG_CACHE_HOME": str(tmp_path / "empty")})
    assert proc.returncode == 0 and "1 skipped" in proc.stdout, proc.stdout + proc.stderr
    assert "distalign data download meister2024" in proc.stdout and "DISTALIGN_DATA_DIR" in proc.stdout

"""Shared fixtures. Tests that need the benchmark release find it where the tool does —
``$DISTALIGN_DATA_DIR``, then the default data folder (``~/.cache/distalign/data``, where
``distalign data download meister2024`` puts it) — and, for development checkouts, in
``../shared/data/meister2024`` (``$DISTALIGN_SHARED_DATA`` overrides that path). Without a complete copy
they skip, saying how to get one."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

from distalign.cli.collector import tune_for_a_command
from distalign.survey.download import load_manifest
from distalign.survey.paths import ENV_VAR, default_data_dir, is_fixture

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DISTALIGN_SHARED_DATA", REPO.parent / "shared" / "data" / "meister2024"))

# test engines (``serving.engine: tests.engines.probe_engine``) load in subprocesses and Ray workers too
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))

# Workers of ``pytest -n N`` share the machine's cores. torch (and OpenMP in BLAS) would start one thread per
# core in every worker, and OpenMP threads that outnumber the cores spin while they wait for each other: two
# workers running the default model side by side each took 104 s of CPU for what one thread each does in 74 s.
# Subprocesses and Ray workers inherit the setting; a sweep's own engine actors already use the cores they
# reserve.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))


# A test worker imports the whole stack (MLflow, Ray, torch, vLLM): set the collector as the commands do
# (``distalign.cli.collector``), and freeze what collection imported, which lives until the worker exits.
# The collector took an eighth of the non-slow engines, scoring and report tests' time (8 s of 61 s).
tune_for_a_command()


def pytest_collection_finish(session: pytest.Session) -> None:
    gc.freeze()


def release_candidates() -> list[Path]:
    """Where the release is looked for, in order."""
    chosen = os.environ.get(ENV_VAR)
    places = [] if not chosen or is_fixture(chosen) else [Path(chosen).expanduser()]
    return [*places, default_data_dir(), SHARED_DATA]


def is_release(root: Path) -> bool:
    """Every file of the release's manifest is there (a partial download or the invented sample is not)."""
    return (root / "opinions_qa").is_dir() and all((root / rel).is_file() for rel in load_manifest().files)


def find_release() -> Path | None:
    return next((p for p in release_candidates() if is_release(p)), None)


@pytest.fixture(scope="session")
def release_dir() -> Path:
    """The public benchmark release (layout as released), or skip."""
    found = find_release()
    if found is None:
        looked = ", ".join(str(p) for p in release_candidates())
        pytest.skip(
            f"benchmark release not found (looked in {looked}); get it with "
            f"`distalign data download meister2024`, or set ${ENV_VAR} to a copy of the release folder"
        )
    return found


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Modules with slow tests run first (each module kept whole, so its fixtures are set up once): on
    several workers (``-n 3``) the long tests then run side by side instead of one worker finishing them
    alone while the other idles."""
    slow_modules = {item.path for item in items if item.get_closest_marker("slow") is not None}
    order = {id(item): i for i, item in enumerate(items)}
    items.sort(key=lambda item: (item.path not in slow_modules, order[id(item)]))

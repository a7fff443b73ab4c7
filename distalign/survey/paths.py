"""Where the benchmark release lives on disk.

The data folder is a *release root*: it holds the released layout (``opinions_qa/…``, ``nytimes/…``,
``Global_Values/…``) so a user's download, a shared copy and the shipped fixture are read by the same code.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from distalign.errors import InputError

ENV_VAR = "DISTALIGN_DATA_DIR"
#: ``data_dir("fixture")`` selects the tiny sample shipped inside the package (a real folder named
#: ``fixture`` can still be given as ``./fixture``).
FIXTURE_ALIAS = "fixture"
#: said wherever the shipped sample is shown: its questions and numbers are made up
FIXTURE_NOTE = (
    "invented sample shipped with the package (made-up questions and answer counts in the release's "
    "layout): for trying the tool, not survey data"
)


def fixture_dir() -> Path:
    """The shipped sample release (a few invented questions per dataset, same layout as the release)."""
    return Path(__file__).resolve().parent / "fixtures"


def is_fixture(override: str | Path | None) -> bool:
    """Whether a data-folder setting selects the shipped invented sample."""
    chosen = override if override not in (None, "") else os.environ.get(ENV_VAR) or None
    return chosen is not None and (str(chosen) == FIXTURE_ALIAS or Path(chosen).resolve() == fixture_dir())


def default_data_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "distalign" / "data"


def data_dir(override: str | Path | None = None) -> Path:
    """The release root: ``override``, else ``$DISTALIGN_DATA_DIR``, else the user cache folder."""
    chosen = override if override not in (None, "") else os.environ.get(ENV_VAR) or None
    if chosen is None:
        return default_data_dir()
    if str(chosen) == FIXTURE_ALIAS:
        return fixture_dir()
    return Path(chosen).expanduser()


def require_files(root: Path, relpaths: Iterable[str], dataset: str) -> None:
    """Fail before any parsing when a dataset's files are absent, saying how to get them."""
    for rel in relpaths:
        path = root / rel
        if not path.is_file():
            raise InputError(
                f"dataset {dataset!r} not found here. Download it with "
                f"`distalign data download {dataset}`, or point --data-dir / ${ENV_VAR} at a folder holding "
                f"the release layout (use --data-dir {FIXTURE_ALIAS} for the small shipped sample)",
                file=path,
            )

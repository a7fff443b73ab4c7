"""Where the benchmark release lives on disk, and how a printed hint names this environment's commands.

The data folder is a *release root*: it holds the released layout (``opinions_qa/…``, ``nytimes/…``,
``Global_Values/…``) so a user's download, a shared copy and the shipped fixture are read by the same code.
"""

from __future__ import annotations

import os
import shutil
import sys
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


def tool_command(name: str = "distalign") -> str:
    """How to call one of this environment's executables (``distalign``, ``mlflow``, ``python``) in a printed
    hint: the bare name where the shell finds this very one (an activated venv), else its absolute path, so a
    hint works verbatim in any shell."""
    own = Path(sys.executable).parent / name
    found = shutil.which(name)
    if found and own.exists() and Path(found).resolve() == own.resolve():
        return name
    return str(own) if own.exists() else name


#: the option forms a command accepts for the data folder: the ``distalign`` CLI's and ``launch.py``'s (Hydra)
CLI_OPTION = "--data-dir"
HYDRA_OPTION = "dataset.data_dir"


def option_value(option: str, value: str) -> str:
    """``--data-dir DIR`` for a CLI flag, ``dataset.data_dir=DIR`` for a Hydra key: as the user types it."""
    return f"{option} {value}" if option.startswith("-") else f"{option}={value}"


def data_hint(dataset: str, option: str = CLI_OPTION) -> str:
    """How to get a missing dataset, written in the option form of the command that will read it (the
    loaders do not know which command called them, so the command passes its form)."""
    return (
        f"get it with `{tool_command()} data download {dataset}` (needs internet), or copy the release "
        f"folder from another machine and point ${ENV_VAR} (or `{option_value(option, 'DIR')}`) at it; "
        f"`{option_value(option, FIXTURE_ALIAS)}` runs on the small invented sample shipped with the package"
    )


class MissingDataError(InputError):
    """A dataset's files are absent. ``for_option`` rewrites the hint for a command whose data-folder
    option is spelt differently (``launch.py`` takes ``dataset.data_dir=``, not ``--data-dir``)."""

    def __init__(self, dataset: str, path: Path, option: str = CLI_OPTION) -> None:
        self.dataset, self.path, self.option = dataset, path, option
        super().__init__(f"dataset {dataset!r} not found here; {data_hint(dataset, option)}", file=path)

    def for_option(self, option: str) -> MissingDataError:
        return MissingDataError(self.dataset, self.path, option)


def require_files(root: Path, relpaths: Iterable[str], dataset: str) -> None:
    """Fail before any parsing when a dataset's files are absent, saying how to get them."""
    for rel in relpaths:
        path = root / rel
        if not path.is_file():
            raise MissingDataError(dataset, path)

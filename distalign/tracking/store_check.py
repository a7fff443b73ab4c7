"""Is the MLflow store usable? Checked in seconds before a sweep opens it.

MLflow itself retries an unreachable server or an unopenable SQLite file for minutes and then raises a
long traceback; a sweep must instead fail at once with the address and what to do about it.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from distalign.errors import InputError

#: seconds a tracking server may take to answer the check
TIMEOUT_S = 5.0
SQLITE_HEADER = b"SQLite format 3\x00"
_WHERE = "sweep.tracking_uri"
_SET = "or set sweep.tracking_uri / MLFLOW_TRACKING_URI to another store (unset: sqlite:///mlflow.db here)"


def check_tracking_uri(uri: str, timeout_s: float = TIMEOUT_S) -> None:
    """Raise ``InputError`` when the store at ``uri`` cannot be used: a server that does not answer, a
    SQLite file in a missing or unwritable folder, or a file that is not an SQLite database."""
    scheme = urlsplit(uri).scheme.lower()
    if scheme in ("http", "https"):
        _check_server(uri, timeout_s)
    elif scheme == "sqlite":
        _check_sqlite(uri)


def _check_server(uri: str, timeout_s: float) -> None:
    url = uri.rstrip("/") + "/api/2.0/mlflow/experiments/search?max_results=1"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s):  # noqa: S310 - the configured http(s) server
            return
    except urllib.error.HTTPError as exc:
        if exc.code < 500:  # it answers (perhaps asking for credentials, which MLflow reads itself)
            return
        reason = f"it answered HTTP {exc.code} {exc.reason}"
    except TimeoutError:
        reason = f"no answer within {timeout_s:g} s"
    except (urllib.error.URLError, OSError) as exc:
        why = getattr(exc, "reason", exc)
        reason = f"no answer ({getattr(why, 'strerror', None) or why})"
    raise InputError(
        f"cannot reach the MLflow tracking server at {uri}: {reason}. Start `mlflow server` there {_SET}",
        where=_WHERE,
    )


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (``None`` for an in-memory database)."""
    rest = uri.split(":", 1)[1]
    rest = rest[2:] if rest.startswith("//") else rest
    path = rest.split("?", 1)[0]
    if path.startswith("/"):
        path = path[1:]  # sqlite:///rel.db -> rel.db; sqlite:////abs.db -> /abs.db
    return Path(path) if path and path != ":memory:" else None


def _check_sqlite(uri: str) -> None:
    path = sqlite_path(uri)
    if path is None:
        return
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise InputError(
            f"cannot create the MLflow store {uri}: the folder {folder} {what}; create it {_SET}",
            where=_WHERE,
        )
    if not path.exists():
        if not _writable(folder):
            raise InputError(
                f"cannot create the MLflow store {uri}: the folder {folder} is not writable {_SET}",
                where=_WHERE,
            )
        return
    try:
        with path.open("rb") as fh:
            head = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise InputError(
            f"cannot read the MLflow store {uri} ({exc.strerror}) {_SET}", where=_WHERE
        ) from None
    if head and head != SQLITE_HEADER:
        raise InputError(
            f"the MLflow store {uri} is not an SQLite database (the file {path} holds something else); "
            f"move it away {_SET}",
            where=_WHERE,
        )


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)

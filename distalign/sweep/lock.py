"""One driver per sweep folder, and one creator of a local MLflow store at a time.

Two drivers of the same command would each send every request and write every cell twice, so the driver
holds an OS lock (``fcntl.flock``) on ``<sweep folder>/.driver.lock`` for the whole sweep; the second
command stops at once with one line naming the holder (pid, host, start time). The kernel drops the lock
when its holder dies, even by SIGKILL, so a killed driver never blocks the rerun.

Two first runs in a fresh folder would race on creating MLflow's SQLite schema ("duplicate column name:
step"), so creating and opening a local tracking store is serialised by a lock next to it; a tracking server
serialises its own store.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from distalign.errors import InputError

LOCK_NAME = ".driver.lock"


class SweepBusy(InputError):
    """Another driver holds this sweep folder."""


class SweepLock:
    """The driver's hold on its sweep folder; released by ``release()`` or by the process ending."""

    def __init__(self, folder: Path | str) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._file: IO[str] | None = None

    def acquire(self) -> SweepLock:
        """Takes the lock or raises ``SweepBusy`` naming the process that holds it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = self.path.open("a+", encoding="utf-8")
        except OSError as exc:
            raise InputError(
                f"cannot create the sweep folder's lock ({exc.strerror or exc}): make sweep.output_dir "
                "writable",
                file=self.path.parent,
            ) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(self.path)
            handle.close()
            raise SweepBusy(
                f"another driver is running this sweep ({holder}); wait for it to finish or stop it, then "
                "run the same command again to resume",
                file=self.path.parent,
            ) from None
        handle.seek(0)
        handle.truncate()
        started = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime())
        json.dump({"pid": os.getpid(), "host": socket.gethostname(), "started": started}, handle)
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.seek(0)
                self._file.truncate()
                fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> SweepLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "starting now"
    return f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}"


def local_store_path(uri: str) -> Path | None:
    """The file or folder of a local tracking store (``sqlite:///…``, ``file:…``, a path); None for a
    server."""
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///") :])
    if uri.startswith("file:"):
        return Path(uri[len("file:") :].removeprefix("//"))
    if "://" not in uri:
        return Path(uri)
    return None


@contextlib.contextmanager
def tracking_store_lock(uri: str) -> Iterator[None]:
    """Waits for and holds ``<store>.lock`` while a local MLflow store is created or migrated."""
    store = local_store_path(uri)
    if store is None:
        yield
        return
    lock_path = store.with_name(store.name + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = lock_path.open("a", encoding="utf-8")
    except OSError:  # an unwritable folder: the tracker's own check says so in one line
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

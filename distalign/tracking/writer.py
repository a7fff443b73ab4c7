"""A single background process that writes the record while the driver goes on with the sweep.

Logging a cell to MLflow (a run, its params and metrics, the items table as Parquet, a figure) costs about
as much CPU as scoring the cell, and the driver is the sweep's bottleneck. The writer takes that work to a
process of its own: the driver pickles each finished cell (a millisecond) and moves on. There is still
exactly one writer, which keeps the store free of concurrent-writer races, and it writes in the order the
cells were handed over.

The process is started as ``python -m distalign.tracking.writer`` (not through ``multiprocessing``, which
would import the user's main script again in it), talks over two pipes of its own (MLflow may print on
stdout), ignores Ctrl-C (the driver decides: it waits for what is queued, so a finished cell is still
recorded), runs at a low priority (it fills the time the driver and the engines leave idle; the driver
waits for it only at the end) and exits when its driver is gone (the pipe closes), so a killed driver's
queue is not written by an orphan racing the rerun.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: the writer's priority (``nice``): record keeping never takes turns with the sweep's own work
NICENESS = 19
#: how long ``close`` waits for the writer to finish what is queued before it is stopped
CLOSE_TIMEOUT_S = 600.0


class WriterGone(RuntimeError):
    """The writer process died; what it had not finished must be written some other way."""


def is_gone(exc: BaseException) -> bool:
    """True when a future failed because the writer process died, not because writing raised."""
    return isinstance(exc, WriterGone)


class BackgroundWriter:
    """Calls ``factory().<method>(record)`` in one child process, in order; ``submit`` returns a future.

    ``factory`` must be picklable (a module-level function or a ``functools.partial`` of one) and is called
    once in the writer. The process starts at once, so its imports overlap with the driver's work;
    ``pid`` resolves once it is ready.
    """

    def __init__(self, factory: Callable[[], Any], niceness: int = NICENESS) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])  # the directory that holds the package
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "distalign.tracking.writer", str(to_child_r), str(from_child_w)],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._send_conn = Connection(to_child_w, readable=False)
        self._recv_conn = Connection(from_child_r, writable=False)
        self._lock = threading.Lock()
        self._futures: dict[int, Future[Any]] = {}
        self._serial = 0
        self._gone: str | None = None
        self.pid: Future[int] = Future()
        self._futures[0] = self.pid
        # a pipe holds 64 KiB and a cell's record is larger: a thread of its own feeds the pipe, so the
        # driver never waits for a writer that is busy with the cell before
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._outbox.put(pickle.dumps((factory, niceness), protocol=pickle.HIGHEST_PROTOCOL))
        self._sender = threading.Thread(target=self._send, name="distalign-writer-send", daemon=True)
        self._reader = threading.Thread(target=self._read, name="distalign-writer-replies", daemon=True)
        self._sender.start()
        self._reader.start()

    def submit(self, method: str, record: Any) -> Future[Any]:
        """Pickled here, so a record that cannot travel fails at once, in the caller."""
        payload = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
        future: Future[Any] = Future()
        with self._lock:
            if self._gone is not None:
                raise WriterGone(self._gone)
            self._serial += 1
            self._futures[self._serial] = future
            self._outbox.put(pickle.dumps((self._serial, method, payload), protocol=pickle.HIGHEST_PROTOCOL))
        return future

    def _send(self) -> None:
        while (blob := self._outbox.get()) is not None:
            try:
                self._send_conn.send_bytes(blob)
            except OSError:  # the writer is gone; the reader fails what is pending
                break
        with contextlib.suppress(OSError):
            self._send_conn.close()  # end of the queue: the writer finishes and exits

    def _read(self) -> None:
        while True:
            try:
                serial, ok, value = pickle.loads(self._recv_conn.recv_bytes())
            except (EOFError, OSError):
                break
            with self._lock:
                future = self._futures.pop(serial, None)
            if future is not None:
                (future.set_result if ok else future.set_exception)(value)
        code = self._proc.wait()
        with self._lock:
            self._gone = f"the writer process exited (code {code})"
            pending, self._futures = self._futures, {}
        for future in pending.values():
            future.set_exception(WriterGone(self._gone))

    def close(self, wait: bool = True) -> None:
        """Lets the writer finish what is queued (``wait``) or stops it now."""
        self._outbox.put(None)
        if not wait:
            with contextlib.suppress(OSError):
                self._proc.kill()
        try:
            self._proc.wait(timeout=CLOSE_TIMEOUT_S if wait else 30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._sender.join(timeout=30)
        self._reader.join(timeout=30)
        with contextlib.suppress(OSError):
            self._recv_conn.close()


def _reply(conn: Connection, serial: int, ok: bool, value: Any) -> None:
    try:
        blob = pickle.dumps((serial, ok, value), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - an exception that cannot be pickled is sent as its text
        blob = pickle.dumps((serial, False, RuntimeError(f"{type(value).__name__}: {value}")))
    conn.send_bytes(blob)


def _serve(inbox: Connection, outbox: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    driver = os.getppid()
    factory, niceness = pickle.loads(inbox.recv_bytes())
    if niceness:
        with contextlib.suppress(OSError):
            os.nice(niceness)
    try:
        sink = factory()
    except BaseException as exc:  # noqa: BLE001 - reported to the driver, which decides
        _reply(outbox, 0, False, exc)
        return
    _reply(outbox, 0, True, os.getpid())
    while True:
        try:
            serial, method, payload = pickle.loads(inbox.recv_bytes())
        except EOFError:  # the driver closed the queue, or died
            return
        if os.getppid() != driver:  # died with records still in the pipe: a rerun redoes those cells
            return
        try:
            value = getattr(sink, method)(pickle.loads(payload))
        except Exception as exc:  # noqa: BLE001 - each record's failure goes back to its future
            _reply(outbox, serial, False, exc)
        else:
            _reply(outbox, serial, True, value)


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False))


__all__ = ["BackgroundWriter", "WriterGone", "is_gone"]

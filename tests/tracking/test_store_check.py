"""A store the sweep cannot use fails in seconds with one message naming it and what to do, before MLflow
(which retries for minutes) is asked."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from distalign.errors import InputError
from distalign.tracking.mlflow_tracker import MLflowTracker


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tracker(uri: str) -> MLflowTracker:
    return MLflowTracker(uri, "exp", "sweep", "sweep-id")


def test_a_server_nobody_runs_is_named_with_what_to_start() -> None:
    uri = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(InputError) as err:
        _tracker(uri)
    msg = str(err.value)
    assert uri in msg and "mlflow server" in msg and "MLFLOW_TRACKING_URI" in msg, msg


def test_a_server_that_answers_with_an_error_is_named() -> None:
    class Broken(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Broken)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        uri = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(InputError, match="HTTP 503") as err:
            _tracker(uri)
        assert uri in str(err.value)
    finally:
        server.shutdown()


def test_a_sqlite_store_in_a_folder_that_cannot_exist(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    uri = f"sqlite:///{blocker / 'x.db'}"
    with pytest.raises(InputError, match="is not a folder") as err:
        _tracker(uri)
    assert uri in str(err.value)
    with pytest.raises(InputError, match="does not exist"):
        _tracker(f"sqlite:///{tmp_path / 'missing' / 'x.db'}")


def test_a_file_that_is_not_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "mlflow.db"
    path.write_text("these are my notes, not a database\n")
    with pytest.raises(InputError, match="is not an SQLite database") as err:
        _tracker(f"sqlite:///{path}")
    assert str(path) in str(err.value)
    assert path.read_text().startswith("these are my notes")  # left as it was


def test_a_usable_store_still_opens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    tracker = _tracker(f"sqlite:///{tmp_path / 'mlflow.db'}")
    tracker.finish("FINISHED")
    assert tracker.client.get_run(tracker.parent_run_id).info.status == "FINISHED"

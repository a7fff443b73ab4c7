"""Downloads against a loopback HTTP server: verified, atomic, and clear when offline."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from distalign.errors import InputError
from distalign.survey import fixture_dir, load_survey
from distalign.survey.download import (
    RELEASE_URL_ENV,
    Manifest,
    ReleaseFile,
    download,
    files_for,
    load_manifest,
)

NYT = ("nytimes/data.json", "nytimes/question_similarity_top10.json")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[Callable[[Path], str]]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(directory: Path) -> str:
        handler = partial(_Quiet, directory=str(directory))
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def _manifest(files: dict[str, str]) -> Manifest:
    entries = {p: ReleaseFile(p, p, sha, 0) for p, sha in files.items()}
    return Manifest("example/release", "0" * 40, "{remote}", {"nyt_books": tuple(files)}, entries)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".part")]


def test_download_verifies_and_loads(serve: Callable[[Path], str], tmp_path: Path) -> None:
    base = serve(fixture_dir())
    m = _manifest({p: _sha(fixture_dir() / p) for p in NYT})
    lines: list[str] = []
    written = download("nyt_books", tmp_path / "data", base_url=base, manifest=m, progress=lines.append)
    assert sorted(written) == sorted(tmp_path / "data" / p for p in NYT)
    assert (tmp_path / "data" / NYT[0]).read_bytes() == (fixture_dir() / NYT[0]).read_bytes()
    assert len(load_survey("nyt_books", tmp_path / "data").items) == 10
    # a second run keeps the intact files and fetches nothing
    assert download("nyt_books", tmp_path / "data", base_url=base, manifest=m) == []
    assert _leftovers(tmp_path) == []


def test_checksum_mismatch_leaves_nothing(serve: Callable[[Path], str], tmp_path: Path) -> None:
    base = serve(fixture_dir())
    m = _manifest({NYT[0]: "f" * 64})
    with pytest.raises(InputError, match="checksum mismatch") as err:
        download("nyt_books", tmp_path, base_url=base, manifest=m)
    assert f"{base}/{NYT[0]}" in str(err.value)
    assert not (tmp_path / NYT[0]).exists()
    assert _leftovers(tmp_path) == []


def test_corrupted_existing_file_is_replaced(serve: Callable[[Path], str], tmp_path: Path) -> None:
    base = serve(fixture_dir())
    target = tmp_path / NYT[0]
    target.parent.mkdir(parents=True)
    target.write_text("{}")
    m = _manifest({NYT[0]: _sha(fixture_dir() / NYT[0])})
    assert download("nyt_books", tmp_path, base_url=base, manifest=m) == [target]
    assert _sha(target) == _sha(fixture_dir() / NYT[0])


def test_http_error(serve: Callable[[Path], str], tmp_path: Path) -> None:
    base = serve(tmp_path / "empty")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="HTTP 404") as err:
        download("nyt_books", tmp_path / "data", base_url=base, manifest=_manifest({NYT[0]: "0" * 64}))
    assert f"{base}/{NYT[0]}" in str(err.value) and "--data-dir" in str(err.value)


def test_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(RELEASE_URL_ENV, f"http://127.0.0.1:{port}/release")
    with pytest.raises(InputError) as err:
        download("nyt_books", tmp_path, manifest=_manifest({NYT[0]: "0" * 64}), timeout=5)
    msg = str(err.value)
    assert f"http://127.0.0.1:{port}/release/{NYT[0]}" in msg
    assert "internet" in msg and "--data-dir" in msg
    assert list(tmp_path.rglob("*.json")) == []


def test_shipped_manifest_matches_release(
    serve: Callable[[Path], str], release_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """The real manifest's hashes and remote paths, against a local copy of the release."""
    served = tmp_path / "served"
    for f in files_for("nyt_books") + files_for("toy_problems"):
        (served / f.remote).parent.mkdir(parents=True, exist_ok=True)
        (served / f.remote).write_bytes((release_dir / f.path).read_bytes())
    monkeypatch.setenv(RELEASE_URL_ENV, serve(served))
    download("nyt_books", tmp_path / "data")
    download("toy_problems", tmp_path / "data")
    assert len(load_survey("nyt_books", tmp_path / "data")) == 940
    assert (tmp_path / "data/toy_problems/biased_coin/benchmark.json").is_file()


def test_manifest_covers_every_loader_file(monkeypatch: pytest.MonkeyPatch) -> None:
    from distalign.survey.registry import DATASET_LOADERS

    monkeypatch.delenv(RELEASE_URL_ENV, raising=False)
    m = load_manifest()
    assert m.base_url() == f"https://raw.githubusercontent.com/{m.repository}/{m.commit}"
    assert m.repository == "nicolemeister/benchmarking-distributional-alignment" and len(m.commit) == 40
    for name, loader in DATASET_LOADERS.items():
        assert set(loader.files) <= set(m.datasets[name]), name
    assert all(len(f.sha256) == 64 for f in m.files.values())


def test_manifest_lists_the_release_files_the_reproduction_reads(release_dir: Path) -> None:
    """Every file of ``distalign data download meister2024`` is in the release with the recorded size and
    checksum, and so is everything ``distalign reproduce meister2024`` reads."""
    import urllib.parse

    listed = {f.path: f for f in files_for("meister2024")}
    assert len(listed) == len(load_manifest().files)  # the full release
    for needed in ("results", "inputs", "analysis"):
        on_disk = {str(p.relative_to(release_dir)) for p in (release_dir / needed).rglob("*") if p.is_file()}
        assert on_disk and on_disk <= set(listed), needed
    for f in listed.values():
        path = release_dir / f.path
        assert path.stat().st_size == f.size and _sha(path) == f.sha256, f.path
        renamed = {
            "RELEASE_README.md": "README.md",
            "toy_problems/biased_coin/benchmark.json": "inputs/" + f.path,
        }
        assert urllib.parse.unquote(f.remote) == renamed.get(f.path, f.path)
        assert " " not in f.remote and "," not in f.remote and "$" not in f.remote


def test_download_of_names_with_spaces_commas_and_dollars(
    serve: Callable[[Path], str], release_dir: Path, tmp_path: Path
) -> None:
    """The release names files like ``INCOME/$100,000 or more.json``: the manifest's remotes are URL-quoted
    so the raw-file server finds them."""
    import urllib.parse

    m = load_manifest()
    picked = [
        f
        for f in files_for("meister2024_results", m)
        if "$100,000" in f.path and "express_distribution/gpt-4/task1" in f.path
    ] + [m.files["RELEASE_README.md"]]
    served = tmp_path / "served"
    for f in picked:  # the server's layout: the remote path, unquoted (as a web server maps URLs)
        target = served / urllib.parse.unquote(f.remote)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((release_dir / f.path).read_bytes())
    subset = Manifest(m.repository, m.commit, m.url, {"subset": tuple(f.path for f in picked)}, m.files)
    written = download("subset", tmp_path / "data", base_url=serve(served), manifest=subset)
    assert sorted(written) == sorted(tmp_path / "data" / f.path for f in picked)
    assert len(picked) == 2 and all(
        _sha(p) == f.sha256
        for p, f in zip(sorted(written), sorted(picked, key=lambda f: f.path), strict=True)
    )


def test_unknown_name() -> None:
    with pytest.raises(InputError, match="known: .*global_opinions"):
        files_for("globalopinions")

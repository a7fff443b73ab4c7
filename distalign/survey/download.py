"""Download the public benchmark release, pinned to one commit and verified file by file.

Each file is streamed to a hidden temporary name beside its target, its sha256 is checked against the
shipped manifest, and only then is it renamed into place, so an interrupted or corrupted download never
leaves a half-written file where a loader would read it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import BinaryIO

from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from distalign.errors import InputError
from distalign.survey.paths import ENV_VAR, data_dir

RELEASE_URL_ENV = "DISTALIGN_RELEASE_URL"
MANIFEST = Path(__file__).with_name("release_manifest.json")
ALL = "all"
_CHUNK = 1 << 16


@dataclass(frozen=True)
class ReleaseFile:
    path: str  # relative to the data folder (release layout)
    remote: str  # relative to the release root URL
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    repository: str
    commit: str
    url: str  # pattern with {repository}, {commit}, {remote}
    datasets: dict[str, tuple[str, ...]]
    files: dict[str, ReleaseFile]

    def base_url(self) -> str:
        """The release root URL; ``$DISTALIGN_RELEASE_URL`` replaces it (mirrors, tests)."""
        override = os.environ.get(RELEASE_URL_ENV)
        if override:
            return override.rstrip("/")
        return self.url.format(repository=self.repository, commit=self.commit, remote="").rstrip("/")

    def file_url(self, f: ReleaseFile, base: str | None = None) -> str:
        return f"{(base or self.base_url()).rstrip('/')}/{f.remote}"


@cache
def load_manifest(path: Path = MANIFEST) -> Manifest:
    raw = json.loads(path.read_text(encoding="utf-8"))
    files = {
        rel: ReleaseFile(rel, e.get("remote", rel), e["sha256"], int(e["size"]))
        for rel, e in raw["files"].items()
    }
    datasets = {name: tuple(paths) for name, paths in raw["datasets"].items()}
    return Manifest(raw["repository"], raw["commit"], raw["url"], datasets, files)


def downloadable() -> list[str]:
    return [*load_manifest().datasets, ALL]


def files_for(name: str, manifest: Manifest | None = None) -> list[ReleaseFile]:
    m = manifest or load_manifest()
    if name == ALL:
        return list(m.files.values())
    if name not in m.datasets:
        raise InputError(f"unknown dataset {name!r} to download; known: {', '.join([*m.datasets, ALL])}")
    return [m.files[p] for p in m.datasets[name]]


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


class _Transient(Exception):
    """A server-side failure worth retrying (HTTP 5xx)."""


def _offline_hint() -> str:
    return (
        "downloading the release needs internet access; alternatively copy the release folder from "
        f"another machine and pass --data-dir DIR (or set ${ENV_VAR})"
    )


@retry(
    retry=retry_if_exception_type(_Transient),
    stop=stop_after_attempt(3),
    wait=wait_exponential(multiplier=0.5, max=4),
    reraise=True,
)
def _stream(url: str, out: BinaryIO, timeout: float) -> str:
    """Write the body of ``url`` to ``out``; return its sha256."""
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            out.seek(0)
            out.truncate()
            for chunk in iter(lambda: resp.read(_CHUNK), b""):
                h.update(chunk)
                out.write(chunk)
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from exc
        raise InputError(
            f"download of {url} failed: HTTP {exc.code} {exc.reason}; {_offline_hint()}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(f"cannot download {url} ({reason}); {_offline_hint()}") from None
    return h.hexdigest()


def fetch_file(url: str, target: Path, sha256: str, *, timeout: float = 60.0) -> None:
    """Download ``url`` to ``target`` atomically, keeping it only if its sha256 matches."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                digest = _stream(url, out, timeout)
            except _Transient as exc:
                raise InputError(
                    f"download of {url} failed after retries: {exc}; {_offline_hint()}"
                ) from None
            out.flush()
            os.fsync(out.fileno())
        if digest != sha256:
            raise InputError(
                f"checksum mismatch for {url}: expected sha256 {sha256}, got {digest}; the download was "
                "discarded (a proxy or mirror may have altered it; try again or use --data-dir)",
                file=target,
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def download(
    name: str,
    data_dir_override: str | Path | None = None,
    *,
    base_url: str | None = None,
    timeout: float = 60.0,
    progress: Callable[[str], None] | None = None,
    manifest: Manifest | None = None,
) -> list[Path]:
    """Fetch a dataset's release files into the data folder; files already present and intact are kept."""
    m = manifest or load_manifest()
    files = files_for(name, m)
    root = data_dir(data_dir_override)
    written: list[Path] = []
    for f in files:
        target = root / f.path
        if target.is_file() and sha256_of(target) == f.sha256:
            if progress:
                progress(f"ok       {f.path}")
            continue
        fetch_file(m.file_url(f, base_url), target, f.sha256, timeout=timeout)
        written.append(target)
        if progress:
            progress(f"fetched  {f.path}")
    return written

"""``launch.py`` under misuse and damage: a pasted key, two drivers of one sweep, a damaged, read-only or
full response store. Each through the public command against the loopback OpenAI stub, which counts every
request it receives."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.engines.openai_stub import Fault, OpenAIStub
from tests.test_launch import launch, runs

KEY = "sk-proj-Zq8vN3kLp0XyT7wRb2Jm5sQe9Hc4"
KEY_ENV = {"DISTALIGN_TEST_KEY": KEY}


def _api(stub: OpenAIStub, *extra: str) -> list[str]:
    return [
        "model=vllm_server",
        "model.weights=openai/stub-model",
        f"model.serving.api_base={stub.base_url}",
        "model.serving.api_key_env=DISTALIGN_TEST_KEY",
        "model.serving.max_retries=0",
        "method=verbalize",
        "steering=persona",
        "dataset.data_dir=fixture",
        "dataset.max_items=2",
        "sweep.executor=inline",  # what is tested is the driver's: no Ray start-up per sweep
        *extra,
    ]


def _answer(body: dict) -> list[str]:
    return ['{"A": 40, "B": 35, "C": 25}'] * int(body.get("n") or 1)


def _sent_twice(stub: OpenAIStub) -> int:
    counts = Counter(json.dumps(r.body, sort_keys=True) for r in stub.received)
    return sum(c - 1 for c in counts.values())


def test_a_pasted_key_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    proc = launch(tmp_path, "model=gpt4", f"model.serving.api_key_env={KEY}", timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "rotate" in lines[0] and "api_key_env" in lines[0], lines
    assert KEY not in proc.stdout + proc.stderr
    assert not [p for p in tmp_path.rglob("*")], "something was written"


@pytest.mark.slow
def test_a_key_echoed_in_a_provider_error_is_written_nowhere(tmp_path: Path) -> None:
    """Every request fails with an OpenAI-style 401 that quotes the key right across the engine's
    400-character cut: the key is in no file of the run folder (cells, MLflow, Hydra's outputs)."""
    message = f"Incorrect API key provided: {'x' * 330}{KEY}. You can find your API key at the dashboard."
    body = json.dumps({"error": {"message": message, "type": "invalid_request_error", "code": 401}})
    stub = OpenAIStub().start()
    stub.on_marker("", Fault(status=401, body=body), always=True)
    try:
        proc = launch(
            tmp_path,
            *_api(stub),
            env=KEY_ENV,
            timeout=600,
        )
    finally:
        stub.stop()
    assert stub.received, proc.stderr[-3000:]
    _, _, children = runs(tmp_path)
    assert children, proc.stderr[-3000:]
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "cell.json" for p in written) and any(p.name == "mlflow.db" for p in written)
    assert any(b"Incorrect API key provided: xxx" in p.read_bytes() for p in written)  # the errors were kept
    for piece in {KEY[i : i + 8] for i in range(len(KEY) - 7)}:
        assert piece not in proc.stdout + proc.stderr
        leaks = [str(p) for p in written if piece.encode() in p.read_bytes()]
        assert not leaks, f"{piece!r} written to {leaks}"


@pytest.mark.slow
def test_two_identical_sweeps_started_together_pay_once(tmp_path: Path) -> None:
    """The same command twice at once, plus a third sweep sharing its requests under another name, all in
    a fresh folder: the second identical one stops with one line naming the running driver (or, started
    after the first ended, resumes it), no request of the command reaches the server twice, and the
    MLflow store is created once (no "duplicate column name")."""
    stub = OpenAIStub(reply=_answer, latency_s=(0.2, 0.4)).start()
    other = OpenAIStub(reply=_answer, latency_s=(0.2, 0.4)).start()  # the third sweep's: told apart
    env = {k: v for k, v in os.environ.items() if k not in {"MLFLOW_TRACKING_URI", "RAY_ADDRESS"}}
    env.update(DISTALIGN_STORE=str(tmp_path / "store"), PYTHONUNBUFFERED="1", DISTALIGN_TEST_KEY=KEY)
    base = [sys.executable, str(REPO / "launch.py"), "-m", *_api(stub), "sweep.progress=false"]
    third = [
        sys.executable,
        str(REPO / "launch.py"),
        "-m",
        *_api(other),
        "sweep.progress=false",
        "sweep.name=other",
    ]
    commands = [base, base, third]
    try:
        procs = [
            subprocess.Popen(
                cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for cmd in commands
        ]
        outs = [p.communicate(timeout=600) for p in procs]
    finally:
        stub.stop()
        other.stop()
    codes = [p.returncode for p in procs]
    everything = "\n".join(o + e for o, e in outs)
    assert "duplicate column" not in everything and "Traceback" not in everything, everything[-5000:]
    assert codes[2] == 0 and sorted(codes[:2]) in ([0, 0], [0, 75]), (codes, everything[-5000:])
    if 75 in codes[:2]:
        busy = outs[codes.index(75)][1].strip().splitlines()
        assert len(busy) == 1 and "another driver is running this sweep (pid " in busy[0], busy
        assert " started " in busy[0]
    # the same command: not one request twice (the third sweep, sharing its requests, may answer them all)
    assert (stub.received or other.received) and _sent_twice(stub) == 0
    _, parents, children = runs(tmp_path)
    assert sorted(p.info.status for p in parents) == ["FINISHED", "FINISHED"]
    first = [c for c in children if c.data.tags.get("mlflow.parentRunId") in {p.info.run_id for p in parents}]
    assert all(c.info.status == "FINISHED" for c in first)
    alone = OpenAIStub(reply=_answer).start()  # the same command once more: everything comes from the store
    try:
        again = launch(tmp_path, *_api(alone), env=KEY_ENV, timeout=600)
    finally:
        alone.stop()
    assert again.returncode == 0 and not alone.received, again.stderr[-3000:]


def _shard(root: Path) -> Path:
    shards = sorted((root / "store").glob("shard-*.sqlite"), key=lambda p: p.stat().st_size)
    assert shards, "no shard written"
    return shards[-1]


@pytest.fixture(scope="module")
def first_sweep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OpenAIStub, Path]]:
    """One sweep against a stub that stays up: each damage test damages its own copy of the store and
    reruns against the same server, so the rerun's requests are the first sweep's."""
    root = tmp_path_factory.mktemp("first")
    stub = OpenAIStub(reply=_answer).start()
    try:
        first = launch(root, *_api(stub), env=KEY_ENV, timeout=600)
        assert first.returncode == 0, first.stderr[-3000:]
        yield stub, root
    finally:
        stub.stop()


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "corrupt_page", "cut_row"])
def test_a_damaged_store_is_moved_aside_and_the_sweep_goes_on(
    first_sweep: tuple[OpenAIStub, Path], tmp_path: Path, damage: str
) -> None:
    """A shard truncated, with a page overwritten, or with one entry cut short: the rerun (in a folder with
    no finished cell) says so in one warning naming the file, sends again only what was lost, finishes, and
    ``cache stats|export|verify`` work on the store afterwards."""
    stub, first = first_sweep
    shutil.copytree(first / "store", tmp_path / "store")
    shard = _shard(tmp_path)
    conn = sqlite3.connect(shard)
    total = conn.execute("SELECT count(*) FROM responses").fetchone()[0]
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    if damage == "cut_row":
        conn.execute("UPDATE responses SET result = substr(result, 1, 25) WHERE rowid = 1")
        conn.commit()
    conn.close()
    if damage == "truncated":
        os.truncate(shard, 4096)
    elif damage == "corrupt_page":
        with shard.open("r+b") as f:
            f.seek(4096 + 200)
            f.write(b"\xff" * 1500)
    sent_before = len(stub.received)
    again = launch(tmp_path, *_api(stub, "sweep.name=rerun"), env=KEY_ENV, timeout=600)
    out = again.stdout + again.stderr
    assert again.returncode == 0 and "Traceback" not in out, out[-4000:]
    resent = len(stub.received) - sent_before
    warned = [line for line in out.splitlines() if shard.name in line]
    assert len(warned) == 1, warned
    if damage == "cut_row":
        assert "does not decode" in warned[0] and resent == 1
    else:
        assert "damaged" in warned[0] and "moved aside" in warned[0] and 0 < resent <= total
        assert list(shard.parent.glob(f"{shard.name}.damaged-*"))
    for action in (["stats"], ["export", str(tmp_path / "all.jsonl")], ["verify"]):
        proc = subprocess.run(
            [
                str(Path(sys.executable).parent / "distalign"),
                "cache",
                *action,
                "--store",
                str(tmp_path / "store"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (action, proc.stderr[-2000:])
    assert len((tmp_path / "all.jsonl").read_text().splitlines()) == total


def _namespace_mount_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True
    )
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _namespace_mount_works(), reason="needs unshare -rm and tmpfs mounts")
@pytest.mark.parametrize("store", ["read-only", "full"])
def test_an_unwritable_or_full_store_stops_before_the_first_request(tmp_path: Path, store: str) -> None:
    """The store is a read-only file system, or one with 1 MiB left (a tmpfs in a private mount
    namespace): one line naming the store, exit 2, and the server never asked."""
    root = tmp_path / "store"
    root.mkdir()
    options = "ro,size=1m" if store == "read-only" else "size=1m"
    stub = OpenAIStub(reply=_answer).start()
    env = {k: v for k, v in os.environ.items() if k not in {"MLFLOW_TRACKING_URI", "RAY_ADDRESS"}}
    env.update(DISTALIGN_STORE=str(root), DISTALIGN_TEST_KEY=KEY, PYTHONUNBUFFERED="1")
    args = " ".join(f"'{a}'" for a in [*_api(stub), "sweep.progress=false"])
    script = (
        f"mount -t tmpfs -o {options} tmpfs {root} && exec {sys.executable} {REPO / 'launch.py'} -m {args}"
    )
    try:
        proc = subprocess.run(
            ["unshare", "-rm", "sh", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        stub.stop()
    assert proc.returncode == 2, proc.stderr[-3000:]
    said = [line for line in proc.stderr.splitlines() if line.startswith("distalign:")]
    assert len(said) == 1 and str(root) in said[0] and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert ("cannot be written" if store == "read-only" else "MiB free") in said[0]
    assert not stub.received

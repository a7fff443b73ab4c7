"""Response-store keys and concurrency."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from distalign.engines.store import ResponseStore, StoreError, request_key
from distalign.errors import InputError
from distalign.records.engine import (
    GenerateRequest,
    GenerateResult,
    Message,
    ModelIdentity,
    OptionLogprobRequest,
    OptionLogprobResult,
    SamplingParams,
    Usage,
)

IDENTITY = ModelIdentity(name="m", weights="/models/m", revision="abc", chat_template=None)
MESSAGES = (Message("system", "be brief"), Message("user", "Pick A or B"))
LOGP = OptionLogprobRequest(MESSAGES, ("A", "B"), "Answer:")
GEN = GenerateRequest(MESSAGES, SamplingParams(temperature=0.7, max_tokens=30, seed=3), "Answer:", 0)


def _different(value: Any) -> Any:
    """A value of the same field that differs from ``value``."""
    if value is None:
        return 1
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2 + 0.25
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, tuple):
        return value + ("x",)
    raise AssertionError(f"no variation for {value!r}")


def test_key_changes_with_every_identity_field() -> None:
    base = request_key(IDENTITY, LOGP)
    for f in dataclasses.fields(ModelIdentity):
        current = getattr(IDENTITY, f.name)
        changed = dataclasses.replace(
            IDENTITY, **{f.name: "template" if current is None else _different(current)}
        )
        assert request_key(changed, LOGP) != base, f.name


def test_key_changes_with_every_sampling_field() -> None:
    base = request_key(IDENTITY, GEN)
    for f in dataclasses.fields(SamplingParams):
        current = getattr(GEN.params, f.name)
        new = ("A", "B") if f.name == "allowed" and current is None else _different(current)
        params = dataclasses.replace(GEN.params, **{f.name: new})
        assert request_key(IDENTITY, dataclasses.replace(GEN, params=params)) != base, f.name


@pytest.mark.parametrize("request_", [LOGP, GEN], ids=["logprobs", "generate"])
def test_key_changes_with_every_request_field(request_: Any) -> None:
    base = request_key(IDENTITY, request_)
    for f in dataclasses.fields(request_):
        current = getattr(request_, f.name)
        if f.name == "params":
            continue  # covered field by field above
        variants = [_different(current)]
        if f.name == "messages":
            variants = [
                (Message("system", "be brief"), Message("user", "Pick A or C")),
                (Message("user", "be brief"), Message("user", "Pick A or B")),
                MESSAGES[1:],
                MESSAGES + (Message("assistant", "A"),),
            ]
        for new in variants:
            assert request_key(IDENTITY, dataclasses.replace(request_, **{f.name: new})) != base, f.name


def test_key_separates_request_kinds_and_ignores_number_spelling() -> None:
    gen = GenerateRequest(MESSAGES, assistant_prefix="Answer:")
    assert request_key(IDENTITY, gen) != request_key(IDENTITY, OptionLogprobRequest(MESSAGES, (), "Answer:"))
    one = dataclasses.replace(GEN, params=dataclasses.replace(GEN.params, temperature=1))
    one_float = dataclasses.replace(GEN, params=dataclasses.replace(GEN.params, temperature=1.0))
    assert request_key(IDENTITY, one) == request_key(IDENTITY, one_float)


def test_key_is_stable_across_processes() -> None:
    code = (
        "from tests.engines.test_store import IDENTITY, GEN; "
        "from distalign.engines.store import request_key; print(request_key(IDENTITY, GEN))"
    )
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == request_key(IDENTITY, GEN)


def test_roundtrip_keeps_type_and_values_and_skips_errors(tmp_path: Path) -> None:
    store = ResponseStore(tmp_path)
    logp = OptionLogprobResult(logprobs=(-0.5, None), usage=Usage(prompt_tokens=7))
    gen = GenerateResult(texts=("A", "B"), usage=Usage(prompt_tokens=3, completion_tokens=2, cost_usd=0.01))
    failed = GenerateResult(error="timeout")
    assert store.put_many([("k1", logp), ("k2", gen), ("k3", failed)], model="m") == 2
    got = ResponseStore(tmp_path).get_many(["k1", "k2", "k3", "k4"])
    assert got == {"k1": logp, "k2": gen}
    assert type(got["k1"]) is OptionLogprobResult and type(got["k2"]) is GenerateResult


def test_a_closed_store_leaves_only_its_shard_and_keeps_every_answer(tmp_path: Path) -> None:
    """Closing checkpoints the write-ahead log into the shard: no -wal/-shm file is left for the next
    process to recover, and a store used again after closing reopens its shard."""
    answer = GenerateResult(texts=("A",))
    with ResponseStore(tmp_path) as store:
        store.put_many([("k1", answer)], model="m")
        assert any(p.name.endswith("-wal") for p in tmp_path.iterdir())  # open: WAL mode
    assert [p.name for p in tmp_path.iterdir()] == [f"shard-{socket.gethostname()}-{os.getpid()}.sqlite"]
    store.put_many([("k2", answer)], model="m")
    store.close()
    assert ResponseStore(tmp_path).get_many(["k1", "k2"]) == {"k1": answer, "k2": answer}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(("-wal", "-shm"))]


def test_stats_export_and_clear_by_model(tmp_path: Path) -> None:
    store = ResponseStore(tmp_path)
    store.put_many([("a1", GenerateResult(texts=("x",))), ("a2", GenerateResult(texts=("y",)))], model="a")
    store.put_many([("b1", OptionLogprobResult(logprobs=(-1.0,)))], model="b", requests={"b1": LOGP})
    stats = store.stats()
    assert stats["entries"] == 3 and stats["models"] == {"a": 2, "b": 1} and stats["bytes"] > 0
    out = tmp_path / "dump.jsonl"
    assert store.export(out) == 3
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    by_key = {line["key"]: line for line in lines}
    assert by_key["b1"]["result"]["type"] == "OptionLogprobResult"
    assert by_key["b1"]["request"]["candidates"] == ["A", "B"]
    assert store.clear(model="a") == 2
    assert set(store.get_many(["a1", "a2", "b1"])) == {"b1"}
    assert store.clear() == 1 and store.stats()["entries"] == 0


def _writer(root: str, worker: int, count: int) -> None:
    store = ResponseStore(Path(root))
    for i in range(count):  # many small transactions, interleaved with the other writers
        store.put_many([(f"{worker}-{i}", GenerateResult(texts=(f"{worker}:{i}",)))], model=f"w{worker}")
        if i % 25 == 0:
            store.get_many([f"{(worker + 1) % 4}-{i}"])


def test_concurrent_writer_processes_lose_nothing(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_writer, args=(str(tmp_path), w, 150)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(120)
        assert p.exitcode == 0
    keys = [f"{w}-{i}" for w in range(4) for i in range(150)]
    got = ResponseStore(tmp_path).get_many(keys)
    assert len(got) == 600
    assert all(got[k].texts == (k.replace("-", ":"),) for k in keys)
    assert ResponseStore(tmp_path).stats()["models"] == {f"w{w}": 150 for w in range(4)}


def _forked_put(store: ResponseStore) -> None:
    store.put_many([("child", GenerateResult(texts=("c",)))])


def test_forked_child_writes_its_own_shard(tmp_path: Path) -> None:
    store = ResponseStore(tmp_path)
    store.put_many([("parent", GenerateResult(texts=("p",)))])
    child = multiprocessing.get_context("fork").Process(target=_forked_put, args=(store,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    store.put_many([("parent2", GenerateResult(texts=("p2",)))])
    assert len(store.shards()) == 2
    assert set(ResponseStore(tmp_path).get_many(["parent", "child", "parent2"])) == {
        "parent",
        "child",
        "parent2",
    }


# --- a damaged, unwritable or full store ----------------------------------------------------------------
def _filled(root: Path, count: int = 2000) -> Path:
    """A store of one closed shard with ``count`` entries (large enough to span many pages)."""
    writer = ResponseStore(root)
    pairs = [(f"k{i}", OptionLogprobResult(logprobs=(-0.25,) * 30)) for i in range(count)]
    writer.put_many(pairs, model="m")
    assert writer._writer is not None
    writer._writer.close()  # checkpoints the WAL into the file, as a finished sweep leaves it
    (shard,) = writer.shards()
    return shard.rename(shard.with_name("shard-elsewhere-1.sqlite"))  # another process's shard


@pytest.mark.parametrize("damage", ["truncated", "corrupt_page", "not_a_database"])
def test_a_damaged_shard_is_moved_aside_with_one_warning_and_reading_goes_on(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    shard = _filled(tmp_path)
    if damage == "truncated":
        os.truncate(shard, 10_000)
    elif damage == "corrupt_page":
        with shard.open("r+b") as f:
            f.seek(4096 * (shard.stat().st_size // 4096 // 2) + 100)
            f.write(b"\xff" * 3000)
    else:
        shard.write_bytes(b"garbage " * 2000)
    reader = ResponseStore(tmp_path)
    got = reader.get_many(f"k{i}" for i in range(2000))  # never raises
    warned = [r.getMessage() for r in caplog.records if str(shard) in r.getMessage()]
    assert len(warned) == 1 and "damaged" in warned[0] and "moved aside" in warned[0], warned
    assert "\n" not in warned[0]
    assert not shard.exists() and list(tmp_path.glob(f"{shard.name}.damaged-*"))
    match = re.search(r"(\d+|an unknown number of) entries lost, (\d+) recovered", warned[0])
    assert match and int(match.group(2)) == len(got), warned[0]
    if match.group(1).isdigit():
        assert int(match.group(1)) + len(got) == 2000
    if damage == "corrupt_page":
        assert 0 < len(got) < 2000  # the readable part was kept
    assert ResponseStore(tmp_path).stats()["entries"] == len(got)  # recovered entries moved to a sound shard


def test_an_entry_that_no_longer_decodes_is_deleted_and_missed(tmp_path: Path) -> None:
    shard = _filled(tmp_path, 10)
    with sqlite3.connect(shard) as conn:
        conn.execute("UPDATE responses SET result = substr(result, 1, 30) WHERE key = 'k3'")
    store = ResponseStore(tmp_path)
    assert set(store.get_many(["k2", "k3"])) == {"k2"}
    assert store.export(tmp_path / "all.jsonl") == 9
    assert [e["status"] for e in store.verify()] == ["ok"]


def test_verify_reports_each_shard(tmp_path: Path) -> None:
    sound = _filled(tmp_path / "a", 5)
    damaged = _filled(tmp_path / "b", 500)
    os.replace(sound, tmp_path / "b" / "shard-sound-1.sqlite")  # the two shards of one store
    with damaged.open("r+b") as f:
        f.seek(4096 * 3)
        f.write(b"\x00\xff" * 2048)
    report = {Path(e["shard"]).name: e for e in ResponseStore(tmp_path / "b").verify()}
    assert report["shard-sound-1.sqlite"]["status"] == "ok" and report["shard-sound-1.sqlite"]["entries"] == 5
    assert report[damaged.name]["status"] == "damaged" and Path(report[damaged.name]["moved_to"]).exists()


def test_a_failed_write_stops_with_one_line_and_keeps_the_answers(tmp_path: Path) -> None:
    """The write fails (here: this process's shard cannot be opened): StoreError, and the answers are kept
    in a file that the next sweep's start loads into the store."""
    store = ResponseStore(tmp_path)
    (tmp_path / f"shard-{socket.gethostname()}-{os.getpid()}.sqlite").mkdir(parents=True)
    with pytest.raises(StoreError) as failed:
        store.put_many([("a", GenerateResult(texts=("x",))), ("b", GenerateResult(texts=("y",)))], model="m")
    message = str(failed.value)
    assert "\n" not in message and str(tmp_path) in message and "2 answers" in message
    assert list(tmp_path.glob("unsaved-*.jsonl"))
    (tmp_path / f"shard-{socket.gethostname()}-{os.getpid()}.sqlite").rmdir()
    fresh = ResponseStore(tmp_path)
    fresh.check_writable(min_free_bytes=0)
    assert set(fresh.get_many(["a", "b"])) == {"a", "b"} and not list(tmp_path.glob("unsaved-*"))


def test_too_little_free_space_is_refused_before_the_first_request(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(InputError, match=r"MiB free for the response store"):
        ResponseStore(tmp_path).check_writable(min_free_bytes=free * 2)

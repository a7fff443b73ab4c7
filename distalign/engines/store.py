"""The content-addressed response store: a rerun pays for no repeated model call.

Keys hash everything that determines an engine's answer (model identity, request kind, every request
field, the key-schema version) and nothing about transport. Each writer process appends to its own
SQLite file (``shard-<host>-<pid>.sqlite``, WAL mode), so concurrent writers never contend for one
database lock (HELM's single cache file locked up under concurrency); readers look across all shards.
Only successful results are stored: an error is retried by the next run.

The store heals itself: each shard is checked (``PRAGMA quick_check``) the first time a process opens it;
a damaged one is moved aside as ``<shard>.damaged-<time>``, what can still be read from it is copied into
this process's shard, and one warning names the file and how many entries were lost (they are requested
again). An entry whose text no longer decodes is deleted and treated as a miss. A write that fails raises
``StoreError``, so a sweep stops before it pays for answers it cannot keep.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

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

#: bump when the key's content or encoding changes; old entries then simply stop matching.
#: 2: one flat JSON array per key instead of a nested, recursively canonicalised object.
KEY_SCHEMA_VERSION = 2

Request = OptionLogprobRequest | GenerateRequest
Result = OptionLogprobResult | GenerateResult
_RESULT_TYPES: dict[str, type[OptionLogprobResult] | type[GenerateResult]] = {
    "OptionLogprobResult": OptionLogprobResult,
    "GenerateResult": GenerateResult,
}
_KINDS = {OptionLogprobRequest: "option_logprobs", GenerateRequest: "generate"}
_SCHEMA = """CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, kind TEXT NOT NULL, result TEXT NOT NULL,
    request TEXT, created REAL NOT NULL)"""
_CHUNK = 500  # keys per SELECT (SQLite's bound-parameter limit is 999 on old builds)
#: free space a sweep needs in the store's file system before its first request
MIN_FREE_BYTES = 64 * 2**20
DAMAGED = ".damaged-"
SPILL_PREFIX = "unsaved-"

log = logging.getLogger(__name__)


class StoreError(RuntimeError):
    """The store cannot keep an answer (read-only, full, gone): the sweep must stop before sending more."""


def default_store_root() -> Path:
    """``$DISTALIGN_STORE`` or ``./.distalign/store``."""
    return Path(os.environ.get("DISTALIGN_STORE", Path(".distalign") / "store"))


def _canonical(value: Any) -> Any:
    """JSON-ready form in which equal requests are equal text (floats stay floats: 1 and 1.0 agree)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if f.type in ("float", float) and isinstance(item, int | float) and not isinstance(item, bool):
                item = float(item)
            out[f.name] = _canonical(item)
        return {"__type__": type(value).__name__, **out}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


#: the fields ``request_key`` reads, per record; a field added to a record must be added to the key too
_KEY_FIELDS: dict[type, tuple[str, ...]] = {
    ModelIdentity: ("name", "weights", "revision", "chat_template"),
    OptionLogprobRequest: ("messages", "candidates", "assistant_prefix"),
    GenerateRequest: ("messages", "params", "assistant_prefix", "sample_index"),
    SamplingParams: ("temperature", "max_tokens", "n", "top_p", "stop", "seed", "allowed", "min_tokens"),
    Message: ("role", "content"),
}
for _cls, _names in _KEY_FIELDS.items():
    if tuple(f.name for f in dataclasses.fields(_cls)) != _names:
        raise RuntimeError(f"request_key does not cover the fields of {_cls.__name__}; update it")


def _num(value: Any) -> Any:
    """Float fields as floats, so that 1 and 1.0 give one key."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def request_key(identity: ModelIdentity, request: Request) -> str:
    """sha256 of one flat JSON array: schema version, model identity, request kind, then every request
    field in a fixed order (sampling parameters spelled out)."""
    messages = [[m.role, m.content] for m in request.messages]
    head = [KEY_SCHEMA_VERSION, identity.name, identity.weights, identity.revision, identity.chat_template]
    if type(request) is OptionLogprobRequest:
        body = ["option_logprobs", messages, list(request.candidates), request.assistant_prefix]
    elif type(request) is GenerateRequest:
        p = request.params
        body = [
            "generate",
            messages,
            request.assistant_prefix,
            request.sample_index,
            _num(p.temperature),
            p.max_tokens,
            p.n,
            _num(p.top_p),
            list(p.stop),
            p.seed,
            None if p.allowed is None else list(p.allowed),
            p.min_tokens,
        ]
    else:
        raise TypeError(f"not a request: {type(request).__name__}")
    text = json.dumps(head + body, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def encode_result(result: Result) -> str:
    """The stored text of a result (always as not cached). The fields are spelled out: ``asdict`` deep-copies
    every record and cost more than the rest of a store write."""
    u = result.usage
    data: dict[str, Any] = {
        "error": result.error,
        "usage": {
            "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens,
            "cost_usd": u.cost_usd,
        },
        "cached": False,
    }
    if type(result) is OptionLogprobResult:
        data["logprobs"] = result.logprobs
    elif type(result) is GenerateResult:
        data["texts"] = result.texts
    else:
        raise TypeError(f"not a result: {type(result).__name__}")
    return json.dumps({"type": type(result).__name__, "data": data}, sort_keys=True, allow_nan=True)


for _cls, _names in {
    OptionLogprobResult: ("logprobs", "error", "usage", "cached"),
    GenerateResult: ("texts", "error", "usage", "cached"),
    Usage: ("prompt_tokens", "completion_tokens", "cost_usd"),
}.items():
    if tuple(f.name for f in dataclasses.fields(_cls)) != _names:
        raise RuntimeError(f"encode_result does not cover the fields of {_cls.__name__}; update it")


def decode_result(text: str) -> Result:
    record = json.loads(text)
    data = dict(record["data"])
    data["usage"] = Usage(**data["usage"])
    for name in ("logprobs", "texts"):
        if name in data:
            data[name] = tuple(data[name])
    return _RESULT_TYPES[record["type"]](**data)


class ResponseStore:
    """Entries from every shard under ``root``; writes go to this process's own shard."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_store_root()
        self._lock = threading.Lock()
        self._pid = -1
        self._writer: sqlite3.Connection | None = None
        self._checked: set[Path] = set()

    def close(self) -> None:
        """Close this process's shard: its WAL is checkpointed into the shard and its -wal/-shm files go."""
        with self._lock:
            if self._writer is not None and self._pid == os.getpid():
                self._writer.close()
            self._writer = None

    def __enter__(self) -> ResponseStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------ reading
    def shards(self) -> list[Path]:
        return sorted(self.root.glob("shard-*.sqlite")) if self.root.is_dir() else []

    def _open(self, shard: Path) -> sqlite3.Connection | None:
        """A connection to a sound shard; None for one that vanished, is busy or was found damaged (then it
        is moved aside, see ``quarantine``)."""
        try:
            conn = sqlite3.connect(f"file:{shard}?mode=rw", uri=True, timeout=30)  # never creates
        except sqlite3.Error:  # vanished (cleared) or unreadable: nothing to serve from it
            return None
        try:
            if shard not in self._checked:
                rows = conn.execute("PRAGMA quick_check").fetchall()
                if rows != [("ok",)]:
                    problems = "\n".join(str(r[0]) for r in rows) or "quick_check gave no answer"
                    raise sqlite3.DatabaseError(_reason(problems))
            conn.execute("SELECT 1 FROM responses LIMIT 1")
            self._checked.add(shard)
            return conn
        except sqlite3.Error as exc:
            conn.close()
            if _is_damage(exc, shard):
                self.quarantine(shard, _reason(exc))
            return None

    def quarantine(self, shard: Path, reason: str) -> tuple[Path, int, int | None] | None:
        """Moves a damaged shard aside as ``<shard>.damaged-<time>``, copies the entries that still read
        back into this process's shard and warns once; returns (new name, recovered, lost or None when
        unknown), or None when another process moved it first."""
        if self._writer is not None and self._pid == os.getpid() and shard == self._own_path():
            raise StoreError(f"{shard}: this process's own shard is damaged ({reason}); rerun the sweep")
        aside = shard.with_name(f"{shard.name}{DAMAGED}{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
        try:
            os.replace(shard, aside)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning(
                "response store shard %s is damaged (%s) and cannot be moved aside: %s", shard, reason, exc
            )
            self._checked.add(shard)  # read around it from now on
            return None
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.replace(f"{shard}{suffix}", f"{aside}{suffix}")
        rows, total = _salvage(aside)
        recovered = 0
        if rows:
            try:
                with self._lock:
                    conn = self._own_shard()
                    with conn:
                        conn.executemany("INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?, ?)", rows)
                recovered = len(rows)
            except (sqlite3.Error, OSError):
                recovered = 0
        lost = None if total is None else max(total - recovered, 0)
        lost_text = "an unknown number of entries" if lost is None else f"{lost} entries"
        log.warning(
            "response store shard %s is damaged (%s): moved aside as %s; %s lost, %d recovered "
            "(lost answers are requested again)",
            shard,
            reason,
            aside.name,
            lost_text,
            recovered,
        )
        return aside, recovered, lost

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> Iterable[tuple[Any, ...]]:
        params = list(params)
        seen: set[Path] = set()
        while pending := [s for s in self.shards() if s not in seen]:  # a repair may add a shard
            yield from self._shard_rows(pending, seen, sql, params)

    def _shard_rows(
        self, shards: list[Path], seen: set[Path], sql: str, params: list[Any]
    ) -> Iterable[tuple[Any, ...]]:
        for shard in shards:
            seen.add(shard)
            conn = self._open(shard)
            if conn is None:
                continue
            try:
                rows = [(shard, *row) for row in conn.execute(sql, params).fetchall()]
            except sqlite3.Error as exc:  # a damaged page that quick_check did not reach
                conn.close()
                if _is_damage(exc, shard):
                    self.quarantine(shard, _reason(exc))
                continue
            conn.close()
            yield from rows

    def _drop(self, shard: Path, key: str, reason: str) -> None:
        """Deletes one entry that no longer decodes (a cut row), so that it is requested again."""
        log.warning(
            "response store %s: entry %s does not decode (%s); deleted, it is requested again",
            shard,
            key[:12],
            reason,
        )
        with (
            contextlib.suppress(sqlite3.Error),
            contextlib.closing(sqlite3.connect(shard, timeout=30)) as conn,
        ):
            with conn:
                conn.execute("DELETE FROM responses WHERE key = ?", (key,))

    def get_many(self, keys: Iterable[str]) -> dict[str, Result]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Result] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = [k for k in wanted[start : start + _CHUNK] if k not in found]
            if not chunk:
                continue
            marks = ",".join("?" * len(chunk))
            for shard, key, text in self._rows(
                f"SELECT key, result FROM responses WHERE key IN ({marks})", chunk
            ):
                if key in found:
                    continue
                try:
                    found[key] = decode_result(text)
                except (ValueError, KeyError, TypeError) as exc:
                    self._drop(shard, key, f"{type(exc).__name__}: {exc}")
        return found

    def verify(self) -> list[dict[str, Any]]:
        """Checks every shard in full (``PRAGMA integrity_check`` and every entry decodes); damaged shards
        are moved aside as in a sweep, undecodable entries deleted. One record per shard."""
        report = []
        for shard in self.shards():
            self._checked.discard(shard)
            entry: dict[str, Any] = {"shard": str(shard), "status": "ok", "entries": 0, "dropped": 0}
            try:
                with contextlib.closing(
                    sqlite3.connect(f"file:{shard}?mode=rw", uri=True, timeout=30)
                ) as conn:
                    rows = conn.execute("PRAGMA integrity_check").fetchall()
                    if rows != [("ok",)]:
                        raise sqlite3.DatabaseError(
                            str(rows[0][0]) if rows else "integrity_check gave no answer"
                        )
                    bad = []
                    for key, text in conn.execute("SELECT key, result FROM responses"):
                        entry["entries"] += 1
                        try:
                            decode_result(text)
                        except (ValueError, KeyError, TypeError) as exc:
                            bad.append((key, f"{type(exc).__name__}: {exc}"))
                for key, reason in bad:
                    self._drop(shard, key, reason)
                entry["dropped"] = len(bad)
                entry["entries"] -= len(bad)
                if bad:
                    entry["status"] = "repaired"
                self._checked.add(shard)
            except sqlite3.Error as exc:
                if not _is_damage(exc, shard):
                    entry.update(status="unreadable", reason=_reason(exc))
                else:
                    moved = self.quarantine(shard, _reason(exc))
                    entry.update(status="damaged", reason=_reason(exc))
                    if moved is not None:
                        entry.update(moved_to=str(moved[0]), recovered=moved[1], lost=moved[2])
            report.append(entry)
        return report

    # ------------------------------------------------------------------------------------ writing
    def _own_shard(self) -> sqlite3.Connection:
        """This process's shard, created complete (schema, WAL) under a temporary name, then renamed."""
        if self._writer is not None and self._pid == os.getpid():
            return self._writer
        self.root.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()
        path = self._own_path()
        if not path.exists():
            staging = path.with_name(f".{path.name}.tmp")
            conn = sqlite3.connect(staging)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(_SCHEMA)
            conn.commit()
            conn.close()
            os.replace(staging, path)
        self._writer = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._writer.execute("PRAGMA journal_mode=WAL")
        self._writer.execute("PRAGMA synchronous=NORMAL")
        self._pid = pid
        self._checked.add(path)
        return self._writer

    def _own_path(self) -> Path:
        return self.root / f"shard-{socket.gethostname()}-{os.getpid()}.sqlite"

    def check_writable(self, min_free_bytes: int = MIN_FREE_BYTES) -> None:
        """Before the first request: the store's folder can be created and written (this process's shard is
        created and a write is tried) and its file system has ``min_free_bytes`` free; else an InputError."""
        try:
            with self._lock:
                conn = self._own_shard()
                with conn:  # a write transaction that changes nothing
                    conn.execute("DELETE FROM responses WHERE key = ''")
                self._load_spilled(conn)
            free = shutil.disk_usage(self.root).free
        except (sqlite3.Error, OSError, ValueError) as exc:
            self._writer = None
            raise InputError(
                f"the response store cannot be written ({_reason(exc)}): make it writable or point "
                "sweep.store / DISTALIGN_STORE elsewhere",
                file=self.root,
            ) from None
        if free < min_free_bytes:
            raise InputError(
                f"only {free / 2**20:.1f} MiB free for the response store (at least "
                f"{min_free_bytes / 2**20:.0f} MiB needed before the first request): free space or point "
                "sweep.store / DISTALIGN_STORE elsewhere",
                file=self.root,
            )

    def put_many(
        self,
        pairs: Iterable[tuple[str, Result]],
        *,
        model: str = "",
        requests: Mapping[str, Request] | None = None,
    ) -> int:
        """Store the successful results (errors are skipped so they are retried); returns how many."""
        now = time.time()
        rows = []
        for key, result in pairs:
            if not result.ok:
                continue
            request = (requests or {}).get(key)
            request_text = None if request is None else json.dumps(_canonical(request), ensure_ascii=False)
            kind = "generate" if isinstance(result, GenerateResult) else "option_logprobs"
            rows.append((key, model, kind, encode_result(result), request_text, now))
        if not rows:
            return 0
        try:
            with self._lock:
                conn = self._own_shard()
                with conn:
                    conn.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)", rows)
        except (sqlite3.Error, OSError) as exc:
            kept = self._spill(rows)
            where = (
                f"the {len(rows)} answers just received are kept in {kept}"
                + ("" if kept.parent == self.root else f" (move it into {self.root})")
                + " and loaded by the next sweep"
                if kept is not None
                else f"the {len(rows)} answers just received could not be kept anywhere"
            )
            raise StoreError(
                f"cannot write to the response store {self.root} ({_reason(exc)}); stopped before sending "
                f"more requests: {where}; free space or make it writable, then rerun"
            ) from None
        return len(rows)

    def _spill(self, rows: list[tuple[Any, ...]]) -> Path | None:
        """Answers the store could not take, as JSON lines in the store's folder, else the temp folder."""
        name = f"{SPILL_PREFIX}{socket.gethostname()}-{os.getpid()}-{time.time_ns()}.jsonl"
        for folder in (self.root, Path(tempfile.gettempdir())):
            path = folder / name
            try:
                with path.open("w", encoding="utf-8") as out:
                    for row in rows:
                        out.write(json.dumps(list(row), ensure_ascii=False) + "\n")
                return path
            except OSError:
                with contextlib.suppress(OSError):
                    path.unlink()
        return None

    def _load_spilled(self, conn: sqlite3.Connection) -> None:
        """Answers an earlier sweep could not store (``unsaved-*.jsonl``) go into this shard."""
        for path in sorted(self.root.glob(f"{SPILL_PREFIX}*.jsonl")):
            rows = [tuple(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]
            with conn:
                conn.executemany("INSERT OR IGNORE INTO responses VALUES (?, ?, ?, ?, ?, ?)", rows)
            path.unlink()
            log.warning(
                "response store: loaded %d answers kept in %s by an earlier sweep", len(rows), path.name
            )

    # ---------------------------------------------------------------------------------- inspection
    def stats(self) -> dict[str, Any]:
        keys: dict[str, str] = {}
        for _, key, model in self._rows("SELECT key, model FROM responses"):
            keys.setdefault(key, model)
        per_model: dict[str, int] = {}
        for model in keys.values():
            per_model[model] = per_model.get(model, 0) + 1
        size = (
            sum(p.stat().st_size for p in self.root.glob("shard-*") if p.is_file())
            if self.root.is_dir()
            else 0
        )
        return {
            "root": str(self.root),
            "entries": len(keys),
            "bytes": size,
            "shards": len(self.shards()),
            "models": dict(sorted(per_model.items())),
        }

    def export(self, path: Path | str) -> int:
        """Write every entry as one JSON line (key, model, kind, created, request, result); returns count."""
        seen: set[str] = set()
        sql = "SELECT key, model, kind, created, request, result FROM responses ORDER BY created"
        with Path(path).open("w", encoding="utf-8") as out:
            for shard, key, model, kind, created, request, result in self._rows(sql):
                if key in seen:
                    continue
                try:
                    decode_result(result)
                    record = {
                        "key": key,
                        "model": model,
                        "kind": kind,
                        "created": created,
                        "request": None if request is None else json.loads(request),
                        "result": json.loads(result),
                    }
                except (ValueError, KeyError, TypeError) as exc:
                    self._drop(shard, key, f"{type(exc).__name__}: {exc}")
                    continue
                seen.add(key)
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        return len(seen)

    def clear(self, model: str | None = None) -> int:
        """Delete every entry (or one model's) from all shards; returns the number of rows deleted."""
        removed = 0
        for shard in self.shards():
            conn = self._open(shard)
            if conn is None:
                continue
            try:
                with conn:
                    if model is None:
                        removed += conn.execute("DELETE FROM responses").rowcount
                    else:
                        removed += conn.execute("DELETE FROM responses WHERE model = ?", (model,)).rowcount
            except sqlite3.Error:
                continue
            finally:
                conn.close()
        return removed


def _reason(exc: BaseException | str) -> str:
    """One line: SQLite's integrity reports list every problem, one per line; the first names the kind."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and "in database main" not in ln]
    if not lines:
        return type(exc).__name__ if isinstance(exc, BaseException) else "damaged"
    more = f" (and {len(lines) - 1} more problems)" if len(lines) > 1 else ""
    return lines[0] + more


def _is_damage(exc: sqlite3.Error, shard: Path) -> bool:
    """A fault of the file's content (not a lock, a vanished or an unreadable file)."""
    if not shard.is_file():
        return False
    text = str(exc).lower()
    if isinstance(exc, sqlite3.OperationalError):
        return "no such table" in text or "malformed" in text or "disk i/o" in text
    return isinstance(exc, sqlite3.DatabaseError)


def _salvage(path: Path) -> tuple[list[tuple[Any, ...]], int | None]:
    """The entries of a damaged shard that still read back and decode, and how many it held (None when
    its row count cannot be read)."""
    rows: list[tuple[Any, ...]] = []
    total: int | None = None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return rows, None
    with contextlib.closing(conn):
        with contextlib.suppress(sqlite3.Error):
            total = int(conn.execute("SELECT count(*) FROM responses").fetchone()[0])
        with contextlib.suppress(sqlite3.Error):
            cursor = conn.execute("SELECT key, model, kind, result, request, created FROM responses")
            while True:
                batch = cursor.fetchmany(256)
                if not batch:
                    break
                for row in batch:
                    try:
                        decode_result(row[3])
                    except (ValueError, KeyError, TypeError):
                        continue
                    rows.append(row)
    if total is not None and total < len(rows):
        total = len(rows)
    return rows, total

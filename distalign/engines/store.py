"""The content-addressed response store: a rerun pays for no repeated model call.

Keys hash everything that determines an engine's answer (model identity, request kind, every request
field, the key-schema version) and nothing about transport. Each writer process appends to its own
SQLite file (``shard-<host>-<pid>.sqlite``, WAL mode), so concurrent writers never contend for one
database lock (HELM's single cache file locked up under concurrency); readers look across all shards.
Only successful results are stored: an error is retried by the next run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

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

    # ------------------------------------------------------------------------------------ reading
    def shards(self) -> list[Path]:
        return sorted(self.root.glob("shard-*.sqlite")) if self.root.is_dir() else []

    def _open(self, shard: Path) -> sqlite3.Connection | None:
        try:
            conn = sqlite3.connect(f"file:{shard}?mode=rw", uri=True, timeout=30)  # never creates
            conn.execute("SELECT 1 FROM responses LIMIT 1")
            return conn
        except sqlite3.Error:  # vanished (cleared) or unreadable: nothing to serve from it
            return None

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> Iterable[tuple[Any, ...]]:
        params = list(params)
        for shard in self.shards():
            conn = self._open(shard)
            if conn is None:
                continue
            try:
                yield from conn.execute(sql, params).fetchall()
            finally:
                conn.close()

    def get_many(self, keys: Iterable[str]) -> dict[str, Result]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, Result] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = [k for k in wanted[start : start + _CHUNK] if k not in found]
            if not chunk:
                continue
            marks = ",".join("?" * len(chunk))
            for key, text in self._rows(f"SELECT key, result FROM responses WHERE key IN ({marks})", chunk):
                found.setdefault(key, decode_result(text))
        return found

    # ------------------------------------------------------------------------------------ writing
    def _own_shard(self) -> sqlite3.Connection:
        """This process's shard, created complete (schema, WAL) under a temporary name, then renamed."""
        if self._writer is not None and self._pid == os.getpid():
            return self._writer
        self.root.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()
        path = self.root / f"shard-{socket.gethostname()}-{pid}.sqlite"
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
        return self._writer

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
        with self._lock:
            conn = self._own_shard()
            with conn:
                conn.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    # ---------------------------------------------------------------------------------- inspection
    def stats(self) -> dict[str, Any]:
        keys: dict[str, str] = {}
        for key, model in self._rows("SELECT key, model FROM responses"):
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
            for key, model, kind, created, request, result in self._rows(sql):
                if key in seen:
                    continue
                seen.add(key)
                record = {
                    "key": key,
                    "model": model,
                    "kind": kind,
                    "created": created,
                    "request": None if request is None else json.loads(request),
                    "result": json.loads(result),
                }
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

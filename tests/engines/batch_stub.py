"""A loopback server speaking OpenAI's Files + Batches API and Anthropic's Message Batches API, and the
synchronous chat endpoints of both (so a grid can go through either path against the same answers).

Answers are a pure function of the request (the prompt's hash picks letters and log-probs), so a grid
run synchronously and through batches gives the same numbers. Faults: ``hold`` keeps every batch
in progress until set; ``latency_s`` keeps a batch in progress that long; ``line_faults`` fails lines
whose prompt has a marker (a count per marker); ``expire_next`` lets the next batch expire after so many
lines; ``fail_next`` fails the next batch whole with a reason; ``stall_accept_s`` accepts and records a
new batch but answers the request that created it only after that many seconds (a driver killed meanwhile
never hears the batch id); ``list_status`` makes the batch listings fail with that HTTP status. ``lines``
counts every line received by its ``custom_id`` (a line sent twice shows as 2). Both listings (OpenAI's
``GET /v1/batches``, echoing each batch's ``metadata``, and Anthropic's ``GET /v1/messages/batches``) are
newest first and paginated (``limit``, ``after`` / ``after_id``) as the providers do.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

LETTERS = ("A", "B", "C", "D", "E")


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return str(content)


def _prompt(body: dict[str, Any]) -> str:
    system = _text(body.get("system", ""))
    return system + "\n".join(_text(m.get("content", "")) for m in body.get("messages", []))


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def answer_texts(body: dict[str, Any]) -> list[str]:
    """A letter per choice, chosen by the prompt's hash (and the choice's index)."""
    d = _digest(_prompt(body))
    n = int(body.get("n") or 1)
    return [LETTERS[d[i % len(d)] % len(LETTERS)] for i in range(n)]


def answer_logprobs(body: dict[str, Any]) -> list[tuple[str, float]]:
    d = _digest("lp" + _prompt(body))
    return sorted(((t, -0.1 - d[i] / 64.0) for i, t in enumerate(LETTERS)), key=lambda kv: -kv[1])


def completion(body: dict[str, Any], ident: str) -> dict[str, Any]:
    texts = answer_texts(body)
    prompt_tokens = len(_prompt(body).split())
    choices = []
    for i, text in enumerate(texts):
        choice: dict[str, Any] = {
            "index": i,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop",
            "logprobs": None,
        }
        if body.get("logprobs"):
            top = answer_logprobs(body)[: int(body.get("top_logprobs") or 0)]
            choice["logprobs"] = {
                "content": [
                    {
                        "token": top[0][0],
                        "logprob": top[0][1],
                        "bytes": None,
                        "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in top],
                    }
                ]
            }
        choices.append(choice)
    return {
        "id": ident,
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "stub"),
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(texts),
            "total_tokens": prompt_tokens + len(texts),
        },
    }


def message(params: dict[str, Any], ident: str) -> dict[str, Any]:
    (text,) = answer_texts({**params, "n": 1})
    return {
        "id": ident,
        "type": "message",
        "role": "assistant",
        "model": params.get("model", "stub"),
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": len(_prompt(params).split()), "output_tokens": 1},
    }


def _iso(t: float | None) -> str | None:
    return None if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


@dataclass
class _Batch:
    id: str
    kind: str  # openai | anthropic
    lines: list[dict[str, Any]]
    created: float  # monotonic, for the latency
    input_file_id: str = ""
    created_at: float = field(default_factory=time.time)  # wall clock, as the provider reports it
    metadata: dict[str, str] | None = None
    status: str = "in_progress"
    expire_after: int | None = None
    fail_reason: str | None = None
    output: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    output_file_id: str | None = None
    error_file_id: str | None = None


@dataclass
class BatchStub:
    latency_s: float = 0.0
    hold: threading.Event = field(default_factory=threading.Event)
    line_faults: dict[str, int] = field(default_factory=dict)
    expire_next: list[int] = field(default_factory=list)
    fail_next: list[str] = field(default_factory=list)
    lines: Counter = field(default_factory=Counter)
    sync_calls: int = 0
    headers_seen: list[dict[str, str]] = field(default_factory=list)
    stall_accept_s: float = 0.0
    list_status: int | None = None
    list_calls: int = 0

    def __post_init__(self) -> None:
        self.hold.set()
        self._lock = threading.Lock()
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, _Batch] = {}
        self._server: ThreadingHTTPServer | None = None
        self._stopping = threading.Event()

    # --- batch processing ----------------------------------------------------------------------------
    def _line_fault(self, prompt: str) -> bool:
        for marker, left in self.line_faults.items():
            if marker in prompt and left > 0:
                self.line_faults[marker] = left - 1
                return True
        return False

    def _finish(self, b: _Batch) -> None:
        """Answer a batch's lines (called once, when it is polled after its latency)."""
        if b.fail_reason is not None:
            b.status = "failed"
            return
        limit = len(b.lines) if b.expire_after is None else b.expire_after
        for i, line in enumerate(b.lines[:limit]):
            cid = line["custom_id"]
            params = line["body"] if b.kind == "openai" else line["params"]
            if self._line_fault(_prompt(params)):
                if b.kind == "openai":
                    b.errors.append(
                        {
                            "id": f"r{i}",
                            "custom_id": cid,
                            "response": {
                                "status_code": 500,
                                "request_id": "x",
                                "body": {
                                    "error": {"message": "injected server error", "type": "server_error"}
                                },
                            },
                            "error": None,
                        }
                    )
                else:
                    b.output.append(
                        {
                            "custom_id": cid,
                            "result": {
                                "type": "errored",
                                "error": {
                                    "type": "error",
                                    "error": {"type": "api_error", "message": "injected"},
                                },
                            },
                        }
                    )
                continue
            if b.kind == "openai":
                b.output.append(
                    {
                        "id": f"r{i}",
                        "custom_id": cid,
                        "response": {
                            "status_code": 200,
                            "request_id": "x",
                            "body": completion(params, f"c{i}"),
                        },
                        "error": None,
                    }
                )
            else:
                b.output.append(
                    {"custom_id": cid, "result": {"type": "succeeded", "message": message(params, f"m{i}")}}
                )
        if b.expire_after is not None and b.kind == "anthropic":
            b.output += [
                {"custom_id": ln["custom_id"], "result": {"type": "expired"}} for ln in b.lines[limit:]
            ]
        b.status = "expired" if b.expire_after is not None else "completed"
        if b.kind == "openai":
            for name, rows in (("output_file_id", b.output), ("error_file_id", b.errors)):
                if rows:
                    fid = f"file-out-{len(self.files)}"
                    self.files[fid] = b"".join(json.dumps(r).encode() + b"\n" for r in rows)
                    setattr(b, name, fid)

    def _poll(self, b: _Batch) -> None:
        if (
            b.status == "in_progress"
            and self.hold.is_set()
            and time.monotonic() - b.created >= self.latency_s
        ):
            self._finish(b)

    def _openai_view(self, b: _Batch) -> dict[str, Any]:
        done = len(b.output)
        return {
            "id": b.id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "errors": {"object": "list", "data": [{"code": "failed", "message": b.fail_reason}]}
            if b.fail_reason
            else None,
            "input_file_id": b.input_file_id,
            "completion_window": "24h",
            "status": b.status,
            "output_file_id": b.output_file_id,
            "error_file_id": b.error_file_id,
            "created_at": int(b.created_at),
            "request_counts": {"total": len(b.lines), "completed": done, "failed": len(b.errors)},
            "metadata": b.metadata,
        }

    def _anthropic_view(self, b: _Batch, base: str) -> dict[str, Any]:
        ended = b.status != "in_progress"
        kinds = Counter(o["result"]["type"] for o in b.output)
        return {
            "id": b.id,
            "type": "message_batch",
            "processing_status": "ended"
            if ended
            else ("canceling" if b.status == "canceling" else "in_progress"),
            "request_counts": {
                "processing": 0 if ended else len(b.lines),
                "succeeded": kinds["succeeded"],
                "errored": kinds["errored"],
                "canceled": kinds["canceled"],
                "expired": kinds["expired"],
            },
            "created_at": _iso(b.created_at),
            "ended_at": _iso(time.time()) if ended else None,
            "expires_at": _iso(time.time() + 86400),
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": f"{base}/v1/messages/batches/{b.id}/results" if ended else None,
        }

    def _create(
        self,
        kind: str,
        lines: list[dict[str, Any]],
        input_file_id: str = "",
        metadata: dict[str, str] | None = None,
    ) -> _Batch:
        with self._lock:
            prefix = "batch" if kind == "openai" else "msgbatch"
            b = _Batch(f"{prefix}_{len(self.batches)}", kind, lines, time.monotonic(), input_file_id)
            b.metadata = metadata
            if self.expire_next:
                b.expire_after = self.expire_next.pop(0)
            if self.fail_next:
                b.fail_reason = self.fail_next.pop(0)
            self.lines.update(line["custom_id"] for line in lines)
            self.batches[b.id] = b
            return b

    def _listing(self, kind: str, query: dict[str, list[str]]) -> tuple[list[_Batch], bool]:
        """One page of a kind's batches, newest first, after the cursor (the last id of the page before)."""
        newest_first = [b for b in reversed(self.batches.values()) if b.kind == kind]
        after = (query.get("after") or query.get("after_id") or [None])[0]
        if after is not None:
            ids = [b.id for b in newest_first]
            newest_first = newest_first[ids.index(after) + 1 :] if after in ids else []
        limit = int((query.get("limit") or ["20"])[0])
        return newest_first[:limit], len(newest_first) > limit

    # --- HTTP ------------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> BatchStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _send(self, status: int, payload: Any, raw: bytes | None = None) -> None:
                data = raw if raw is not None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _base(self) -> str:
                return f"http://{self.headers.get('Host')}"

            def do_GET(self) -> None:  # noqa: N802
                stub.headers_seen.append(dict(self.headers))
                path = self.path.split("?")[0].rstrip("/")
                parts = path.split("/")
                query = parse_qs(urlsplit(self.path).query)
                with stub._lock:
                    if path in ("/v1/batches", "/v1/messages/batches"):
                        stub.list_calls += 1
                        if stub.list_status is not None:
                            message = {"type": "error", "message": "listing unavailable"}
                            return self._send(stub.list_status, {"type": "error", "error": message})
                        kind = "openai" if path == "/v1/batches" else "anthropic"
                        page, more = stub._listing(kind, query)
                        if kind == "openai":
                            data = [stub._openai_view(b) for b in page]
                            ends = {"first_id": page[0].id, "last_id": page[-1].id} if page else {}
                            return self._send(200, {"object": "list", "data": data, "has_more": more, **ends})
                        views = [stub._anthropic_view(b, self._base()) for b in page]
                        first, last = (page[0].id, page[-1].id) if page else (None, None)
                        ends = {"first_id": first, "last_id": last}
                        return self._send(200, {"data": views, "has_more": more, **ends})
                    if path == "/stats":  # for a benchmark running the stub in another process
                        total = sum(stub.lines.values())
                        return self._send(
                            200,
                            {
                                "lines": total,
                                "unique": len(stub.lines),
                                "twice": stub.sent_twice(),
                                "batches": len(stub.batches),
                                "sync_calls": stub.sync_calls,
                            },
                        )
                    if path.startswith("/v1/files/") and path.endswith("/content"):
                        return self._send(200, None, stub.files[parts[3]])
                    if path.startswith("/v1/batches/"):
                        b = stub.batches[parts[3]]
                        stub._poll(b)
                        return self._send(200, stub._openai_view(b))
                    if path.startswith("/v1/messages/batches/") and path.endswith("/results"):
                        b = stub.batches[parts[4]]
                        return self._send(
                            200, None, b"".join(json.dumps(o).encode() + b"\n" for o in b.output)
                        )
                    if path.startswith("/v1/messages/batches/"):
                        b = stub.batches[parts[4]]
                        stub._poll(b)
                        return self._send(200, stub._anthropic_view(b, self._base()))
                self._send(404, {"error": {"message": f"no route {path}"}})

            def do_POST(self) -> None:  # noqa: N802
                stub.headers_seen.append(dict(self.headers))
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                path = self.path.split("?")[0].rstrip("/")
                parts = path.split("/")
                if path == "/v1/files":
                    content = _multipart_file(raw, self.headers.get("Content-Type", ""))
                    with stub._lock:
                        fid = f"file-in-{len(stub.files)}"
                        stub.files[fid] = content
                    return self._send(
                        200,
                        {
                            "id": fid,
                            "object": "file",
                            "bytes": len(content),
                            "created_at": 0,
                            "filename": "batch.jsonl",
                            "purpose": "batch",
                            "status": "processed",
                        },
                    )
                body = json.loads(raw or b"{}")
                if path == "/v1/batches":
                    lines = [
                        json.loads(x) for x in stub.files[body["input_file_id"]].splitlines() if x.strip()
                    ]
                    b = stub._create("openai", lines, body["input_file_id"], body.get("metadata"))
                    stub._stall()
                    return self._send(200, stub._openai_view(b))
                if path == "/v1/messages/batches":
                    b = stub._create("anthropic", body["requests"])
                    stub._stall()
                    return self._send(200, stub._anthropic_view(b, self._base()))
                if path.endswith("/cancel"):
                    with stub._lock:
                        b = stub.batches[parts[-2]]
                        if b.status == "in_progress":
                            b.status = "cancelled"
                            if b.kind == "anthropic":
                                b.output = [
                                    {"custom_id": ln["custom_id"], "result": {"type": "canceled"}}
                                    for ln in b.lines
                                ]
                        view = (
                            stub._openai_view(b)
                            if b.kind == "openai"
                            else stub._anthropic_view(b, self._base())
                        )
                    return self._send(200, view)
                with stub._lock:
                    stub.sync_calls += 1
                if path.endswith("/messages"):
                    return self._send(200, message(body, "m"))
                return self._send(200, completion(body, "c"))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def _stall(self) -> None:
        """The batch is accepted and recorded; the client hears of it only after ``stall_accept_s``."""
        if self.stall_accept_s > 0:
            self._stopping.wait(self.stall_accept_s)

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def sent_twice(self) -> int:
        return sum(1 for n in self.lines.values() if n > 1)


def _multipart_file(raw: bytes, content_type: str) -> bytes:
    """The ``file`` part of a multipart/form-data body."""
    boundary = content_type.split("boundary=", 1)[1].strip('"').encode()
    for part in raw.split(b"--" + boundary):
        head, _, rest = part.partition(b"\r\n\r\n")
        if b'name="file"' in head:
            return rest[:-2] if rest.endswith(b"\r\n") else rest
    raise ValueError("no file part")


@pytest.fixture(name="batch_stub")
def batch_stub_fixture() -> Iterator[BatchStub]:
    stub = BatchStub().start()
    try:
        yield stub
    finally:
        stub.stop()

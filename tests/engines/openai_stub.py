"""A real OpenAI chat-completions server on loopback, for testing API engines end to end.

It speaks HTTP over a socket (no mocking inside the client), so retries, timeouts, Retry-After and
malformed bodies go through the same transport code as in production. Faults are injected either for
the first k calls (``script``) or for requests whose prompt contains a marker (``on_marker``). A fault can
hold its answer until the test opens a gate (``Fault.gate``), so the order of events across concurrent
requests is decided by the test, not by timing; ``latency_s`` gives every answer a random delay.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour. ``status`` 200 with ``malformed`` sends a broken JSON body."""

    status: int = 200
    retry_after: str | None = None
    delay_s: float = 0.0
    malformed: bool = False
    body: str | None = None  # raw body to send instead of a completion (or of the error, status != 200)
    gate: threading.Event | None = None  # answer only once this is set (or the stub stops)

    @staticmethod
    def rate_limited(retry_after: str | None = "1") -> Fault:
        return Fault(status=429, retry_after=retry_after)

    @staticmethod
    def server_error(status: int = 500) -> Fault:
        return Fault(status=status)

    @staticmethod
    def slow(delay_s: float) -> Fault:
        return Fault(delay_s=delay_s)

    @staticmethod
    def broken_json() -> Fault:
        return Fault(malformed=True)


@dataclass
class Received:
    """A request as the server saw it, with when it arrived (the stub's ``clock``) and what it answered
    (``status``: 0 while the answer is pending or when the client went away)."""

    body: dict[str, Any]
    headers: dict[str, str]
    at: float
    fault: Fault | None
    status: int = 0

    @property
    def prompt(self) -> str:
        return "\n".join(str(m.get("content", "")) for m in self.body.get("messages", []))


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out closes its socket mid-request; that is expected here, not news."""


def _text(content: Any) -> str:
    """A message's text: a string, or Anthropic's list of content blocks."""
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return str(content)


def _words(text: str) -> int:
    return len(text.split())


def echo_reply(body: dict[str, Any]) -> list[str]:
    """Default reply: each choice echoes the last message, so a test can match answers to prompts."""
    last = str(body["messages"][-1]["content"])
    n = int(body.get("n") or 1)
    return [f"echo:{last}" if n == 1 else f"echo:{last}#{i}" for i in range(n)]


@dataclass
class OpenAIStub:
    """Scripted OpenAI-compatible server; ``base_url`` goes into an engine's ``api_base``."""

    #: token -> logprob returned as ``top_logprobs`` of the first position when logprobs are requested.
    top_logprobs: dict[str, float] = field(default_factory=lambda: {"A": -0.5, " B": -1.5, "C": -2.5})
    reply: Callable[[dict[str, Any]], list[str]] = echo_reply
    received: list[Received] = field(default_factory=list)
    usage_sent: list[tuple[int, int]] = field(default_factory=list)
    #: time stamps of ``Received.at`` (a test's virtual clock, or the benchmark's)
    clock: Callable[[], float] = time.monotonic
    #: (low, high): every answer waits a uniformly random time in this range, like a real API's latency
    latency_s: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._script: deque[Fault | None] = deque()
        self._markers: dict[str, deque[Fault]] = defaultdict(deque)
        self._sticky: dict[str, Fault] = {}
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- scripting -------------------------------------------------------------------------------
    def script(self, *faults: Fault | None) -> None:
        """The next calls (in arrival order) get these faults; ``None`` means a normal answer."""
        with self._lock:
            self._script.extend(faults)

    def on_marker(self, marker: str, *faults: Fault, always: bool = False) -> None:
        """Requests whose prompt contains ``marker`` get these faults in order (or forever)."""
        with self._lock:
            if always:
                self._sticky[marker] = faults[0]
            else:
                self._markers[marker].extend(faults)

    def clear_faults(self) -> None:
        """Forget every scripted and marker fault: the stub answers normally again."""
        with self._lock:
            self._script.clear()
            self._markers.clear()
            self._sticky.clear()

    def hits(self, marker: str) -> int:
        """How many requests containing ``marker`` the server received."""
        return sum(marker in r.prompt for r in self.received)

    def _fault_for(self, prompt: str) -> Fault | None:
        with self._lock:
            for marker, fault in self._sticky.items():
                if marker in prompt:
                    return fault
            for marker, queue in self._markers.items():
                if marker in prompt and queue:
                    return queue.popleft()
            if self._script:
                return self._script.popleft()
        return None

    # --- protocol --------------------------------------------------------------------------------
    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        texts = self.reply(body)
        prompt_tokens = sum(_words(str(m.get("content", ""))) for m in body["messages"])
        completion_tokens = sum(max(1, _words(t)) for t in texts)
        with self._lock:
            self.usage_sent.append((prompt_tokens, completion_tokens))
        choices = []
        for i, text in enumerate(texts):
            choice: dict[str, Any] = {
                "index": i,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
                "logprobs": None,
            }
            if body.get("logprobs") and self.top_logprobs:  # empty: a server that ignores logprobs
                k = int(body.get("top_logprobs") or 0)
                top = sorted(self.top_logprobs.items(), key=lambda kv: -kv[1])[:k]
                first = top[0] if top else (text[:1], 0.0)
                choice["logprobs"] = {
                    "content": [
                        {
                            "token": first[0],
                            "logprob": first[1],
                            "bytes": list(first[0].encode()),
                            "top_logprobs": [
                                {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top
                            ],
                        }
                    ]
                }
            choices.append(choice)
        return {
            "id": f"chatcmpl-{len(self.received)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "stub"),
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def anthropic_message(self, body: dict[str, Any]) -> dict[str, Any]:
        """The same reply in the shape of Anthropic's Messages API (one text, no log-probs)."""
        flat = {**body, "messages": [{**m, "content": _text(m.get("content", ""))} for m in body["messages"]]}
        (text, *_) = self.reply(flat) or [""]
        prompt_tokens = sum(_words(m["content"]) for m in flat["messages"])
        return {
            "id": f"msg_{len(self.received)}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "stub"),
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": prompt_tokens, "output_tokens": max(1, _words(text))},
        }

    # --- lifecycle -------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> OpenAIStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

            def _send(self, status: int, payload: bytes, extra: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:  # noqa: N802 - stdlib naming
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.loads(raw or b"{}")
                prompt = "\n".join(_text(m.get("content", "")) for m in body.get("messages", []))
                fault = stub._fault_for(prompt)
                seen = Received(body, dict(self.headers), stub.clock(), fault)
                with stub._lock:
                    stub.received.append(seen)
                delay = fault.delay_s if fault is not None else 0.0
                if stub.latency_s is not None:
                    delay += random.uniform(*stub.latency_s)
                if delay and stub._stop.wait(delay):
                    return
                if fault is not None and fault.gate is not None:
                    while not fault.gate.wait(0.05):
                        if stub._stop.is_set():
                            return
                status = fault.status if fault is not None else 200
                try:
                    if fault is not None and fault.status != 200:
                        extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                        err = {"error": {"message": f"injected {fault.status}", "type": "stub", "code": None}}
                        payload = (
                            fault.body if fault.body is not None else json.dumps(err)
                        )  # e.g. an echoed key
                        self._send(fault.status, payload.encode(), extra)
                    elif fault is not None and (fault.malformed or fault.body is not None):
                        payload = fault.body if fault.body is not None else '{"id": "x", "choices": [{"in'
                        self._send(200, payload.encode())
                    elif self.path.rstrip("/").endswith("/messages"):  # Anthropic's Messages API
                        self._send(200, json.dumps(stub.anthropic_message(body)).encode())
                    else:
                        self._send(200, json.dumps(stub.completion(body)).encode())
                    seen.status = status
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout); nothing to answer

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


@pytest.fixture(name="openai_stub")
def openai_stub_fixture() -> Iterator[OpenAIStub]:
    """A started stub; stopped (and any delayed handler released) when the test ends."""
    stub = OpenAIStub().start()
    try:
        yield stub
    finally:
        stub.stop()

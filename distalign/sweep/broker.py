"""Which requests a sweep sends, once each, and which planned units each answer completes.

Many cells ask for the same request (the same prompt under two calibrations, the same model on a dataset's
no-steering prompts); the broker sends each key once: a key answered earlier is served from memory while a
unit still needs it, a key queued or in flight gets the new unit added to its waiters. It holds only what
planned, unfinished units need, so the driver's memory follows the cells it is working on, not the grid.

Pure bookkeeping: no engines, no store, no clock, so its logic is tested in milliseconds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Registered:
    """A unit the broker now tracks: ``new`` are its keys nobody asked for before (to be looked up in the
    store, then queued), ``ready`` whether every key was already answered."""

    uid: int
    new: list[str]
    ready: bool


@dataclass
class _Unit:
    keys: tuple[str, ...]
    remaining: int


@dataclass
class RequestBroker:
    """Keys queued per (model, kind), waiters per key in flight, answers kept while a unit needs them."""

    #: (model, kind) -> keys waiting to be sent, in planning order
    queues: dict[tuple[str, str], deque[str]] = field(default_factory=dict)
    _units: dict[int, _Unit] = field(default_factory=dict)
    _next: int = 0
    _waiters: dict[str, list[int]] = field(default_factory=dict)  # key queued or in flight -> units
    _requests: dict[str, Any] = field(default_factory=dict)  # key queued or in flight -> its request
    _answers: dict[str, tuple[Any, bool]] = field(default_factory=dict)  # answer, whether sent in this run
    _needed: dict[str, int] = field(default_factory=dict)  # key -> tracked units that need it
    _seen: set[str] = field(default_factory=set)  # every key registered in this sweep

    def add(self, keys: Sequence[str], requests: Sequence[Any]) -> Registered:
        uid = self._next
        self._next += 1
        distinct = dict(zip(keys, requests, strict=True))
        unit = _Unit(tuple(keys), 0)
        new: list[str] = []
        for key, request in distinct.items():
            self._needed[key] = self._needed.get(key, 0) + 1
            if key in self._answers:
                continue
            unit.remaining += 1
            if key in self._waiters:
                self._waiters[key].append(uid)
            else:
                self._waiters[key] = [uid]
                self._requests[key] = request
                new.append(key)
        self._units[uid] = unit
        return Registered(uid, new, unit.remaining == 0)

    def first_seen(self, keys: Sequence[str]) -> list[str]:
        """The keys among ``keys`` never registered before in this sweep (counted once as requests)."""
        first = [k for k in keys if k not in self._seen]
        self._seen.update(first)
        return first

    def queue(self, model: str, kind: str, keys: Sequence[str]) -> None:
        if keys:
            self.queues.setdefault((model, kind), deque()).extend(keys)

    def take(self, model: str, kind: str, n: int) -> list[str]:
        """Up to ``n`` queued keys of that model and kind, oldest first."""
        queue = self.queues.get((model, kind))
        if not queue:
            return []
        keys = [queue.popleft() for _ in range(min(n, len(queue)))]
        if not queue:
            del self.queues[(model, kind)]
        return keys

    def request(self, key: str) -> Any:
        return self._requests[key]

    def backlog(self) -> int:
        """Keys queued or in flight."""
        return len(self._requests)

    def answer(self, keys: Sequence[str], results: Sequence[Any], sent: bool) -> list[int]:
        """Record answers; returns the units they complete. A key nobody waits for (answered twice) is
        ignored."""
        ready = []
        for key, result in zip(keys, results, strict=True):
            waiting = self._waiters.pop(key, None)
            if waiting is None:
                continue
            self._answers[key] = (result, sent)
            self._requests.pop(key, None)
            for uid in waiting:
                unit = self._units[uid]
                unit.remaining -= 1
                if unit.remaining == 0:
                    ready.append(uid)
        return ready

    def release(self, uid: int) -> list[tuple[Any, bool]]:
        """A complete unit's answers in its keys' order; what no other unit needs is let go."""
        unit = self._units.pop(uid)
        answers = [self._answers[k] for k in unit.keys]
        for key in dict.fromkeys(unit.keys):
            left = self._needed[key] - 1
            if left:
                self._needed[key] = left
            else:
                del self._needed[key]
                self._answers.pop(key, None)
        return answers

    def held(self) -> int:
        """Answers kept for units not yet released (the driver's memory, in answers)."""
        return len(self._answers)

"""Run a sweep: validate -> skip finished cells -> plan -> serve from the store -> stream the misses to the
engine pools -> parse, score and record each cell the moment its last request is answered.

The driver is the only process that touches the response store and the tracker; actors only compute. Each
answered batch is written to the store at once, so a crash loses nothing that was answered, and a rerun sends
only what is missing. A batch lost with a dead actor is re-sent (the pool restarts the actor); a request that
keeps failing becomes an error result, which makes its unit unparsed rather than failing its cell.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distalign.errors import InputError
from distalign.records.config import CellConfig, SweepSettings, spec_hash
from distalign.records.results import CellResult, SweepOutcome
from distalign.sweep.cells import as_cell
from distalign.sweep.cellscore import score_cell
from distalign.sweep.plan import Plan, plan_cells
from distalign.sweep.pool import KINDS, error_results
from distalign.sweep.progress import SweepProgress
from distalign.sweep.trackers import MemoryTracker, Tracker
from distalign.sweep.validate import validate_cells

log = logging.getLogger("distalign.sweep")

#: a batch lost this many times (actor died while holding it) becomes error results, never re-sent forever
MAX_BATCH_ATTEMPTS = 4
#: an actor that is restarting (reloading its model) is waited for, with backoff, up to this long per batch
MAX_UNAVAILABLE_S = 1800.0
WAIT_TIMEOUT_S = 0.5


def store_root(settings: SweepSettings) -> Path:
    """The configured store, else ``$DISTALIGN_STORE``, else ``./.distalign/store``."""
    from distalign.engines.store import default_store_root

    return Path(settings.store) if settings.store else default_store_root()


def _kind(request: Any) -> str:
    from distalign.records.engine import OptionLogprobRequest

    return KINDS[0] if isinstance(request, OptionLogprobRequest) else KINDS[1]


@dataclass
class _Batch:
    model: str
    kind: str
    keys: list[str]
    attempts: int = 0
    not_before: float = 0.0  # backoff while the actor restarts
    waits: int = 0
    unavailable_since: float | None = None


def _batches(plan: Plan, misses: Sequence[str], size: int) -> dict[str, deque[_Batch]]:
    """Misses in plan order (early cells first, so they finish first), per model and request kind."""
    open_: dict[tuple[str, str], _Batch] = {}
    queues: dict[str, deque[_Batch]] = {}
    for key in misses:
        model = plan.model_of[key]
        kind = _kind(plan.requests[key])
        batch = open_.get((model, kind))
        if batch is None:
            batch = open_[(model, kind)] = _Batch(model, kind, [])
            queues.setdefault(model, deque()).append(batch)
        batch.keys.append(key)
        if len(batch.keys) >= size:
            del open_[(model, kind)]
    return queues


class _Driver:
    def __init__(
        self,
        plan: Plan,
        settings: SweepSettings,
        tracker: Tracker,
        store: Any,
        t0: float,
        settle: Any = lambda: None,
    ) -> None:
        self.plan, self.settings, self.tracker, self.store, self.t0 = plan, settings, tracker, store, t0
        self.settle = settle  # called once a cell's result is kept (see ``_settled_heap``)
        self.engine_stats: dict[str, Any] = {}
        self.answers: dict[str, Any] = {}
        self.sent: set[str] = set()
        self.results: list[CellResult] = []
        self.remaining = [len(cp.keys) for cp in plan.cells]
        self.waiting: dict[str, list[int]] = {}
        for i, cp in enumerate(plan.cells):
            for k in cp.keys:
                self.waiting.setdefault(k, []).append(i)
        self.engine_s = 0.0
        self.score_s = 0.0
        self.progress: SweepProgress | None = None

    def record(self, result: CellResult) -> None:
        self.results.append(result)
        self.tracker.log_cell(result)
        if self.progress is not None:
            self.progress.cell(result.status == "failed")

    def answer(self, keys: Sequence[str], results: Sequence[Any]) -> None:
        ready = []
        for key, res in zip(keys, results, strict=True):
            if key in self.answers:
                continue
            self.answers[key] = res
            for ci in self.waiting.get(key, ()):
                self.remaining[ci] -= 1
                if self.remaining[ci] == 0:
                    ready.append(ci)
        for ci in ready:
            self.finish(ci)

    def finish(self, ci: int) -> None:
        cp = self.plan.cells[ci]
        t = time.perf_counter()
        try:
            result = score_cell(cp, self.answers, self.sent, self.settings, time.perf_counter() - self.t0)
        except Exception as exc:  # noqa: BLE001 - a cell that cannot be scored fails alone
            log.exception("cell %s failed while scoring", cp.spec_hash)
            result = CellResult(
                cp.spec_hash, cp.cell, "failed", f"scoring failed: {type(exc).__name__}: {exc}"
            )
        self.score_s += time.perf_counter() - t
        self.record(result)
        self.settle()

    def stream(self, misses: list[str], pools: Any) -> dict[str, Any]:
        """Send the misses to the pools, several batches in flight per actor, models side by side."""
        import ray

        queues = _batches(self.plan, misses, max(1, self.settings.batch_size))
        in_flight: dict[Any, tuple[_Batch, str, int]] = {}
        while queues or in_flight:
            now = time.monotonic()
            for model in list(queues):
                q = queues[model]
                while q and q[0].not_before <= now and pools.has_room(model):
                    batch = q.popleft()
                    reqs = [self.plan.requests[k] for k in batch.keys]
                    ref, pkey, idx = pools.submit(model, batch.kind, reqs)
                    in_flight[ref] = (batch, pkey, idx)
                if not q:
                    del queues[model]
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=WAIT_TIMEOUT_S)
            if ready:
                more, _ = ray.wait(
                    [r for r in in_flight if r not in ready], timeout=0, num_returns=len(in_flight) - 1
                )
                ready += more
            for ref in ready:
                batch, pkey, idx = in_flight.pop(ref)
                pools.done(pkey, idx)
                self._collect(ref, batch, queues)
        return pools.stats()

    def _collect(self, ref: Any, batch: _Batch, queues: dict[str, deque[_Batch]]) -> None:
        import ray

        try:
            results, engine_s = ray.get(ref)
        except ray.exceptions.ActorUnavailableError as exc:  # restarting: wait for it, not counted as a loss
            now = time.monotonic()
            batch.unavailable_since = batch.unavailable_since or now
            if now - batch.unavailable_since < MAX_UNAVAILABLE_S:
                batch.not_before = now + min(5.0, 0.1 * 2 ** min(batch.waits, 6))
                batch.waits += 1
                queues.setdefault(batch.model, deque()).appendleft(batch)
                return
            results = error_results(batch.kind, len(batch.keys), f"{type(exc).__name__}: {exc}")
            engine_s = 0.0
        except Exception as exc:  # noqa: BLE001 - the actor died holding the batch: re-send, boundedly
            batch.attempts += 1
            if batch.attempts < MAX_BATCH_ATTEMPTS:
                log.warning("batch of %d lost (%s); re-sending", len(batch.keys), type(exc).__name__)
                queues.setdefault(batch.model, deque()).appendleft(batch)
                return
            results = error_results(batch.kind, len(batch.keys), f"{type(exc).__name__}: {exc}")
            engine_s = 0.0
        batch.unavailable_since, batch.waits = None, 0
        self.engine_s += engine_s
        self.sent.update(batch.keys)
        ok = [(k, r) for k, r in zip(batch.keys, results, strict=True) if r.error is None]
        if ok:
            self.store.put_many(ok, model=batch.model)
        if self.progress is not None:
            tokens = sum(r.usage.prompt_tokens + r.usage.completion_tokens for r in results)
            self.progress.batch(len(results), tokens, sum(r.usage.cost_usd for r in results))
        self.answer(batch.keys, results)


@contextmanager
def _settled_heap() -> Iterator[Any]:
    """Keeps the garbage collector off what the sweep holds on purpose.

    A sweep keeps every rendered prompt, request and answer alive until the end (tens of thousands of
    objects each), and each of Python's full collections walks all of them again: a fifth of the driver's
    time on a large grid. Each planned or scored cell is therefore moved out of the collector's sight
    (``gc.freeze``) and handed back when the sweep ends; garbage made in between is collected as usual.
    A process that already froze objects of its own is left as it is.
    """
    if gc.get_freeze_count():
        yield lambda: None
        return
    try:
        yield gc.freeze
    finally:
        gc.unfreeze()


class _Engines:
    """Ray and the engine pools, started on first need (a sweep served wholly from the store starts
    neither) and shut down by the sweep that started them."""

    def __init__(self, settings: SweepSettings, models: dict[str, Any]) -> None:
        self.settings, self.models = settings, models
        self._pools: Any = None
        self._started_ray = False

    def pools(self) -> Any:
        if self._pools is None:
            from distalign.sweep.capacity import check_gpu_capacity
            from distalign.sweep.pool import EnginePools, ensure_ray

            self._started_ray = ensure_ray(self.settings)
            try:  # before any actor starts: an actor the cluster cannot place would wait forever
                check_gpu_capacity(list(self.models.values()))
            except InputError:
                if self._started_ray:
                    import ray

                    ray.shutdown()
                    self._started_ray = False
                raise
            self._pools = EnginePools(self.models, lazy=True)
        return self._pools

    def start(self, model: str) -> None:
        self.pools().start(model)

    def shutdown(self) -> None:
        if self._pools is not None:
            self._pools.shutdown()
        if self._started_ray:
            import ray

            ray.shutdown()


def _run(
    plan: Plan,
    todo: list[CellConfig],
    settings: SweepSettings,
    tracker: Tracker,
    store: Any,
    engines: _Engines,
    t0: float,
    settle: Any,
) -> tuple[_Driver, dict[str, Any], float]:
    try:
        # planned cell by cell: a model's engines start (in the background) as soon as the first request
        # they must answer is known, so loading them overlaps with planning the rest
        cached: dict[str, Any] = {}
        misses: list[str] = []
        plan_s = 0.0
        t = time.perf_counter()
        for new in plan_cells(plan, todo):
            plan_s += time.perf_counter() - t
            settle()
            if new:
                hits = store.get_many(new)
                cached.update(hits)
                missed = [k for k in new if k not in hits]
                misses.extend(missed)
                for model in dict.fromkeys(plan.model_of[k] for k in missed):
                    engines.start(model)
            t = time.perf_counter()
        driver = _Driver(plan, settings, tracker, store, t0, settle)
        for cell, shash, error in plan.failed:
            driver.record(CellResult(shash, cell, "failed", error))
        with SweepProgress(len(todo), len(plan.requests), enabled=settings.progress) as progress:
            driver.progress = progress
            progress.hits(len(cached))
            for i, cp in enumerate(plan.cells):
                if not cp.keys:
                    driver.finish(i)
            driver.answer(list(cached), list(cached.values()))
            if misses:
                driver.engine_stats = driver.stream(misses, engines.pools())
    finally:
        engines.shutdown()
    return driver, cached, plan_s


def _flush_quietly(tracker: Tracker) -> None:
    try:
        tracker.flush()
    except Exception:  # noqa: BLE001 - the error already propagating is the one to report
        log.exception("could not record the cells finished before the sweep stopped")


def run_sweep(
    cells: Sequence[CellConfig],
    settings: SweepSettings,
    tracker: Tracker | None = None,
) -> SweepOutcome:
    """Run every unfinished cell; returns the results of the cells run now (not of the skipped ones), in
    the order of ``cells``, while the tracker receives each cell as soon as it is finished."""
    from distalign.engines.store import ResponseStore

    t0 = time.perf_counter()
    cells = [as_cell(c) for c in cells]
    validate_cells(cells)
    t_validated = time.perf_counter()
    tracker = tracker if tracker is not None else MemoryTracker()
    done = tracker.finished_cells()
    todo = [c for c in cells if spec_hash(c) not in done]
    store = ResponseStore(store_root(settings))
    plan = Plan(cells=[])
    engines = _Engines(settings, {c.model.name: c.model for c in todo})
    with _settled_heap() as settle:
        try:
            driver, cached, plan_s = _run(plan, todo, settings, tracker, store, engines, t0, settle)
        except BaseException:
            _flush_quietly(tracker)  # the cells finished before the error or Ctrl-C are still recorded
            raise
        tracker.flush()
        engine_stats = driver.engine_stats
    order = {spec_hash(c): i for i, c in reversed(list(enumerate(cells)))}
    results = sorted(driver.results, key=lambda r: order[r.spec_hash])  # input order, not completion order
    failures = [(r.spec_hash, r.error or "") for r in results if r.status == "failed"]
    totals = {
        "cells": float(len(cells)),
        "skipped": float(len(cells) - len(todo)),
        "finished": float(sum(r.status == "finished" for r in results)),
        "failed": float(len(failures)),
        "requests_before_dedup": float(plan.requests_before_dedup),
        "requests": float(len(plan.requests)),
        "requests_sent": float(len(driver.sent)),
        "cache_hits": float(len(cached)),
        "validate_s": t_validated - t0,
        "plan_s": plan_s,
        "parse_score_s": driver.score_s,
        "engine_time_s": driver.engine_s,
        "wall_time_s": time.perf_counter() - t0,
    }
    return SweepOutcome(results, totals, failures, engine_stats)

"""Run a sweep: validate -> skip finished cells -> plan cell by cell -> serve from the store -> stream the
misses to the engine pools -> parse, score, write and record each cell the moment its last request is
answered.

Cells are planned a few at a time, just far enough ahead to keep every engine busy, and released once
scored, so the driver holds the cells it is working on, never the whole grid: a grid a hundred times the
benchmark runs in the same memory. A request is sent once however many cells ask for it: a key answered
earlier comes back from the store, a key still in flight gets the cell added to its waiters.

The driver is the only process that touches the response store and the sweep folder; actors only compute.
Each answered batch is written to the store at once, and each scored cell to the sweep folder
(``distalign.scoring.results``), so a crash loses nothing that was answered and a rerun skips finished cells
and sends only what is missing. A batch lost with a dead actor is re-sent (the pool restarts the actor); a
request that keeps failing becomes an error result, which makes its unit unparsed rather than failing its
cell.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from distalign.engines.store import ResponseStore, default_store_root
from distalign.errors import InputError
from distalign.records.config import CellConfig, SweepSettings
from distalign.records.engine import OptionLogprobRequest
from distalign.records.results import CellResult, SweepOutcome
from distalign.scoring import results as cell_files
from distalign.sweep.capacity import check_gpu_capacity
from distalign.sweep.cells import Cell, as_cell
from distalign.sweep.cellscore import KeyStats, UnitRow, parse_unit, score_cell
from distalign.sweep.plan import Examples, Unit, iter_units
from distalign.sweep.pool import IN_FLIGHT_PER_ACTOR, KINDS, EnginePools, ensure_ray, error_results
from distalign.sweep.progress import SweepProgress
from distalign.sweep.trackers import MemoryTracker, Tracker
from distalign.sweep.validate import check_settings, validate_cells

log = logging.getLogger("distalign.sweep")

#: a batch lost this many times (actor died while holding it) becomes error results, never re-sent forever
MAX_BATCH_ATTEMPTS = 4
#: an actor that is restarting (reloading its model) is waited for, with backoff, up to this long per batch
MAX_UNAVAILABLE_S = 1800.0
WAIT_TIMEOUT_S = 0.5
#: requests planned ahead of the engines, per batch the pools can hold in flight
LOOKAHEAD_BATCHES = 2
#: prompts planned at a time: a cell of any size is planned, answered and let go in pieces of this size
PLAN_CHUNK = 128


def store_root(settings: SweepSettings) -> Path:
    """The configured store, else ``$DISTALIGN_STORE``, else ``./.distalign/store``."""
    return Path(settings.store) if settings.store else default_store_root()


def sweep_id(settings: SweepSettings, spec_hashes: Sequence[str]) -> str:
    """A sweep is its name and its cells: the same command names the same sweep, so a rerun resumes it."""
    blob = settings.name + "|" + ",".join(sorted(set(spec_hashes)))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def sweep_folder(settings: SweepSettings, spec_hashes: Sequence[str]) -> Path:
    return Path(settings.output_dir) / f"{settings.name}-{sweep_id(settings, spec_hashes)}"


def _kind(request: Any) -> str:
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


@dataclass
class _OpenCell:
    """A cell being planned or answered: its units are parsed into ``rows`` as they are answered."""

    cell: Cell
    units: Iterator[Unit] | None  # None once every unit is planned
    rows: list[UnitRow | None] = field(default_factory=list)
    pending: int = 0  # planned units not yet parsed
    counted: set[str] = field(default_factory=set)  # the cell's distinct keys seen so far
    stats: KeyStats = field(default_factory=KeyStats)
    failed: bool = False
    t0: float = field(default_factory=time.perf_counter)  # the cell's own wall time starts when it is opened


@dataclass
class _Waiting:
    """A planned unit waiting for its answers."""

    cell: int
    pos: int
    unit: Unit
    remaining: int


class _Engines:
    """Ray and the engine pools, started on first need (a sweep served wholly from the store starts
    neither) and shut down by the sweep that started them."""

    def __init__(self, settings: SweepSettings, models: dict[str, Any]) -> None:
        self.settings, self.models = settings, models
        self._pools: EnginePools | None = None
        self._started_ray = False
        #: told the models before Ray and the engines start (loading a model can take a minute)
        self.on_start: Any = None

    def pools(self) -> EnginePools:
        if self._pools is None:
            if self.on_start is not None:
                self.on_start(list(self.models.values()))
            self._started_ray = ensure_ray(self.settings)
            # before any actor starts: an actor the cluster cannot place would wait forever
            check_gpu_capacity(list(self.models.values()))
            self._pools = EnginePools(self.models, lazy=True)
        return self._pools

    def shutdown(self) -> None:
        if self._pools is not None:
            self._pools.shutdown()
        if self._started_ray:
            import ray

            ray.shutdown()


@dataclass
class _Totals:
    plan_s: float = 0.0
    score_s: float = 0.0
    engine_s: float = 0.0
    requests: int = 0
    requests_before_dedup: int = 0
    sent: int = 0
    cache_hits: int = 0
    engine_stats: dict[str, Any] = field(default_factory=dict)


class _Driver:
    def __init__(
        self,
        settings: SweepSettings,
        tracker: Tracker,
        store: ResponseStore,
        folder: Path,
        engines: _Engines,
        keep_items: bool,
    ) -> None:
        self.settings, self.tracker, self.store, self.folder = settings, tracker, store, folder
        self.engines, self.keep_items = engines, keep_items
        self.t0 = time.perf_counter()
        self.totals = _Totals()
        self.results: list[CellResult] = []
        self.open: dict[int, _OpenCell] = {}
        self.units: dict[int, _Waiting] = {}
        self.next_unit = 0
        self.waiters: dict[str, list[int]] = {}  # key queued or in flight -> units waiting for it
        self.answers: dict[str, tuple[Any, bool]] = {}  # answers (and whether sent now) units still need
        self.needed: dict[str, int] = {}  # key -> planned, unparsed units that need it
        self.seen: set[int] = set()  # every distinct key of the sweep so far (its first 64 bits)
        self.queues: dict[tuple[str, str], deque[str]] = {}
        self.requests: dict[str, Any] = {}  # queued or in-flight key -> request
        self.in_flight: dict[Any, tuple[_Batch, str, int]] = {}
        self.retry: deque[_Batch] = deque()
        self.examples = Examples()
        self.progress: SweepProgress | None = None
        self.batch_size = {m: max(1, c.serving.batch_size) for m, c in engines.models.items()}

    # -- cells -------------------------------------------------------------------------------------------
    def record(self, result: CellResult) -> None:
        cell_files.write_cell(self.folder, result)
        self.tracker.log_cell(result)
        if not self.keep_items:
            result = replace(result, items=result.items.iloc[:0], calibration=None)
        self.results.append(result)
        if self.progress is not None:
            self.progress.cell(result.status == "failed")

    def open_cell(self, index: int, cell: Cell) -> None:
        self.open[index] = _OpenCell(cell, iter_units(cell, self.examples))

    def plan_chunk(self, index: int) -> None:
        """Plan up to ``PLAN_CHUNK`` more units of a cell and register their requests: answered keys count at
        once, keys in flight get the unit as a waiter, the rest is looked up in the store or queued."""
        oc = self.open[index]
        assert oc.units is not None
        t = time.perf_counter()
        chunk: list[Unit] = []
        try:
            for unit in oc.units:
                chunk.append(unit)
                if len(chunk) >= PLAN_CHUNK:
                    break
            else:
                oc.units = None
        except Exception as exc:  # noqa: BLE001 - one cell's failure must not stop the sweep
            oc.units, oc.failed, chunk = None, True, []
            error = f"planning failed: {type(exc).__name__}: {exc}"
            self.record(
                CellResult(oc.cell.spec_hash, oc.cell.config, "failed", error, content=oc.cell.content)
            )
        self.totals.plan_s += time.perf_counter() - t
        model = oc.cell.config.model.name
        new: list[str] = []
        ready: list[int] = []
        for unit in chunk:
            uid = self.next_unit
            self.next_unit += 1
            waiting = _Waiting(index, len(oc.rows), unit, 0)
            oc.rows.append(None)
            oc.pending += 1
            self.units[uid] = waiting
            self.totals.requests_before_dedup += len(unit.requests)
            for key, request in dict(zip(unit.keys, unit.requests, strict=True)).items():
                self.needed[key] = self.needed.get(key, 0) + 1
                if key in self.answers:
                    continue
                waiting.remaining += 1
                if key in self.waiters:
                    self.waiters[key].append(uid)
                else:
                    self.waiters[key] = [uid]
                    self.requests[key] = request
                    new.append(key)
            if waiting.remaining == 0:
                ready.append(uid)
        hits = self.store.get_many(new) if new else {}
        first = [k for k in new if int(k[:16], 16) not in self.seen]
        self.seen.update(int(k[:16], 16) for k in first)
        first_hits = sum(1 for k in first if k in hits)
        self.totals.requests += len(first)
        self.totals.cache_hits += first_hits
        if self.progress is not None:
            self.progress.planned(len(first))
            self.progress.hits(first_hits)
        for key in new:
            if key not in hits:
                self.queues.setdefault((model, _kind(self.requests[key])), deque()).append(key)
        for uid in ready:
            self.complete(uid)
        if hits:
            self.answer(list(hits), list(hits.values()), sent=False)
        self.maybe_finish(index)

    def complete(self, uid: int) -> None:
        """A unit whose requests are all answered: parse it, keep its row, let go of what only it needed."""
        w = self.units.pop(uid)
        oc = self.open[w.cell]
        t = time.perf_counter()
        answers = [self.answers[k] for k in w.unit.keys]
        if not oc.failed:
            oc.rows[w.pos] = parse_unit(oc.cell, w.unit, [r for r, _ in answers])
            for key, (result, sent) in zip(w.unit.keys, answers, strict=True):
                if key not in oc.counted:
                    oc.counted.add(key)
                    oc.stats.add(result, sent)
        self.totals.score_s += time.perf_counter() - t
        for key in dict.fromkeys(w.unit.keys):
            left = self.needed[key] - 1
            if left:
                self.needed[key] = left
            else:
                del self.needed[key]
                self.answers.pop(key, None)
        oc.pending -= 1
        self.maybe_finish(w.cell)

    def maybe_finish(self, index: int) -> None:
        oc = self.open.get(index)
        if oc is None or oc.units is not None or oc.pending:
            return
        del self.open[index]
        if oc.failed:
            return
        t = time.perf_counter()
        cell = oc.cell
        try:
            wall = time.perf_counter() - oc.t0
            rows = [r for r in oc.rows if r is not None]
            result = score_cell(cell, rows, oc.stats, self.settings, wall)
        except Exception as exc:  # noqa: BLE001 - a cell that cannot be scored fails alone
            log.exception("cell %s failed while scoring", cell.spec_hash)
            error = f"scoring failed: {type(exc).__name__}: {exc}"
            result = CellResult(cell.spec_hash, cell.config, "failed", error, content=cell.content)
        self.totals.score_s += time.perf_counter() - t
        self.record(result)

    def answer(self, keys: Sequence[str], results: Sequence[Any], sent: bool) -> None:
        ready = []
        for key, res in zip(keys, results, strict=True):
            waiting = self.waiters.pop(key, None)
            if waiting is None:
                continue
            self.answers[key] = (res, sent)
            self.requests.pop(key, None)
            for uid in waiting:
                w = self.units[uid]
                w.remaining -= 1
                if w.remaining == 0:
                    ready.append(uid)
        for uid in ready:
            self.complete(uid)

    # -- engines -----------------------------------------------------------------------------------------
    def backlog(self) -> int:
        return len(self.requests)

    def lookahead(self) -> int:
        sizes = self.batch_size.values()
        return LOOKAHEAD_BATCHES * IN_FLIGHT_PER_ACTOR * max(sizes, default=64) * max(1, len(self.batch_size))

    def submit(self, planning_done: bool) -> None:
        """Full batches go out while a pool has room; a partial batch goes when planning is over or when its
        pool has nothing to do (an idle engine is worse than a small batch)."""
        pools = None
        now = time.monotonic()
        while self.retry and self.retry[0].not_before <= now:
            batch = self.retry.popleft()
            pools = pools or self.engines.pools()
            self._send(pools, batch)
        for (model, kind), queue in self.queues.items():
            size = self.batch_size[model]
            while queue:
                pools = pools or self.engines.pools()
                if not pools.has_room(model):
                    break
                idle = pools.idle(model)
                if len(queue) < size and not (planning_done or idle):
                    break
                keys = [queue.popleft() for _ in range(min(size, len(queue)))]
                self._send(pools, _Batch(model, kind, keys))
        self.queues = {k: q for k, q in self.queues.items() if q}

    def _send(self, pools: EnginePools, batch: _Batch) -> None:
        ref, pkey, idx = pools.submit(batch.model, batch.kind, [self.requests[k] for k in batch.keys])
        self.in_flight[ref] = (batch, pkey, idx)

    def collect(self, timeout: float) -> None:
        import ray

        if not self.in_flight:
            return
        ready, _ = ray.wait(list(self.in_flight), num_returns=1, timeout=timeout)
        if ready:
            rest = [r for r in self.in_flight if r not in ready]
            if rest:
                more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
                ready += more
        pools = self.engines.pools()
        for ref in ready:
            batch, pkey, idx = self.in_flight.pop(ref)
            pools.done(pkey, idx)
            self._collect(ref, batch)

    def _collect(self, ref: Any, batch: _Batch) -> None:
        import ray

        try:
            results, engine_s = ray.get(ref)
        except ray.exceptions.ActorUnavailableError as exc:  # restarting: wait for it, not counted as a loss
            now = time.monotonic()
            batch.unavailable_since = batch.unavailable_since or now
            if now - batch.unavailable_since < MAX_UNAVAILABLE_S:
                batch.not_before = now + min(5.0, 0.1 * 2 ** min(batch.waits, 6))
                batch.waits += 1
                self.retry.append(batch)
                return
            results, engine_s = (
                error_results(batch.kind, len(batch.keys), f"{type(exc).__name__}: {exc}"),
                0.0,
            )
        except Exception as exc:  # noqa: BLE001 - the actor died holding the batch: re-send, boundedly
            batch.attempts += 1
            if batch.attempts < MAX_BATCH_ATTEMPTS:
                log.warning("batch of %d lost (%s); re-sending", len(batch.keys), type(exc).__name__)
                self.retry.append(batch)
                return
            results, engine_s = (
                error_results(batch.kind, len(batch.keys), f"{type(exc).__name__}: {exc}"),
                0.0,
            )
        self.totals.engine_s += engine_s
        self.totals.sent += len(batch.keys)
        ok = [(k, r) for k, r in zip(batch.keys, results, strict=True) if r.error is None]
        if ok:
            self.store.put_many(ok, model=batch.model)
        if self.progress is not None:
            tokens = sum(r.usage.prompt_tokens + r.usage.completion_tokens for r in results)
            self.progress.batch(len(results), tokens, sum(r.usage.cost_usd for r in results))
        self.answer(batch.keys, results, sent=True)

    # -- the loop ----------------------------------------------------------------------------------------
    def plan_more(self, todo: Iterator[tuple[int, Cell]]) -> bool:
        """Plan the next chunk (of the cell being planned, else of the next cell); False once all is."""
        planning = next((i for i, oc in self.open.items() if oc.units is not None), None)
        if planning is None:
            nxt = next(todo, None)
            if nxt is None:
                return False
            self.open_cell(*nxt)
            planning = nxt[0]
        self.plan_chunk(planning)
        return True

    def run(self, cells: Sequence[Cell]) -> None:
        todo: Iterator[tuple[int, Cell]] = iter(enumerate(cells))
        planning_done = False
        while True:
            while not planning_done and self.backlog() < self.lookahead():
                planning_done = not self.plan_more(todo)
            self.submit(planning_done)
            if not self.in_flight and not self.retry and not self.queues:
                if planning_done:
                    break
                continue  # everything planned so far was answered: plan more
            # while there is planning to do, only look at what came back; else wait for it
            wait = 0.0 if not planning_done and self.backlog() < self.lookahead() else WAIT_TIMEOUT_S
            if self.retry and not self.in_flight:
                time.sleep(min(WAIT_TIMEOUT_S, max(0.0, self.retry[0].not_before - time.monotonic())))
            self.collect(wait)
        if self.engines._pools is not None:
            self.totals.engine_stats = self.engines._pools.stats()


def _flush_quietly(tracker: Tracker) -> None:
    try:
        tracker.flush()
    except Exception:  # noqa: BLE001 - the error already propagating is the one to report
        log.exception("could not record the cells finished before the sweep stopped")


def run_sweep(
    cells: Sequence[CellConfig],
    settings: SweepSettings,
    tracker: Tracker | None = None,
    folder: str | Path | None = None,
    keep_items: bool = True,
) -> SweepOutcome:
    """Run every unfinished cell; returns the results of the cells run now (not of the skipped ones), in
    the order of ``cells``, while the tracker receives each cell as soon as it is finished.

    ``folder`` is the sweep folder (default: ``sweep_folder(settings, ...)``); a cell whose ``cell.json``
    there says finished is skipped, and a finished cell the tracker has not recorded is handed to it from
    disk. ``keep_items`` False drops each cell's items table from the returned results once it is written
    (a large sweep's tables stay on disk only).
    """
    t0 = time.perf_counter()
    check_settings(settings)
    validated = validate_cells([as_cell(c) for c in cells], unsupported=settings.unsupported)
    resolved = list({c.spec_hash: c for c in validated.cells}.values())
    t_validated = time.perf_counter()
    tracker = tracker if tracker is not None else MemoryTracker()
    root = Path(folder) if folder is not None else sweep_folder(settings, [c.spec_hash for c in resolved])
    on_disk = cell_files.finished_cells(root)
    recorded = tracker.finished_cells()
    for cell in resolved:
        if cell.spec_hash in on_disk and cell.spec_hash not in recorded:
            tracker.log_cell(cell_files.read_result(root, cell.spec_hash, cell.config))
    todo = [c for c in resolved if c.spec_hash not in on_disk]
    store = ResponseStore(store_root(settings))
    engines = _Engines(settings, {c.config.model.name: c.config.model for c in todo})
    driver = _Driver(settings, tracker, store, root, engines, keep_items)
    try:
        try:
            with SweepProgress(len(todo), 0, enabled=settings.progress) as progress:
                driver.progress = progress
                engines.on_start = progress.starting
                driver.run(todo)
        finally:
            engines.shutdown()
    except BaseException:
        _flush_quietly(tracker)  # the cells finished before the error or Ctrl-C are still recorded
        raise
    tracker.flush()
    order = {c.spec_hash: i for i, c in enumerate(resolved)}
    results = sorted(driver.results, key=lambda r: order[r.spec_hash])  # input order, not completion order
    failures = [(r.spec_hash, r.error or "") for r in results if r.status == "failed"]
    t = driver.totals
    totals = {
        "cells": float(len(resolved)),
        "skipped": float(len(resolved) - len(todo)),
        "unsupported": float(len(validated.unsupported)),
        "finished": float(sum(r.status == "finished" for r in results)),
        "failed": float(len(failures)),
        "requests_before_dedup": float(t.requests_before_dedup),
        "requests": float(t.requests),
        "requests_sent": float(t.sent),
        "cache_hits": float(t.cache_hits),
        "validate_s": t_validated - t0,
        "plan_s": t.plan_s,
        "parse_score_s": t.score_s,
        "engine_time_s": t.engine_s,
        "wall_time_s": time.perf_counter() - t0,
    }
    return SweepOutcome(results, totals, failures, t.engine_stats, folder=str(root))


__all__ = ["InputError", "run_sweep", "store_root", "sweep_folder", "sweep_id"]

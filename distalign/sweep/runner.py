"""Run a sweep: validate -> skip finished cells -> plan cell by cell -> serve from the store -> stream the
misses to the engine pools -> parse, score, write and record each cell the moment its last request is
answered.

Cells are planned a few at a time, just far enough ahead to keep every engine busy, and released once
scored, so the driver holds the cells it is working on, never the whole grid: a grid a hundred times the
benchmark runs in the same memory. A request is sent once however many cells ask for it: a key answered
earlier comes back from the store, a key still in flight gets the cell added to its waiters (that
bookkeeping is ``sweep.broker``'s). The engines are behind ``sweep.engine_pool``: Ray actors by default,
the driver's own process with ``sweep.executor=inline``.

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
from distalign.sweep.batches import BatchReport, run_batches
from distalign.sweep.broker import RequestBroker
from distalign.sweep.capacity import check_gpu_capacity
from distalign.sweep.cells import Cell, as_cell
from distalign.sweep.cellscore import KeyStats, UnitRow, parse_unit, score_cell
from distalign.sweep.cluster import ensure_ray
from distalign.sweep.engine_pool import Answered, EnginePool, Lost
from distalign.sweep.hosts import KINDS, error_results
from distalign.sweep.inline_pool import InlinePool
from distalign.sweep.plan import Examples, Unit, iter_units
from distalign.sweep.pool import IN_FLIGHT_PER_ACTOR, RayPool
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


class _Engines:
    """The engine pool, started on first need (a sweep served wholly from the store starts none, and with
    the Ray executor starts no Ray) and shut down by the sweep that started it."""

    def __init__(self, settings: SweepSettings, models: dict[str, Any]) -> None:
        self.settings, self.models = settings, models
        self.pool: EnginePool | None = None
        self._started_ray = False
        #: told the models before the engines start (loading a model can take a minute)
        self.on_start: Any = None

    def get(self) -> EnginePool:
        if self.pool is None:
            if self.on_start is not None:
                self.on_start(list(self.models.values()), self.settings.executor)
            if self.settings.executor == "inline":
                self.pool = InlinePool(self.models)
            else:
                self._started_ray = ensure_ray(self.settings)
                # before any actor starts: an actor the cluster cannot place would wait forever
                check_gpu_capacity(list(self.models.values()))
                self.pool = RayPool(self.models)
        return self.pool

    def shutdown(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
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
    """Plans cells a chunk at a time, hands their requests to the broker, sends what the broker queues to
    the engine pool, and parses, scores and records each cell once its last unit is answered."""

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
        self.totals = _Totals()
        self.results: list[CellResult] = []
        self.open: dict[int, _OpenCell] = {}
        self.broker = RequestBroker()
        self.units: dict[int, tuple[int, int, Unit]] = {}  # unit id -> cell index, row position, unit
        self.in_flight: dict[int, _Batch] = {}  # ticket -> batch
        self.retry: deque[_Batch] = deque()
        self.examples = Examples()
        self.progress: SweepProgress | None = None
        self.batch_size = {m: max(1, c.serving.batch_size) for m, c in engines.models.items()}
        self.batch_sent: dict[str, str] = {}  # key -> the provider batch that answered it in this run

    # -- cells -------------------------------------------------------------------------------------------
    def record(self, result: CellResult) -> None:
        cell_files.write_cell(self.folder, result)
        self.tracker.log_cell(result)
        if not self.keep_items:
            result = replace(result, items=result.items.iloc[:0], calibration=None)
        self.results.append(result)
        if self.progress is not None:
            self.progress.cell(result.status == "failed")

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
        new: list[str] = []
        ready: list[int] = []
        for unit in chunk:
            reg = self.broker.add(unit.keys, unit.requests)
            self.units[reg.uid] = (index, len(oc.rows), unit)
            oc.rows.append(None)
            oc.pending += 1
            self.totals.requests_before_dedup += len(unit.requests)
            new += reg.new
            if reg.ready:
                ready.append(reg.uid)
        hits = self.store.get_many(new) if new else {}
        first = self.broker.first_seen(new)
        first_hits = sum(1 for k in first if k in hits)
        self.totals.requests += len(first)
        self.totals.cache_hits += first_hits
        if self.progress is not None:
            self.progress.planned(len(first))
            self.progress.hits(first_hits)
        model = oc.cell.config.model.name
        for key in new:
            if key not in hits:
                self.broker.queue(model, _kind(self.broker.request(key)), [key])
        for uid in ready:
            self.complete(uid)
        if hits:
            # answers a provider batch brought into the store during this run count as sent by it
            now = [k for k in hits if k in self.batch_sent]
            old = [k for k in hits if k not in self.batch_sent]
            self.answer(now, [hits[k] for k in now], sent=True)
            self.answer(old, [hits[k] for k in old], sent=False)
        self.maybe_finish(index)

    def complete(self, uid: int) -> None:
        """A unit whose requests are all answered: parse it, keep its row, let go of what only it needed."""
        index, pos, unit = self.units.pop(uid)
        oc = self.open[index]
        t = time.perf_counter()
        answers = self.broker.release(uid)
        if not oc.failed:
            oc.rows[pos] = parse_unit(oc.cell, unit, [r for r, _ in answers])
            for key, (result, sent) in zip(unit.keys, answers, strict=True):
                if key not in oc.counted:
                    oc.counted.add(key)
                    oc.stats.add(result, sent, self.batch_sent.get(key) if sent else None)
        self.totals.score_s += time.perf_counter() - t
        oc.pending -= 1
        self.maybe_finish(index)

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
        if keys:
            for uid in self.broker.answer(keys, results, sent):
                self.complete(uid)

    # -- engines -----------------------------------------------------------------------------------------
    def lookahead(self) -> int:
        sizes = self.batch_size.values()
        return LOOKAHEAD_BATCHES * IN_FLIGHT_PER_ACTOR * max(sizes, default=64) * max(1, len(self.batch_size))

    def submit(self, planning_done: bool) -> None:
        """Full batches go out while a pool has room; a partial batch goes when planning is over or when its
        pool has nothing to do (an idle engine is worse than a small batch)."""
        now = time.monotonic()
        while self.retry and self.retry[0].not_before <= now:
            self._send(self.retry.popleft())
        for model, kind in list(self.broker.queues):
            size = self.batch_size[model]
            while (model, kind) in self.broker.queues:
                pool = self.engines.get()
                if not pool.has_room(model):
                    break
                if len(self.broker.queues[(model, kind)]) < size and not (planning_done or pool.idle(model)):
                    break
                self._send(_Batch(model, kind, self.broker.take(model, kind, size)))

    def _send(self, batch: _Batch) -> None:
        requests = [self.broker.request(k) for k in batch.keys]
        ticket = self.engines.get().submit(batch.model, batch.kind, requests)
        self.in_flight[ticket] = batch

    def collect(self, timeout: float) -> None:
        if not self.in_flight:
            return
        for outcome in self.engines.get().poll(timeout):
            batch = self.in_flight.pop(outcome.ticket)
            if isinstance(outcome, Answered):
                self._answered(batch, outcome.results, outcome.engine_s)
            else:
                self._lost(batch, outcome)

    def _lost(self, batch: _Batch, lost: Lost) -> None:
        """A restarting host is waited for, with backoff; a batch lost with a dead host is re-sent a bounded
        number of times; past either bound its requests become error results."""
        now = time.monotonic()
        if lost.restarting:
            batch.unavailable_since = batch.unavailable_since or now
            if now - batch.unavailable_since < MAX_UNAVAILABLE_S:
                batch.not_before = now + min(5.0, 0.1 * 2 ** min(batch.waits, 6))
                batch.waits += 1
                self.retry.append(batch)
                return
        else:
            batch.attempts += 1
            if batch.attempts < MAX_BATCH_ATTEMPTS:
                log.warning("batch of %d lost (%s); re-sending", len(batch.keys), lost.error.split(":")[0])
                self.retry.append(batch)
                return
        self._answered(batch, error_results(batch.kind, len(batch.keys), lost.error), 0.0)

    def _answered(self, batch: _Batch, results: list[Any], engine_s: float) -> None:
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
            index, cell = nxt
            self.open[index] = _OpenCell(cell, iter_units(cell, self.examples))
            planning = index
        self.plan_chunk(planning)
        return True

    def run(self, cells: Sequence[Cell]) -> None:
        todo: Iterator[tuple[int, Cell]] = iter(enumerate(cells))
        planning_done = False
        while True:
            while not planning_done and self.broker.backlog() < self.lookahead():
                planning_done = not self.plan_more(todo)
            self.submit(planning_done)
            if not self.in_flight and not self.retry and not self.broker.queues:
                if planning_done:
                    break
                continue  # everything planned so far was answered: plan more
            # while there is planning to do, only look at what came back; else wait for it
            wait = 0.0 if not planning_done and self.broker.backlog() < self.lookahead() else WAIT_TIMEOUT_S
            if self.retry and not self.in_flight:
                time.sleep(min(WAIT_TIMEOUT_S, max(0.0, self.retry[0].not_before - time.monotonic())))
            self.collect(wait)
        if self.engines.pool is not None:
            self.totals.engine_stats = self.engines.pool.stats()


class _WithErrors:
    """The store, plus the final error results of batch lines whose retries are spent (served as hits)."""

    def __init__(self, store: ResponseStore, errors: dict[str, Any]) -> None:
        self.store, self.errors = store, errors

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        hits = self.store.get_many(keys)
        for key in keys:
            if key not in hits and key in self.errors:
                hits[key] = self.errors[key]
        return hits

    def put_many(self, *args: Any, **kwargs: Any) -> Any:
        return self.store.put_many(*args, **kwargs)


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
    batches = BatchReport()
    try:
        try:
            with SweepProgress(len(todo), 0, enabled=settings.progress) as progress:
                driver.progress = progress
                engines.on_start = progress.starting
                # batch-mode models: their misses go through provider batches into the store first
                batches = run_batches(todo, settings, store, root, progress)
                if batches.gave_up:
                    driver.store = _WithErrors(store, batches.error_results())  # type: ignore[assignment]
                driver.batch_sent = batches.batch_of
                driver.run([c for c in todo if c.config.model.name not in batches.pending_models])
        finally:
            try:
                engines.shutdown()
            finally:
                store.close()
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
        "requests_sent": float(t.sent + batches.collected),
        "cache_hits": float(t.cache_hits),
        "validate_s": t_validated - t0,
        "plan_s": t.plan_s,
        "parse_score_s": t.score_s,
        "engine_time_s": t.engine_s,
        "wall_time_s": time.perf_counter() - t0,
    }
    engine_stats = dict(t.engine_stats)
    if batches.batch_ids or batches.pending:
        totals.update(
            batches_pending=float(batches.pending),
            batches_submitted=float(batches.submitted),
            batches_adopted=float(batches.adopted),
            batch_lines_sent=float(batches.lines_sent),
            batch_results_collected=float(batches.collected),
            batch_lines_failed=float(len(batches.gave_up)),
            batch_cost_usd=batches.cost_usd,
        )
        for model, ids in batches.batch_ids.items():
            engine_stats.setdefault(model, {})["batch_ids"] = ids
    return SweepOutcome(results, totals, failures, engine_stats, folder=str(root))


__all__ = ["InputError", "run_sweep", "store_root", "sweep_folder", "sweep_id"]

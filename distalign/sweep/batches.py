"""Batch mode (``model.serving.mode=batch``): the misses of a model's cells go to the provider's batch API
before the sweep scores them.

The cells are planned as in a synchronous sweep; every request is looked up in the response store and only
the misses are submitted, split at the provider's limits (requests and bytes per batch). Each batch is
recorded in the sweep folder's ledger (``engines.batch.ledger``) before it is sent and again the moment it is
accepted, so a driver that is killed, interrupted or told not to wait (``sweep.batch_wait=false``) finds its
batches on the next run of the same command and collects them instead of sending their requests again; one
killed while the provider was accepting a batch left an intent, which the next run resolves with the
provider (``engines.batch.adopt``) before sending anything. Finished results go into the store; the
sweep then answers every cell from the store exactly as a synchronous rerun would. Lines that failed, or
were left unanswered by an expired or cancelled batch, are re-submitted up to ``serving.batch_retries``
times, then become error results (unparsed rows counted in the extraction rate).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distalign.engines.batch.adopt import adopt
from distalign.engines.batch.base import (
    BatchClient,
    BatchError,
    BatchLookupError,
    error_result,
    is_batch,
    settings_of,
)
from distalign.engines.batch.ledger import INTENT, BatchEntry, Ledger
from distalign.engines.store import ResponseStore
from distalign.records.config import ModelConfig, SweepSettings
from distalign.sweep.cells import Cell
from distalign.sweep.plan import Examples, Request, iter_units

log = logging.getLogger("distalign.sweep")

#: store look-ups per query while finding the misses
LOOKUP_CHUNK = 4096


@dataclass
class BatchReport:
    """What batch mode did for this run of the sweep."""

    pending: int = 0  # batches still at the provider (sweep.batch_wait=false)
    pending_models: set[str] = field(default_factory=set)
    submitted: int = 0  # batches submitted by this run
    adopted: int = 0  # batches a stopped driver submitted without recording their id, found by this run
    lines_sent: int = 0  # lines in them
    collected: int = 0  # results written to the store by this run
    gave_up: dict[str, str] = field(default_factory=dict)  # key -> final error (retries spent)
    batch_ids: dict[str, list[str]] = field(default_factory=dict)  # model -> every batch id of the sweep
    cost_usd: float = 0.0
    requests: dict[str, dict[str, Request]] = field(default_factory=dict)  # model -> key -> request
    collected_keys: set[str] = field(default_factory=set)  # keys whose results this run collected
    batch_of: dict[str, str] = field(default_factory=dict)  # collected key -> the batch that answered it

    def error_results(self) -> dict[str, Any]:
        """Error results for the keys whose retries are spent (the driver serves them like store hits)."""
        out = {}
        for reqs in self.requests.values():
            for key, req in reqs.items():
                if key in self.gave_up:
                    out[key] = error_result(req, self.gave_up[key])
        return out


def split_lines(
    lines: Iterator[tuple[str, bytes]], max_requests: int, max_bytes: int
) -> Iterator[list[tuple[str, bytes]]]:
    """Groups of (key, line) within a provider's limits on requests and bytes per batch."""
    group: list[tuple[str, bytes]] = []
    size = 0
    for key, line in lines:
        if len(line) > max_bytes:
            raise BatchError(
                f"request {key} alone is {len(line)} bytes, over the provider's {max_bytes} per batch"
            )
        if group and (len(group) >= max_requests or size + len(line) > max_bytes):
            yield group
            group, size = [], 0
        group.append((key, line))
        size += len(line)
    if group:
        yield group


def _misses(cells: Sequence[Cell], store: ResponseStore) -> dict[str, dict[str, Request]]:
    """model -> store key -> request, for every request of the cells the store does not hold."""
    wanted: dict[str, dict[str, Request]] = {}
    examples = Examples()
    for cell in cells:
        reqs = wanted.setdefault(cell.config.model.name, {})
        try:
            for unit in iter_units(cell, examples):
                for key, request in zip(unit.keys, unit.requests, strict=True):
                    reqs.setdefault(key, request)
        except Exception:  # noqa: BLE001 - the driver plans the cell again and records its failure
            log.debug("cell %s could not be planned for batch mode", cell.spec_hash, exc_info=True)
    for reqs in wanted.values():
        keys = list(reqs)
        for i in range(0, len(keys), LOOKUP_CHUNK):
            for key in store.get_many(keys[i : i + LOOKUP_CHUNK]):
                del reqs[key]
    return wanted


class BatchRunner:
    def __init__(
        self,
        models: dict[str, ModelConfig],
        settings: SweepSettings,
        store: ResponseStore,
        folder: Path,
        progress: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.models, self.settings, self.store = models, settings, store
        self.ledger = Ledger.load(folder)
        from distalign.engines.batch.clients import batch_client  # imports litellm: only in batch mode

        self.clients: dict[str, BatchClient] = {m: batch_client(cfg) for m, cfg in models.items()}
        self.settings_of = {m: settings_of(cfg) for m, cfg in models.items()}
        self.progress, self.sleep = progress, sleep
        self.report = BatchReport()
        self._unreachable: set[str] = set()  # tokens of intents whose lookup failed (said once per run)

    # -- one batch --------------------------------------------------------------------------------------
    def _fail_line(self, key: str, reason: str, retries: int) -> None:
        n = self.ledger.attempts.get(key, 0) + 1
        self.ledger.attempts[key] = n
        if n > retries:
            self.ledger.gave_up[key] = f"batch: {reason} (after {n} attempts)"

    def _collect(self, entry: BatchEntry, todo: dict[str, Request]) -> None:
        """Poll one submitted batch; once it has ended, write its results to the store."""
        client = self.clients[entry.model]
        retries = self.settings_of[entry.model].batch_retries
        state = client.state(entry.batch_id)
        entry.provider_status = state.provider_status
        if state.status == "in_progress":
            return
        if state.status == "failed":
            log.warning("batch %s of %s failed: %s", entry.batch_id, entry.model, state.reason)
            print(f"batch {entry.batch_id} ({entry.model}) failed at the provider: {state.reason}")
            for key in entry.keys:
                self._fail_line(key, f"batch failed: {state.reason}", retries)
            entry.state, entry.reason, entry.failed = "failed", state.reason, len(entry.keys)
            self.ledger.save()
            return
        requests = {k: todo[k] for k in entry.keys if k in todo}
        answered: set[str] = set()
        ok: list[tuple[str, Any]] = []
        for key, result, reason in client.results(entry.batch_id, requests):
            if key in answered:
                continue
            answered.add(key)
            if result is None:
                self._fail_line(key, reason, retries)
                entry.failed += 1
            elif result.error is not None:
                self.ledger.gave_up[key] = result.error
                entry.failed += 1
            else:
                ok.append((key, result))
                entry.cost_usd += result.usage.cost_usd
        for key in requests.keys() - answered:  # no line at all: the batch expired or was cancelled first
            self._fail_line(key, state.provider_status, retries)
            entry.failed += 1
        for i in range(0, len(ok), LOOKUP_CHUNK):
            self.store.put_many(ok[i : i + LOOKUP_CHUNK], model=entry.model)
        entry.collected = len(ok)
        entry.state = "collected"
        self.report.collected += len(ok)
        self.report.cost_usd += entry.cost_usd
        for key, _ in ok:
            todo.pop(key, None)
            self.report.collected_keys.add(key)
            self.report.batch_of[key] = entry.batch_id
        self.ledger.save()  # after the store write: a kill in between collects the batch again, harmlessly

    def _adopt(self, entry: BatchEntry) -> None:
        """Ask the provider whether an intent's batch exists; a failed lookup leaves the intent (its keys
        stay busy) for the next poll or run rather than sending them blindly a second time."""
        try:
            found = adopt(self.ledger, entry, self.clients[entry.model])
        except BatchLookupError as exc:
            if entry.token not in self._unreachable:
                self._unreachable.add(entry.token)
                print(
                    f"could not check whether {entry.provider} accepted a batch of {entry.model} "
                    f"({len(entry.keys)} requests) a stopped driver was submitting: {exc}; its requests "
                    "wait and are checked again on the next poll or run"
                )
            return
        if found is not None:
            self.report.adopted += 1
            print(
                f"adopted batch {found} of {entry.model} ({len(entry.keys)} requests) that a stopped driver "
                "submitted without recording it"
            )

    def _submit(self, model: str, todo: dict[str, Request], busy: set[str]) -> None:
        client = self.clients[model]
        fresh = (
            (k, client.line(k, r)) for k, r in todo.items() if k not in busy and k not in self.ledger.gave_up
        )
        s = self.settings_of[model]
        for group in split_lines(fresh, client.max_requests, client.max_bytes):
            keys = [k for k, _ in group]
            rounds = max((self.ledger.attempts.get(k, 0) for k in keys), default=0)
            # the intent goes to disk before the provider hears of the batch: a driver killed after the
            # provider accepted it but before its id is written leaves this entry, not nothing
            entry = BatchEntry(
                "",
                model,
                client.provider,
                keys,
                rounds,
                state=INTENT,
                submitted_at=time.time(),
                weights=self.models[model].weights,
                engine=self.models[model].serving.engine,
                api_base=s.api_base,
                api_key_env=s.api_key_env,
                token=secrets.token_hex(16),
            )
            self.ledger.add(entry)
            busy.update(keys)
            # a refusal (or a timeout) raises and leaves the intent: the next run asks the provider
            entry.batch_id = client.submit([line for _, line in group], entry.token)
            entry.state = "submitted"
            self.ledger.save()
            self.report.submitted += 1
            self.report.lines_sent += len(keys)
            log.info("submitted batch %s of %s: %d requests", entry.batch_id, model, len(keys))

    def _show(self) -> None:
        if self.progress is None:
            return
        entries = [b for b in self.ledger.batches if b.model in self.models and b.batch_id]  # accepted ones
        self.progress.batches(
            submitted=len(entries),
            in_progress=sum(b.state == "submitted" for b in entries),
            completed=sum(b.state != "submitted" for b in entries),
            collected=self.report.collected,
        )

    # -- the loop ---------------------------------------------------------------------------------------
    def run(self, cells: Sequence[Cell]) -> BatchReport:
        todo = _misses(cells, self.store)
        self.report.requests = todo
        # a new run gives the lines that failed for good in an earlier one a new try, as a synchronous rerun
        # re-sends the failed requests of a cell
        for reqs in todo.values():
            for key in reqs.keys() & self.ledger.gave_up.keys():
                del self.ledger.gave_up[key]
                self.ledger.attempts.pop(key, None)
        rest = {m: dict(reqs) for m, reqs in todo.items()}  # what still needs an answer
        while True:
            for entry in self.ledger.intents():
                if entry.model in rest:
                    self._adopt(entry)
            for entry in self.ledger.pending():
                if entry.model in rest:
                    self._collect(entry, rest[entry.model])
            for model, reqs in rest.items():
                open_ = self.ledger.pending(model) + self.ledger.intents(model)
                busy = {k for b in open_ for k in b.keys}
                if reqs.keys() - busy - self.ledger.gave_up.keys():
                    self._submit(model, reqs, busy)
            self._show()
            pending = [b for b in self.ledger.pending() + self.ledger.intents() if b.model in rest]
            if not pending:
                break
            if not self.settings.batch_wait:
                self.report.pending = len(pending)
                self.report.pending_models = {b.model for b in pending}
                break
            self.sleep(min(self.settings_of[b.model].batch_poll_s for b in pending))
        self.report.gave_up = {
            k: v for k, v in self.ledger.gave_up.items() if any(k in r for r in todo.values())
        }
        for b in self.ledger.batches:
            if b.model in self.models and b.batch_id:
                self.report.batch_ids.setdefault(b.model, []).append(b.batch_id)
        return self.report


def run_batches(
    cells: Sequence[Cell], settings: SweepSettings, store: ResponseStore, folder: Path, progress: Any = None
) -> BatchReport:
    """Submit, poll and collect the provider batches of the cells whose model is in batch mode."""
    batch_cells = [c for c in cells if is_batch(c.config.model)]
    if not batch_cells:
        return BatchReport()
    models = {c.config.model.name: c.config.model for c in batch_cells}
    return BatchRunner(models, settings, store, folder, progress).run(batch_cells)

"""The operator's view of a running sweep: cells done, throughput, tokens, cost, cache hits, failures.

A rich live panel on a terminal; plain log lines every few seconds elsewhere (CI logs, files, Ray jobs),
where a live display would only fill the log with control codes. While the engines start (a local model
loads for up to a minute the first time) it says so, instead of showing a rate frozen at 0/s; a sweep with
no cell left to run shows nothing (the caller says that every cell is already finished).
"""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType
from typing import Any

from distalign.engines.registry import engine_spec

log = logging.getLogger("distalign.sweep")

LOG_EVERY_S = 10.0


class SweepProgress:
    def __init__(self, cells_total: int, requests_total: int, enabled: bool = True) -> None:
        self.cells_total = cells_total
        self.requests_total = requests_total
        self.cells_done = 0
        self.failures = 0
        self.answered = 0
        self.cache_hits = 0
        self.tokens = 0
        self.cost_usd = 0.0
        self.batch_counts: dict[str, int] | None = (
            None  # batch mode: submitted, in progress, completed, collected
        )
        self._t0 = time.perf_counter()
        self._last_log = self._t0
        self._live = None
        self.status = ""  # what is happening before the first answer ("loading model ...")
        self.enabled = cells_total > 0  # the live panel only when asked for, the log lines always
        if enabled and self.enabled and sys.stdout.isatty():
            from rich.live import Live

            self._live = Live(self._render(), refresh_per_second=4, transient=False)

    # -- updates ---------------------------------------------------------------------------------------------
    def starting(self, models: list[Any], executor: str = "ray") -> None:
        """The engines are about to start for these models (``ModelConfig``), in Ray actors or inline."""
        specs = {m.name: engine_spec(m) for m in models}
        api = [name for name, spec in specs.items() if spec.api]
        local = [name for name, spec in specs.items() if spec.local_weights and not spec.api]
        other = [name for name in specs if name not in local and name not in api]
        parts = []
        if local:
            parts.append(f"loading model {', '.join(local)} (first time: ~1 min)")
        if api:
            parts.append(f"starting the API callers for {', '.join(api)}")
        if other:
            parts.append(f"starting the engine for {', '.join(other)}")
        self.status = ("starting Ray; " if executor == "ray" else "") + "; ".join(parts)
        if self._live is not None:
            self._live.update(self._render())
        elif self.enabled:
            log.info(self.status)

    def hits(self, n: int) -> None:
        self.cache_hits += n
        self._refresh()

    def planned(self, n: int) -> None:
        """``n`` more distinct requests are known (cells are planned while the sweep runs)."""
        self.requests_total += n

    def batch(self, n: int, tokens: int, cost_usd: float) -> None:
        self.status = ""
        self.answered += n
        self.tokens += tokens
        self.cost_usd += cost_usd
        self._refresh()

    def batches(self, submitted: int, in_progress: int, completed: int, collected: int) -> None:
        """Batch mode: provider batches of the sweep so far and the requests collected from them."""
        self.batch_counts = {
            "submitted": submitted,
            "in progress": in_progress,
            "completed": completed,
            "requests collected": collected,
        }
        self._refresh(force=True)

    def _batch_text(self) -> str:
        c = self.batch_counts or {}
        return ", ".join(f"{k} {v}" for k, v in c.items())

    def cell(self, failed: bool) -> None:
        self.cells_done += 1
        self.failures += int(failed)
        self._refresh()

    # -- display ---------------------------------------------------------------------------------------------
    def line(self) -> str:
        if self.status:
            return f"cells {self.cells_done}/{self.cells_total} | {self.status}"
        dt = max(time.perf_counter() - self._t0, 1e-9)
        return (
            f"cells {self.cells_done}/{self.cells_total} | requests {self.answered}/{self.requests_total} "
            f"({self.answered / dt:.0f}/s) | tokens {self.tokens} ({self.tokens / dt:.0f}/s) | "
            f"cost ${self.cost_usd:.4f} | cache hits {self.cache_hits} | failures {self.failures}"
            + (f" | batches: {self._batch_text()}" if self.batch_counts is not None else "")
        )

    def _render(self) -> object:
        from rich.table import Table

        dt = max(time.perf_counter() - self._t0, 1e-9)
        table = Table(title="distalign sweep", show_header=False)
        if self.status:
            table.add_row("now", self.status)
        for name, value in (
            ("cells", f"{self.cells_done}/{self.cells_total}"),
            ("requests", f"{self.answered}/{self.requests_total}  ({self.answered / dt:.0f}/s)"),
            ("tokens", f"{self.tokens}  ({self.tokens / dt:.0f}/s)"),
            ("cost so far", f"${self.cost_usd:.4f}"),
            ("cache hits", str(self.cache_hits)),
            ("failures", str(self.failures)),
            *([("batches", self._batch_text())] if self.batch_counts is not None else []),
        ):
            table.add_row(name, value)
        return table

    def _refresh(self, force: bool = False) -> None:
        if not self.enabled:
            return
        if self._live is not None:
            self._live.update(self._render())
            return
        now = time.perf_counter()
        if force or now - self._last_log >= LOG_EVERY_S:
            self._last_log = now
            log.info(self.line())

    def __enter__(self) -> SweepProgress:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.stop()
        else:
            self._refresh(force=True)

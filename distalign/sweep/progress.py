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

log = logging.getLogger("distalign.sweep")

LOG_EVERY_S = 10.0
#: engines that load model weights in their actors (slow the first time); the others call an API
LOCAL_ENGINES = ("hf", "vllm")


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
        self._t0 = time.perf_counter()
        self._last_log = self._t0
        self._live = None
        self.status = ""  # what is happening before the first answer ("loading model ...")
        self.enabled = cells_total > 0  # the live panel only when asked for, the log lines always
        if enabled and self.enabled and sys.stdout.isatty():
            from rich.live import Live

            self._live = Live(self._render(), refresh_per_second=4, transient=False)

    # -- updates ---------------------------------------------------------------------------------------------
    def starting(self, models: list[Any]) -> None:
        """Ray and the engines are about to start for these models (``ModelConfig``)."""
        local = [m.name for m in models if m.serving.engine in LOCAL_ENGINES]
        api = [m.name for m in models if m.serving.engine == "litellm"]
        other = [m.name for m in models if m.name not in local and m.name not in api]
        parts = []
        if local:
            parts.append(f"loading model {', '.join(local)} (first time: ~1 min)")
        if api:
            parts.append(f"starting the API callers for {', '.join(api)}")
        if other:
            parts.append(f"starting the engine for {', '.join(other)}")
        self.status = "starting Ray; " + "; ".join(parts)
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

"""API callers at their configured limit, through the real sweep path, against a loopback OpenAI server.

Every request is answered after a random 200-800 ms (a real API's latency) by the test suite's OpenAI stub
(tests/engines/openai_stub.py). Two phases, each one ``run_sweep`` on a local Ray with the no-op tracker:

1. **steady**: one account configured at ``--rpm`` and a survey with ``rpm * seconds / 60`` items (one
   request each). Prints the rate the server saw (first to last arrival, and the slowest 10 s window), its
   ratio to the configured rate, and how many requests were lost (planned but never answered) or sent twice
   (answered more than once), counted by the server against the distinct request bodies.
2. **429 burst**: two accounts (two servers), each configured at ``--rpm``; for the middle third of
   ``--burst-seconds`` the first account's server answers every request 429 with ``Retry-After: 1``.
   Prints each account's rate before and during the burst: the first slows down, the second must not.

    python benchmarks/api_rate.py [--seconds 120] [--rpm 600] [--burst-seconds 30]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the loopback OpenAI server lives with the tests

from distalign.records.config import (  # noqa: E402
    CellConfig,
    DatasetConfig,
    MethodConfig,
    ModelConfig,
    SteeringConfig,
    SweepSettings,
    serving,
)
from distalign.records.results import SweepOutcome  # noqa: E402
from distalign.sweep.cluster import ensure_ray  # noqa: E402
from distalign.sweep.runner import run_sweep  # noqa: E402
from distalign.sweep.trackers import NullTracker  # noqa: E402
from tests.engines.openai_stub import Fault, OpenAIStub  # noqa: E402

LATENCY_S = (0.2, 0.8)
TARGET_RATIO = 0.95
ANSWER = '{"A": 60, "B": 40}'


def write_survey(path: Path, n_items: int) -> Path:
    """A custom survey of ``n_items`` distinct yes/no questions and one group: one request per item."""
    with path.open("w") as f:
        for i in range(n_items):
            row = {
                "item_id": f"Q{i}",
                "question": f"Should the town fund proposal number {i} ({path.stem})?",
                "options": ["Yes", "No"],
                "attribute": "ALL",
                "group": "all",
                "probs": [0.5, 0.5],
            }
            f.write(json.dumps(row) + "\n")
    return path


def api_cell(name: str, stub: OpenAIStub, key_env: str, rpm: float, survey: Path, retries: int) -> CellConfig:
    conf = serving("litellm", api_base=stub.base_url, api_key_env=key_env, rpm=rpm, max_retries=retries)
    return CellConfig(
        model=ModelConfig(name=name, weights="openai/stub-model", serving=conf),
        dataset=DatasetConfig(name="custom", path=str(survey)),
        steering=SteeringConfig(name="none", protocol="benchmark", steering="none"),
        method=MethodConfig(name="verbalize"),
    )


def new_stub() -> OpenAIStub:
    return OpenAIStub(reply=lambda body: [ANSWER] * int(body.get("n") or 1), latency_s=LATENCY_S).start()


@dataclass
class Tally:
    """What one server saw: arrivals, and the answers (200) per distinct request body."""

    arrivals: list[float]
    answered: Counter[str]
    refused: int

    @classmethod
    def of(cls, stub: OpenAIStub) -> Tally:
        received = list(stub.received)
        answered = Counter(json.dumps(r.body, sort_keys=True) for r in received if r.status == 200)
        return cls(sorted(r.at for r in received), answered, sum(r.status == 429 for r in received))

    def rate(self, start: float | None = None, end: float | None = None) -> float:
        """Requests per minute that arrived in [start, end) (default: first to last arrival)."""
        if start is None or end is None:
            if len(self.arrivals) < 2:
                return 0.0
            return (len(self.arrivals) - 1) / (self.arrivals[-1] - self.arrivals[0]) * 60.0
        return sum(start <= t < end for t in self.arrivals) / (end - start) * 60.0

    def slowest_window(self, width: float = 10.0) -> float:
        """The lowest rate over the whole ``width``-second windows between the first and last arrival."""
        first, last = self.arrivals[0], self.arrivals[-1]
        n = int((last - first) // width)
        return min((self.rate(first + i * width, first + (i + 1) * width) for i in range(n)), default=0.0)

    def lost_and_duplicated(self, planned: int) -> tuple[int, int]:
        return planned - len(self.answered), sum(self.answered.values()) - len(self.answered)


def _sweep(cells: list[CellConfig], settings: SweepSettings) -> tuple[SweepOutcome, float]:
    t = time.perf_counter()
    out = run_sweep(cells, settings, NullTracker())
    return out, time.perf_counter() - t


def steady(rpm: float, seconds: float, work: Path, settings: SweepSettings) -> bool:
    n = max(2, round(rpm * seconds / 60.0))
    stub = new_stub()
    os.environ["DISTALIGN_BENCH_KEY_A"] = "sk-bench-a"
    try:
        survey = write_survey(work / "steady.jsonl", n)
        cell = api_cell("api_a", stub, "DISTALIGN_BENCH_KEY_A", rpm, survey, 4)
        out, wall = _sweep([cell], settings)
    finally:
        stub.stop()
    tally = Tally.of(stub)
    if len(tally.arrivals) < 2:
        print(f"steady: the server received {len(tally.arrivals)} requests; failures: {out.failures[:1]}")
        return False
    lost, dup = tally.lost_and_duplicated(int(out.totals["requests"]))
    rate = tally.rate()
    ratio = rate / rpm
    verdict = "meets" if ratio >= TARGET_RATIO and lost == dup == 0 else "misses"
    print(
        f"steady: {len(tally.arrivals)} requests received for {int(out.totals['requests'])} planned over "
        f"{tally.arrivals[-1] - tally.arrivals[0]:.1f} s (sweep wall {wall:.1f} s, cells "
        f"{int(out.totals['finished'])}/{int(out.totals['cells'])})"
    )
    print(
        f"steady: achieved {rate:.1f} requests/min at {rpm:g} configured: ratio {ratio:.3f}; slowest 10 s "
        f"window {tally.slowest_window():.1f}/min; lost {lost}, sent twice {dup}; {verdict} the "
        f">= {TARGET_RATIO:.0%} target"
    )
    return verdict == "meets"


def burst(rpm: float, seconds: float, work: Path, settings: SweepSettings) -> bool:
    n = max(2, round(rpm * seconds / 60.0))
    window = seconds / 3.0
    stubs = {"a": new_stub(), "b": new_stub()}
    when: dict[str, float] = {}

    def inject() -> None:
        """From a third of the way in (counted from the first arrival) to two thirds: 429s for account a."""
        while not stubs["a"].received and not stop.is_set():
            time.sleep(0.01)
        if stop.wait(window):
            return
        when["start"] = time.monotonic()
        stubs["a"].on_marker("", Fault.rate_limited("1"), always=True)  # every prompt contains ""
        stop.wait(window)
        stubs["a"].clear_faults()
        when["end"] = time.monotonic()

    stop = threading.Event()
    injector = threading.Thread(target=inject, daemon=True)
    cells = []
    for acct, stub in stubs.items():
        var = f"DISTALIGN_BENCH_KEY_{acct.upper()}"
        os.environ[var] = f"sk-bench-{acct}"
        survey = write_survey(work / f"burst_{acct}.jsonl", n)
        cells.append(api_cell(f"api_{acct}", stub, var, rpm, survey, math.ceil(window) + 5))
    injector.start()
    try:
        out, wall = _sweep(cells, settings)
    finally:
        stop.set()
        injector.join()
        for stub in stubs.values():
            stub.stop()
    if "end" not in when:
        print("burst: the sweep ended before the 429 burst did; give it more --burst-seconds")
        return False
    a, b = Tally.of(stubs["a"]), Tally.of(stubs["b"])
    if not (a.arrivals and b.arrivals):
        print(f"burst: a server received nothing; failures: {out.failures[:1]}")
        return False
    start, end = when["start"], when["end"]
    planned = int(out.totals["requests"]) // 2
    for label, t in (("a (429s)", a), ("b", b)):
        lost, dup = t.lost_and_duplicated(planned)
        before = t.rate(t.arrivals[0], start)
        answered_in = sum(start <= r.at < end and r.status == 200 for r in stubs[label[0]].received)
        print(
            f"burst: account {label:<8} before {before:6.1f}/min, during the {end - start:.1f} s burst "
            f"{t.rate(start, end):6.1f}/min sent, {answered_in / (end - start) * 60:6.1f}/min answered; "
            f"429s {t.refused}; lost {lost}, answered twice {dup}"
        )
    b_ratio = b.rate(start, end) / rpm
    slowed = a.rate(start, end) < 0.5 * rpm
    verdict = "meets" if b_ratio >= TARGET_RATIO and slowed else "misses"
    print(
        f"burst: second account during the burst at {b_ratio:.3f} of {rpm:g}/min, first account slowed: "
        f"{'yes' if slowed else 'no'}; sweep wall {wall:.1f} s; {verdict} the target"
    )
    return verdict == "meets"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the steady phase")
    parser.add_argument("--rpm", type=float, default=600.0, help="configured requests per minute")
    parser.add_argument("--burst-seconds", type=float, default=30.0, help="length of the two-account phase")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        settings = SweepSettings(store=str(work / "store"), progress=False, n_resamples=100)
        started = ensure_ray(settings)  # once for both phases; not timed
        try:
            steady(args.rpm, args.seconds, work, settings)
            burst(args.rpm, args.burst_seconds, work, settings)
        finally:
            if started:
                import ray

                ray.shutdown()


if __name__ == "__main__":
    main()

"""A test engine: the instant engine, observable from outside the process that hosts it.

``DISTALIGN_PROBE_JOURNAL`` names a file to which one line per received request is appended (model name,
tab, digest); it survives actor restarts and process kills, so a test counts what was sent even across a
killed sweep. ``DISTALIGN_PROBE_FAIL`` (comma-separated ``option_logprobs``/``generate``) makes those calls
raise, to exercise the error handling around engines. Both are read on every batch, so a test can change
them between runs. The variables reach Ray actors like every ``DISTALIGN_`` variable of the driver.

Use it as ``serving.engine: tests.engines.probe_engine`` (the repository root must be importable: the
tests' conftest puts it on ``PYTHONPATH`` for subprocesses and Ray workers).
"""

from __future__ import annotations

import os
from typing import Any

from distalign.engines.base import EngineSpec
from distalign.engines.instant import InstantEngine, InstantSettings
from distalign.records.config import ModelConfig
from distalign.records.engine import ModelIdentity

JOURNAL = "DISTALIGN_PROBE_JOURNAL"
FAIL = "DISTALIGN_PROBE_FAIL"
NAME = "tests.engines.probe_engine"


class ProbeEngine(InstantEngine):
    def _begin(self, kind: str, digests: list[bytes]) -> None:
        if kind in set(os.environ.get(FAIL, "").split(",")):
            raise RuntimeError(f"{kind} failing on purpose ({FAIL})")
        journal = os.environ.get(JOURNAL)
        if journal:
            with open(journal, "a", encoding="utf-8") as fh:
                fh.write("".join(f"{self.identity.name}\t{d.hex()[:24]}\n" for d in digests))
        super()._begin(kind, digests)


def _build(model: ModelConfig, settings: Any, identity: ModelIdentity) -> ProbeEngine:
    return ProbeEngine(identity, delay_s=settings.delay_s)


ENGINE = EngineSpec(name=NAME, settings=InstantSettings, build=_build)

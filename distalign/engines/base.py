"""The narrow, batched engine interface: two request kinds, lists in and lists out.

Requests and results are the frozen records of ``distalign.records.engine``; a backend declares its
``Capabilities`` so an impossible cell is rejected at planning time instead of mid-sweep.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from distalign.records.engine import (
    Capabilities,
    GenerateRequest,
    GenerateResult,
    ModelIdentity,
    OptionLogprobRequest,
    OptionLogprobResult,
)


@runtime_checkable
class Engine(Protocol):
    identity: ModelIdentity
    capabilities: Capabilities

    def option_logprobs(self, requests: Sequence[OptionLogprobRequest]) -> list[OptionLogprobResult]: ...

    def generate(self, requests: Sequence[GenerateRequest]) -> list[GenerateResult]: ...

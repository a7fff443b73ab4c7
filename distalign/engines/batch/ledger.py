"""The sweep folder's record of provider batches: ``batches.json``.

Written (atomically: a temporary file renamed over the old one) before a batch is sent, again the moment
the provider accepts it and at every change of its state, so a driver killed at any point finds, on the
next run of the same command, every batch it had submitted: it polls and collects them instead of sending
their requests again. A batch is first written as an intent (state ``submitting``: its keys, where it goes,
the time and a random token, no batch id yet); a driver killed between the provider accepting the batch
and hearing its id leaves that intent, and the next run asks the provider whether the batch exists
(``engines.batch.adopt``) before sending its keys again. Each entry holds the batch id, the model, the
provider, the request keys (the lines' ``custom_id``s), its state and the attempts each key has had; never
a key or a prompt.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

LEDGER = "batches.json"
#: states of a ledger entry: submitting (written before the provider heard of it; no batch id yet) |
#: submitted (at the provider, not collected yet) | collected | failed | cancelled | never_accepted (an
#: intent the provider turned out not to hold: its keys were submitted again)
OPEN_STATES = ("submitted",)
INTENT = "submitting"


@dataclass
class BatchEntry:
    batch_id: str
    model: str
    provider: str
    keys: list[str]
    round: int  # 0 for a first submission, n for the n-th re-submission of failed lines
    state: str = "submitted"
    provider_status: str = ""
    reason: str | None = None
    submitted_at: float = 0.0  # when the intent was written, just before the provider got the batch
    collected: int = 0  # lines answered into the store
    failed: int = 0  # lines that failed (re-submitted or, once retries are spent, error rows)
    cost_usd: float = 0.0
    #: where the batch lives, so ``distalign batches`` reaches it without the sweep's config (the name of
    #: the key's environment variable, never the key)
    weights: str = ""
    engine: str = "litellm"
    api_base: str | None = None
    api_key_env: str | None = None
    #: random, written with the intent and sent as the batch's metadata where the provider keeps metadata
    #: (OpenAI), so a rerun finds the batch of an intent; empty in ledgers written before intents existed
    token: str = ""


@dataclass
class Ledger:
    path: Path
    batches: list[BatchEntry] = field(default_factory=list)
    #: key -> failed attempts so far (bounded by serving.batch_retries)
    attempts: dict[str, int] = field(default_factory=dict)
    #: key -> final error of a line whose retries are spent (an error row in its cells)
    gave_up: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, folder: Path | str) -> Ledger:
        path = Path(folder) / LEDGER
        if not path.exists():
            return cls(path)
        data = json.loads(path.read_text())
        return cls(
            path,
            [BatchEntry(**b) for b in data.get("batches", [])],
            dict(data.get("attempts", {})),
            dict(data.get("gave_up", {})),
        )

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "batches": [asdict(b) for b in self.batches],
            "attempts": self.attempts,
            "gave_up": self.gave_up,
        }
        fd, tmp = tempfile.mkstemp(prefix=".batches-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, separators=(",", ":"))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def pending(self, model: str | None = None) -> list[BatchEntry]:
        return [b for b in self.batches if b.state in OPEN_STATES and (model is None or b.model == model)]

    def intents(self, model: str | None = None) -> list[BatchEntry]:
        """Batches written before submission whose acceptance by the provider was never recorded."""
        return [b for b in self.batches if b.state == INTENT and (model is None or b.model == model)]

    def batch_ids(self) -> set[str]:
        return {b.batch_id for b in self.batches if b.batch_id}

    def add(self, entry: BatchEntry) -> None:
        self.batches.append(entry)
        self.save()

"""Intents a stopped driver left: did the provider accept the batch before the driver heard its id?

The ledger records a batch as an intent (state ``submitting``) before sending it. A driver killed after the
provider accepted the batch but before it wrote the batch id leaves only that intent; sending its keys
again would pay for them twice. So the next run asks the provider first (``BatchClient.find``: OpenAI by the
token in the batch's metadata, Anthropic by creation time and request count): the batch it finds is
adopted and collected like any other; when the provider holds none, the intent is closed and its keys are
submitted as usual. When the provider cannot be asked, the intent stays and is asked about again later.
"""

from __future__ import annotations

import logging

from distalign.engines.batch.base import BatchClient
from distalign.engines.batch.ledger import BatchEntry, Ledger

log = logging.getLogger("distalign.batches")

NEVER_ACCEPTED = "never_accepted"


def adopt(ledger: Ledger, entry: BatchEntry, client: BatchClient) -> str | None:
    """Resolve one intent: the adopted batch id (the entry is now ``submitted``), or None when the provider
    never accepted it (the entry is ``never_accepted`` and its keys are free again). Saves the ledger.
    Raises ``BatchLookupError`` when the provider could not be asked (nothing changes)."""
    found = client.find(entry.token, entry.submitted_at, len(entry.keys), ledger.batch_ids())
    if found is None:
        entry.state = NEVER_ACCEPTED
        entry.reason = "the provider holds no batch of this submission; its requests were submitted again"
    else:
        entry.batch_id, entry.state = found, "submitted"
        log.debug("intent %s of %s is batch %s", entry.token, entry.model, found)
    ledger.save()
    return found

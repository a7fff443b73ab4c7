"""Provider batch APIs (OpenAI Batch, Anthropic Message Batches): the same requests within 24 hours at about
half the price and outside the synchronous rate limits.

``lines`` turns requests into provider batch lines and result lines back into results (the same request
bodies and the same parsing as the synchronous litellm engine); ``openai`` and ``anthropic`` are the two
clients; ``ledger`` is the sweep folder's record of submitted batches that makes a sweep resumable across
driver exits; ``prices`` prices batch mode for the dry run.
"""

from __future__ import annotations

from distalign.engines.batch.clients import BATCH_PROVIDERS, BatchClient, batch_client, check_batch_serving

__all__ = ["BATCH_PROVIDERS", "BatchClient", "batch_client", "check_batch_serving"]

"""Provider batch APIs (OpenAI Batch, Anthropic Message Batches): the same requests within 24 hours at about
half the price and outside the synchronous rate limits.

``lines`` turns requests into provider batch lines and result lines back into results (the same request
bodies and the same parsing as the synchronous litellm engine); ``openai_batches`` and
``anthropic_batches`` are the two clients (``clients`` picks one per model, ``base`` is what they share);
``ledger`` is the sweep folder's record of submitted batches that makes a sweep resumable across driver
exits; ``prices`` prices batch mode for the dry run.

Nothing is imported here: the clients import litellm, which a sweep without batch-mode models never loads.
"""

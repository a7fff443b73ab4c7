"""The batch clients' lookup of a batch a stopped driver submitted without recording its id
(``BatchClient.find``), against the loopback stub's paginated listings (newest first)."""

from __future__ import annotations

import time

import pytest

from distalign.engines.batch.base import BatchLookupError
from distalign.engines.batch.clients import batch_client
from distalign.records.config import ModelConfig, serving
from tests.engines.batch_stub import BatchStub, batch_stub_fixture  # noqa: F401

OPENAI = ("gpt4", "openai/gpt-4-0613")
ANTHROPIC = ("claude_3_opus", "anthropic/claude-3-opus-20240229")


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTALIGN_BATCH_KEY", "sk-test-find")
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def _client(stub: BatchStub, which: tuple[str, str]):  # noqa: ANN202
    s = serving("litellm", api_base=stub.base_url, api_key_env="DISTALIGN_BATCH_KEY", mode="batch")
    return batch_client(ModelConfig(name=which[0], weights=which[1], serving=s))


def _batches(stub: BatchStub, kind: str, sizes: list[int], tokens: list[str | None]) -> list[str]:
    """Batches created in this order (so listed in the reverse), with distinct lines."""
    ids = []
    for i, (n, token) in enumerate(zip(sizes, tokens, strict=True)):
        lines = [{"custom_id": f"b{i}-{j}", "params": {}} for j in range(n)]
        ids.append(stub._create(kind, lines, metadata={"distalign_token": token} if token else None).id)
    return ids


def test_openai_finds_the_batch_by_its_token_on_a_later_page(batch_stub: BatchStub) -> None:
    since = time.time()
    ours, *_ = _batches(batch_stub, "openai", [3] * 150, ["ours"] + [f"t{i}" for i in range(149)])
    client = _client(batch_stub, OPENAI)
    assert client.find("ours", since, 3, set()) == ours
    assert batch_stub.list_calls == 2  # 100 per page, newest first: ours, the oldest, is on the second
    assert client.find("ours", since, 3, {ours}) is None  # an id already in the ledger is never the answer
    assert client.find("absent", since, 3, set()) is None


def test_openai_stops_at_batches_older_than_the_intent(batch_stub: BatchStub) -> None:
    ids = _batches(batch_stub, "openai", [1] * 150, [None] * 150)
    for i in ids[:100]:
        batch_stub.batches[i].created_at -= 3600  # the first 100 came an hour before the intent
    assert _client(batch_stub, OPENAI).find("ours", time.time(), 1, set()) is None
    assert batch_stub.list_calls == 1  # the first page already reaches back past the intent


def test_a_lookup_past_its_bound_or_a_failed_listing_is_undecided(
    batch_stub: BatchStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    _batches(batch_stub, "openai", [1] * 101, [None] * 101)
    monkeypatch.setattr("distalign.engines.batch.openai_batches.MAX_LIST_PAGES", 1)
    client = _client(batch_stub, OPENAI)
    with pytest.raises(BatchLookupError, match="without reaching it"):
        client.find("ours", time.time() - 60, 1, set())
    batch_stub.list_status = 403
    for which in (OPENAI, ANTHROPIC):
        with pytest.raises(BatchLookupError, match="did not list its batches.*listing unavailable"):
            _client(batch_stub, which).find("ours", time.time(), 1, set())


def test_anthropic_finds_the_earliest_batch_of_the_intents_size_since_its_time(batch_stub: BatchStub) -> None:
    since = time.time()
    old, ours, *_, same_later = _batches(batch_stub, "anthropic", [4, 4] + [2] * 120 + [4], [None] * 123)
    batch_stub.batches[old].created_at -= 3600  # before the intent (beyond the clock skew)
    batch_stub.batches[same_later].created_at += 60
    client = _client(batch_stub, ANTHROPIC)
    assert client.find("", since, 4, set()) == ours
    assert client.find("", since, 4, {ours}) == same_later
    assert client.find("", since, 5, set()) is None

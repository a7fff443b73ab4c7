"""Batch mode (model.serving.mode=batch) against a loopback OpenAI Files+Batches / Anthropic Message Batches
server (tests/engines/batch_stub.py): same numbers as the synchronous path, resumable, partial failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distalign.cli import main as cli
from distalign.engines.batch.ledger import LEDGER, Ledger
from distalign.records.config import ModelConfig, serving
from distalign.scoring.results import read_records
from distalign.sweep.batches import split_lines
from distalign.sweep.runner import run_sweep
from distalign.sweep.trackers import MemoryTracker
from tests.engines.batch_stub import BatchStub, batch_stub_fixture  # noqa: F401
from tests.sweep.conftest import grid, settings

KEY = "sk-distalign-batch-test-9d2f6a"
METHODS = ("logprobs", "verbalize", "seq")


def api_model(
    stub: BatchStub, name: str = "gpt4", weights: str = "openai/gpt-4-0613", **keys: object
) -> ModelConfig:
    kw: dict[str, object] = {
        "api_base": stub.base_url,
        "api_key_env": "DISTALIGN_BATCH_KEY",
        "mode": "batch",
        "batch_poll_s": 0.02,
        **keys,
    }
    return ModelConfig(name=name, weights=weights, serving=serving("litellm", **kw))


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISTALIGN_BATCH_KEY", KEY)
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")


SCORES = (
    "tv_mean",
    "tv_ci_low",
    "tv_ci_high",
    "alignment_mean",
    "extraction_rate",
    "prompt_tokens",
    "completion_tokens",
)


def _scores(outcome) -> dict[str, dict[str, float]]:
    """Each cell's scores (not its timings, sent/cached counts or cost: batch prices differ from sync)."""
    return {r.spec_hash: {k: r.metrics[k] for k in SCORES if k in r.metrics} for r in outcome.results}


def _run(tmp_path: Path, stub: BatchStub, methods=METHODS, **kw: object):
    model = api_model(stub, **{k: v for k, v in kw.items() if k.startswith("batch_") and k != "batch_wait"})
    sweep_kw = {k: v for k, v in kw.items() if k == "batch_wait"}
    cells = grid(methods=methods, model=model, max_items=3)
    return run_sweep(cells, settings(tmp_path / "store", **sweep_kw), MemoryTracker())


def test_lines_are_split_at_the_providers_request_and_byte_limits() -> None:
    lines = [(str(i), b"x" * (10 + i % 3)) for i in range(25)]
    by_count = list(split_lines(iter(lines), max_requests=10, max_bytes=10**6))
    assert [len(g) for g in by_count] == [10, 10, 5]
    by_bytes = list(split_lines(iter(lines), max_requests=100, max_bytes=60))
    assert all(sum(len(x) for _, x in g) <= 60 for g in by_bytes)
    assert [k for g in by_bytes for k, _ in g] == [k for k, _ in lines]


def test_a_grid_through_batches_then_a_rerun_sends_nothing(tmp_path: Path, batch_stub: BatchStub) -> None:
    first = _run(tmp_path, batch_stub)
    assert first.totals["finished"] == first.totals["cells"] == len(METHODS) * 2
    assert batch_stub.sync_calls == 0 and batch_stub.sent_twice() == 0
    assert (
        len(batch_stub.lines) == first.totals["batch_lines_sent"] == first.totals["batch_results_collected"]
    )
    ledger = Ledger.load(first.folder)
    assert [b.state for b in ledger.batches] == ["collected"] and ledger.batches[0].cost_usd > 0
    assert all(r.metrics["cost_usd"] > 0 for r in first.results if "cost_usd" in r.metrics)
    assert all(r.metrics["requests_sent"] == r.metrics["requests"] for r in first.results)
    # each cell names the batches that answered it, in its result, its cell.json and its MLflow tags
    assert all(r.batch_ids == (ledger.batches[0].batch_id,) for r in first.results)
    on_disk = {r["spec_hash"]: r.get("batch_ids") for r in read_records(first.folder)}
    assert on_disk == {r.spec_hash: [ledger.batches[0].batch_id] for r in first.results}
    lines, batches = sum(batch_stub.lines.values()), len(batch_stub.batches)
    # a second run of the same grid in a fresh sweep folder: every request comes from the store
    again = run_sweep(
        grid(methods=METHODS, model=api_model(batch_stub), max_items=3),
        settings(tmp_path / "store", output_dir=str(tmp_path / "other")),
        MemoryTracker(),
    )
    assert again.totals["finished"] == again.totals["cells"]
    assert (sum(batch_stub.lines.values()), len(batch_stub.batches)) == (lines, batches)
    assert _scores(again) == _scores(first)
    assert all(r.batch_ids == () for r in again.results)  # answered from the store, by no batch of this run


def test_batch_wait_false_submits_records_and_exits_then_a_rerun_collects(
    tmp_path: Path, batch_stub: BatchStub
) -> None:
    batch_stub.hold.clear()  # the provider has not finished yet
    first = _run(tmp_path, batch_stub, batch_wait=False)
    assert first.totals["batches_pending"] == 1 and first.results == []
    ledger = json.loads((Path(first.folder) / LEDGER).read_text())
    assert [b["state"] for b in ledger["batches"]] == ["submitted"]
    assert cli(["batches", "status", first.folder]) == 0
    sent = sum(batch_stub.lines.values())
    batch_stub.hold.set()
    second = _run(tmp_path, batch_stub, batch_wait=False)
    assert second.totals["finished"] == second.totals["cells"] == len(METHODS) * 2
    assert sum(batch_stub.lines.values()) == sent and batch_stub.sent_twice() == 0
    assert second.totals["batches_submitted"] == 0


def test_expired_and_partly_failed_batches_resubmit_only_the_lines_that_failed(
    tmp_path: Path, batch_stub: BatchStub
) -> None:
    batch_stub.expire_next = [5]  # the first batch expires after answering 5 lines
    batch_stub.line_faults = {"": 2}  # and 2 of those fail
    outcome = _run(tmp_path, batch_stub, methods=("logprobs",))
    assert outcome.totals["finished"] == outcome.totals["cells"]
    unique = len(batch_stub.lines)
    retried = [k for k, n in batch_stub.lines.items() if n > 1]
    assert len(retried) == unique - 3  # every line but the 3 answered by the expired batch went again
    assert all(n == 2 for n in batch_stub.lines.values() if n > 1)
    assert all(r.metrics["extraction_rate"] == 1.0 for r in outcome.results)


def test_a_line_failing_beyond_the_retries_is_an_error_row_and_a_rerun_sends_only_it(
    tmp_path: Path, batch_stub: BatchStub
) -> None:
    batch_stub.line_faults = {"": 1}  # the first line fails; with no retries it stays failed
    outcome = _run(tmp_path, batch_stub, methods=("logprobs",), batch_retries=0)
    assert set(batch_stub.lines.values()) == {1} and outcome.totals["batch_lines_failed"] == 1
    (failed,) = [r for r in outcome.results if r.status == "failed"]
    assert failed.metrics["failed_requests"] == 1 and failed.metrics["extraction_rate"] < 1.0
    assert "injected server error" in (failed.error or "")
    failed_key = next(iter(batch_stub.lines))  # the first line of the first file
    rerun = _run(tmp_path, batch_stub, methods=("logprobs",), batch_retries=0)
    assert rerun.totals["finished"] == 1 and rerun.totals["batch_lines_sent"] == 1
    assert batch_stub.lines[failed_key] == 2 and sum(batch_stub.lines.values()) == len(batch_stub.lines) + 1


def test_retries_are_bounded_and_a_cell_whose_every_line_failed_names_why(
    tmp_path: Path, batch_stub: BatchStub
) -> None:
    batch_stub.line_faults = {"": 10**6}
    outcome = _run(tmp_path, batch_stub, methods=("logprobs",), batch_retries=1)
    assert set(batch_stub.lines.values()) == {2}  # the first try and one retry, no more
    assert outcome.totals["batch_lines_failed"] == len(batch_stub.lines)
    assert len(outcome.failures) == 2 and all("injected server error" in e for _, e in outcome.failures)


def test_a_batch_that_fails_whole_names_the_providers_reason(
    tmp_path: Path, batch_stub: BatchStub, capsys
) -> None:
    batch_stub.fail_next = ["input file line 3: invalid JSON"]
    outcome = _run(tmp_path, batch_stub, methods=("logprobs",), batch_retries=0)
    assert "input file line 3: invalid JSON" in capsys.readouterr().out
    ledger = Ledger.load(outcome.folder)
    assert (
        ledger.batches[0].state == "failed" and ledger.batches[0].reason == "input file line 3: invalid JSON"
    )
    assert all("invalid JSON" in e for e in ledger.gave_up.values())


def test_anthropic_message_batches(tmp_path: Path, batch_stub: BatchStub) -> None:
    model = api_model(batch_stub, "claude_3_opus", "anthropic/claude-3-opus-20240229")
    cells = grid(methods=("verbalize", "seq"), model=model, max_items=3)
    outcome = run_sweep(cells, settings(tmp_path / "store"), MemoryTracker())
    assert outcome.totals["finished"] == outcome.totals["cells"] == 4
    assert batch_stub.sent_twice() == 0 and batch_stub.sync_calls == 0
    assert [b.provider for b in Ledger.load(outcome.folder).batches] == ["anthropic"]
    auth = [
        h.get("x-api-key") or h.get("Authorization") or h.get("authorization")
        for h in batch_stub.headers_seen
    ]
    assert auth and all(a is not None and KEY in a for a in auth)


def test_the_key_is_never_written(tmp_path: Path, batch_stub: BatchStub) -> None:
    batch_stub.hold.clear()
    _run(tmp_path, batch_stub, batch_wait=False)
    batch_stub.hold.set()
    _run(tmp_path, batch_stub)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == LEDGER for p in written)
    assert not [p for p in written if KEY.encode() in p.read_bytes()]
    assert all(KEY.encode() not in data for data in batch_stub.files.values())


# --- a driver killed between the provider accepting a batch and the ledger write -------------------------
class _Killed(BaseException):
    """The driver dies (SIGKILL, power loss): nothing after this point runs."""


def _die_in_submit(monkeypatch: pytest.MonkeyPatch, client: type, accepted: bool) -> None:
    """The next submission kills the driver after (``accepted``) or before the provider got the batch."""
    real = client.submit

    def submit(self, lines, token):  # noqa: ANN001, ANN202
        monkeypatch.setattr(client, "submit", real)
        if accepted:
            real(self, lines, token)  # the provider accepts and records it; the driver never hears its id
        raise _Killed

    monkeypatch.setattr(client, "submit", submit)


def _killed_run(tmp_path: Path, stub: BatchStub, model: ModelConfig, methods: tuple[str, ...]):
    cells = grid(methods=methods, model=model, max_items=3)
    with pytest.raises(_Killed):
        run_sweep(cells, settings(tmp_path / "store"), MemoryTracker())
    (folder,) = {p.parent for p in tmp_path.rglob(LEDGER)}
    return cells, folder


def test_a_driver_killed_while_the_provider_accepted_a_batch_adopts_it_on_rerun(
    tmp_path: Path, batch_stub: BatchStub, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from distalign.engines.batch.openai_batches import OpenAIBatches

    _die_in_submit(monkeypatch, OpenAIBatches, accepted=True)
    cells, folder = _killed_run(tmp_path, batch_stub, api_model(batch_stub), ("logprobs",))
    (intent,) = Ledger.load(folder).batches
    assert (intent.state, intent.batch_id) == ("submitting", "")
    (accepted,) = batch_stub.batches.values()
    assert accepted.metadata == {"distalign_token": intent.token}
    assert cli(["batches", "status", str(folder)]) == 0
    assert "submitting" in capsys.readouterr().out
    sent = sum(batch_stub.lines.values())

    outcome = run_sweep(cells, settings(tmp_path / "store"), MemoryTracker())
    assert outcome.totals["finished"] == outcome.totals["cells"] == 2
    assert f"adopted batch {accepted.id} of gpt4" in capsys.readouterr().out
    assert len(batch_stub.batches) == 1 and batch_stub.sent_twice() == 0
    assert sum(batch_stub.lines.values()) == sent and outcome.totals["batches_submitted"] == 0
    assert outcome.totals["batches_adopted"] == 1
    assert [(b.batch_id, b.state) for b in Ledger.load(folder).batches] == [(accepted.id, "collected")]


def test_an_intent_the_provider_never_got_is_submitted_once(
    tmp_path: Path, batch_stub: BatchStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distalign.engines.batch.openai_batches import OpenAIBatches

    _die_in_submit(monkeypatch, OpenAIBatches, accepted=False)
    cells, folder = _killed_run(tmp_path, batch_stub, api_model(batch_stub), ("logprobs",))
    assert not batch_stub.batches and [b.state for b in Ledger.load(folder).batches] == ["submitting"]
    outcome = run_sweep(cells, settings(tmp_path / "store"), MemoryTracker())
    assert outcome.totals["finished"] == outcome.totals["cells"] == 2
    assert len(batch_stub.batches) == 1 and set(batch_stub.lines.values()) == {1}
    intent, batch = Ledger.load(folder).batches
    assert (intent.state, batch.state) == ("never_accepted", "collected") and intent.keys == batch.keys


def test_a_failed_listing_keeps_the_intent_and_sends_nothing_until_the_provider_answers(
    tmp_path: Path, batch_stub: BatchStub, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from distalign.engines.batch.openai_batches import OpenAIBatches

    _die_in_submit(monkeypatch, OpenAIBatches, accepted=True)
    cells, folder = _killed_run(tmp_path, batch_stub, api_model(batch_stub), ("logprobs",))
    sent = sum(batch_stub.lines.values())
    batch_stub.list_status = 403
    stopped = run_sweep(cells, settings(tmp_path / "store", batch_wait=False), MemoryTracker())
    assert "could not check whether openai accepted" in capsys.readouterr().out
    assert stopped.totals["batches_pending"] == 1 and stopped.results == []
    assert sum(batch_stub.lines.values()) == sent and len(batch_stub.batches) == 1
    assert [b.state for b in Ledger.load(folder).batches] == ["submitting"]

    batch_stub.list_status = None
    outcome = run_sweep(cells, settings(tmp_path / "store"), MemoryTracker())
    assert outcome.totals["finished"] == outcome.totals["cells"] == 2
    assert sum(batch_stub.lines.values()) == sent and batch_stub.sent_twice() == 0


def test_cancel_finds_the_batch_a_stopped_driver_was_submitting_and_cancels_it(
    tmp_path: Path, batch_stub: BatchStub, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from distalign.engines.batch.openai_batches import OpenAIBatches

    batch_stub.hold.clear()
    _die_in_submit(monkeypatch, OpenAIBatches, accepted=True)
    _, folder = _killed_run(tmp_path, batch_stub, api_model(batch_stub), ("logprobs",))
    (accepted,) = batch_stub.batches.values()
    assert cli(["batches", "status", "--poll", str(folder)]) == 0
    assert accepted.id in capsys.readouterr().out  # looked up, not recorded
    assert Ledger.load(folder).batches[0].state == "submitting"
    assert cli(["batches", "cancel", str(folder)]) == 0
    assert f"cancelled {accepted.id}" in capsys.readouterr().out and accepted.status == "cancelled"
    assert [(b.batch_id, b.state) for b in Ledger.load(folder).batches] == [(accepted.id, "submitted")]


def test_anthropic_a_killed_drivers_batch_is_adopted_by_its_time_and_size(
    tmp_path: Path, batch_stub: BatchStub, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from distalign.engines.batch.anthropic_batches import AnthropicBatches

    model = api_model(batch_stub, "claude_3_opus", "anthropic/claude-3-opus-20240229")
    _die_in_submit(monkeypatch, AnthropicBatches, accepted=True)
    cells, folder = _killed_run(tmp_path, batch_stub, model, ("verbalize",))
    (accepted,) = batch_stub.batches.values()
    n = len(accepted.lines)
    # batches that are not ours: one of another size, one of the same size created before the intent
    decoy = [{"custom_id": f"other-{i}", "params": {"messages": []}} for i in range(2 * n - 1)]
    batch_stub._create("anthropic", decoy[: n - 1])
    batch_stub._create("anthropic", decoy[n - 1 :]).created_at -= 3600
    outcome = run_sweep(cells, settings(tmp_path / "store"), MemoryTracker())
    assert outcome.totals["finished"] == outcome.totals["cells"] == 2
    assert f"adopted batch {accepted.id} of claude_3_opus" in capsys.readouterr().out
    assert len(batch_stub.batches) == 3 and batch_stub.sent_twice() == 0
    assert [(b.batch_id, b.state) for b in Ledger.load(folder).batches] == [(accepted.id, "collected")]


def test_anthropic_an_intent_the_provider_never_got_is_submitted_once(
    tmp_path: Path, batch_stub: BatchStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distalign.engines.batch.anthropic_batches import AnthropicBatches

    model = api_model(batch_stub, "claude_3_opus", "anthropic/claude-3-opus-20240229")
    _die_in_submit(monkeypatch, AnthropicBatches, accepted=False)
    cells, folder = _killed_run(tmp_path, batch_stub, model, ("verbalize",))
    outcome = run_sweep(cells, settings(tmp_path / "store"), MemoryTracker())
    assert outcome.totals["finished"] == outcome.totals["cells"] == 2
    assert len(batch_stub.batches) == 1 and set(batch_stub.lines.values()) == {1}
    assert [b.state for b in Ledger.load(folder).batches] == ["never_accepted", "collected"]


def test_a_ledger_written_before_intents_existed_still_loads(tmp_path: Path) -> None:
    old = {"batch_id": "batch_7", "model": "gpt4", "provider": "openai", "keys": ["k"], "round": 0}
    (tmp_path / LEDGER).write_text(json.dumps({"batches": [old], "attempts": {}, "gave_up": {}}))
    ledger = Ledger.load(tmp_path)
    assert [b.batch_id for b in ledger.pending()] == ["batch_7"] and ledger.intents() == []

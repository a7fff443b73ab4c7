"""``distalign batches status|cancel SWEEP_FOLDER``: the provider batches a sweep in batch mode submitted.

``status`` reads the sweep folder's ledger (``--poll`` also asks each provider); ``cancel`` asks the
providers to cancel every batch not collected yet. A cancelled batch stays in the ledger: the next run of
the sweep collects the lines that finished before the cancellation and re-submits the rest.

A batch a driver was submitting when it stopped (state ``submitting``: the provider may have accepted it,
the ledger has no id) shows without an id; ``status --poll`` asks the provider whether it holds it, and
``cancel`` looks it up, records it and cancels it (or closes the intent when the provider never got it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from distalign.cli.helptext import add_command
from distalign.engines.batch.adopt import adopt
from distalign.engines.batch.base import BatchLookupError
from distalign.engines.batch.ledger import LEDGER, BatchEntry, Ledger
from distalign.errors import InputError

_STATUS = "distalign batches status .distalign/sweeps/meister2024-0123456789abcdef"
_CANCEL = "distalign batches cancel .distalign/sweeps/meister2024-0123456789abcdef"


def register(subparsers: Any) -> None:
    batches = add_command(
        subparsers, "batches", "list or cancel a sweep's provider batches", (_STATUS, _CANCEL)
    )
    sub = batches.add_subparsers(dest="batches_command", required=True, metavar="ACTION")
    status = add_command(sub, "status", "the batches of a sweep folder and their state", (_STATUS,))
    status.add_argument("folder", type=Path, help="the sweep folder (printed when the sweep starts)")
    status.add_argument("--poll", action="store_true", help="ask each provider for the current state")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.set_defaults(func=_status)
    cancel = add_command(sub, "cancel", "cancel every batch not collected yet", (_CANCEL,))
    cancel.add_argument("folder", type=Path, help="the sweep folder")
    cancel.set_defaults(func=_cancel)


def _ledger(folder: Path) -> Ledger:
    if not (folder / LEDGER).is_file():
        raise InputError(
            "no provider batches recorded here (not a sweep folder of a batch-mode sweep)", file=folder
        )
    return Ledger.load(folder)


def _client(entry: BatchEntry) -> Any:
    from distalign.engines.batch.clients import batch_client
    from distalign.records.config import ModelConfig, serving

    s = serving(entry.engine, mode="batch", api_base=entry.api_base, api_key_env=entry.api_key_env)
    return batch_client(ModelConfig(name=entry.model, weights=entry.weights, serving=s))


def _status(args: argparse.Namespace) -> int:
    ledger = _ledger(args.folder)
    rows = []
    known, unknown = ledger.batch_ids(), []
    for b in ledger.batches:
        provider_status, counts, batch_id = b.provider_status, {}, b.batch_id or "-"
        if args.poll and b.state == "submitted":
            state = _client(b).state(b.batch_id)
            provider_status, counts = state.provider_status, state.counts
        elif args.poll and b.state == "submitting":  # looked up, not recorded: the sweep's rerun adopts it
            try:
                found = _client(b).find(b.token, b.submitted_at, len(b.keys), known)
            except BatchLookupError as exc:
                provider_status = "unknown"
                unknown.append(f"{b.model}: {exc}")
            else:
                provider_status = "not at provider" if found is None else "at provider"
                batch_id = found or batch_id
        rows.append(
            {
                "batch_id": batch_id,
                "model": b.model,
                "provider": b.provider,
                "requests": len(b.keys),
                "state": b.state,
                "provider_status": provider_status,
                "collected": b.collected,
                "failed": b.failed,
                "cost_usd": round(b.cost_usd, 6),
                **({"counts": counts} if counts else {}),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"{'batch id':<28} {'model':<16} {'requests':>8} {'state':<10} {'provider':<12} "
        f"{'collected':>9} {'failed':>6}"
    )
    for r in rows:
        print(
            f"{r['batch_id']:<28} {r['model']:<16} {r['requests']:>8} {r['state']:<10} "
            f"{r['provider_status'] or '-':<12} {r['collected']:>9} {r['failed']:>6}"
        )
    pending = sum(b.state == "submitted" for b in ledger.batches)
    print(f"{len(rows)} batches, {pending} pending; {len(ledger.gave_up)} requests failed for good")
    if intents := ledger.intents():
        print(
            f"{len(intents)} batches were being submitted when a driver stopped (no id recorded): the next "
            "run of the sweep asks the provider for them before sending their requests again"
            + ("" if args.poll else " (--poll asks now)")
        )
    for reason in unknown:
        print(f"could not ask the provider ({reason})")
    return 0


def _cancel(args: argparse.Namespace) -> int:
    ledger = _ledger(args.folder)
    for b in ledger.intents():  # the provider may hold the batch: find it first, then cancel it too
        try:
            found = adopt(ledger, b, _client(b))
        except BatchLookupError as exc:
            print(f"could not check whether {b.provider} holds a batch of {b.model} being submitted: {exc}")
            continue
        if found is None:
            print(f"a batch of {b.model} ({len(b.keys)} requests) being submitted never reached {b.provider}")
    pending = ledger.pending()
    for b in pending:
        _client(b).cancel(b.batch_id)
        b.provider_status = "cancelling"
        print(f"cancelled {b.batch_id} ({b.model}, {len(b.keys)} requests)")
    ledger.save()
    print(
        f"{len(pending)} batches cancelled; rerun the sweep to collect what finished and re-submit the rest"
    )
    return 0

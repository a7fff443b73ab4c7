"""``distalign cache stats|export FILE|clear|verify``: the response store from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from distalign.cli.helptext import add_command
from distalign.engines.store import ResponseStore, default_store_root
from distalign.errors import InputError

_STATS = "distalign cache stats --store .distalign/store"
_EXPORT = "distalign cache export responses.jsonl"
_CLEAR = ("distalign cache clear --model smollm2_135m", "distalign cache clear --yes")
_VERIFY = "distalign cache verify --store .distalign/store"


def register(subparsers: Any) -> None:
    cache = add_command(
        subparsers, "cache", "inspect, check or clear the response store", (_STATS, _EXPORT, _VERIFY, *_CLEAR)
    )
    cache_sub = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    store_help = "store folder (default: $DISTALIGN_STORE or ./.distalign/store)"

    stats = add_command(cache_sub, "stats", "entries, size and entries per model", (_STATS,))
    stats.add_argument("--store", type=Path, default=None, help=store_help)
    stats.add_argument("--json", action="store_true", help="print the figures as JSON (for scripts)")
    stats.set_defaults(func=_stats)

    export = add_command(cache_sub, "export", "write every entry as JSON lines", (_EXPORT,))
    export.add_argument("file", type=Path, help="output .jsonl file")
    export.add_argument("--store", type=Path, default=None, help=store_help)
    export.set_defaults(func=_export)

    clear = add_command(cache_sub, "clear", "delete entries (all, or one model's)", _CLEAR)
    clear.add_argument("--model", default=None, help="only this model name (default: every model)")
    clear.add_argument(
        "--yes", "-y", action="store_true", help="delete without asking (required when not on a terminal)"
    )
    clear.add_argument("--store", type=Path, default=None, help=store_help)
    clear.set_defaults(func=_clear)

    verify = add_command(
        cache_sub,
        "verify",
        "check every shard in full; a damaged one is moved aside (what still reads is kept), an entry "
        "that no longer decodes is deleted (it is requested again); exit 1 if any was found",
        (_VERIFY,),
    )
    verify.add_argument("--store", type=Path, default=None, help=store_help)
    verify.set_defaults(func=_verify)


def _open_store(folder: Path | None) -> ResponseStore:
    root = folder if folder is not None else default_store_root()
    if not root.is_dir():
        raise InputError("no response store here (set --store or DISTALIGN_STORE)", file=root)
    return ResponseStore(root)


def human_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def stats_text(stats: dict[str, Any]) -> str:
    """The store's figures for a reader: where, how big, how many answers per model."""
    models: dict[str, int] = stats["models"]
    lines = [
        f"response store {stats['root']}",
        f"  {stats['entries']:,} stored answers, {human_bytes(stats['bytes'])} "
        f"in {stats['shards']} shard file(s)",
    ]
    if models:
        width = max(len(m) for m in models)
        lines.append("  answers per model:")
        lines += [f"    {m:<{width}}  {n:>10,}" for m, n in sorted(models.items(), key=lambda kv: -kv[1])]
    else:
        lines.append("  (empty: a sweep stores every answer here as it comes in)")
    return "\n".join(lines)


def _stats(args: argparse.Namespace) -> int:
    with _open_store(args.store) as store:
        stats = store.stats()
    print(json.dumps(stats, indent=2) if args.json else stats_text(stats))
    return 0


def _export(args: argparse.Namespace) -> int:
    if not args.file.parent.is_dir():
        raise InputError("the output folder does not exist", file=args.file)
    with _open_store(args.store) as store:
        count = store.export(args.file)
    print(f"exported {count} entries to {args.file}")
    return 0


def _confirm(what: str) -> bool:
    """Ask on a terminal; anywhere else (a script, CI) deleting needs --yes."""
    if not sys.stdin.isatty():
        raise InputError(f"not deleting {what} without confirmation: add --yes (on a terminal you are asked)")
    return input(f"delete {what}? [y/N] ").strip().lower() in ("y", "yes")


def _clear(args: argparse.Namespace) -> int:
    with _open_store(args.store) as store:
        return _clear_from(store, args)


def _clear_from(store: ResponseStore, args: argparse.Namespace) -> int:
    models: dict[str, int] = store.stats()["models"]
    if args.model is not None and args.model not in models:
        known = ", ".join(models) if models else "none, the store is empty"
        raise InputError(
            f"no entries for model {args.model!r} (models in the store: {known})", where="--model"
        )
    count = models[args.model] if args.model is not None else sum(models.values())
    scope = f" of model {args.model}" if args.model else ""
    if not args.yes and not _confirm(f"{count} entries{scope} from {store.root}"):
        print("nothing deleted")
        return 1
    removed = store.clear(model=args.model)
    print(f"removed {removed} entries{scope}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    with _open_store(args.store) as store:
        report = store.verify()
    for entry in report:
        name = Path(entry["shard"]).name
        if entry["status"] == "ok":
            print(f"ok        {name}: {entry['entries']} entries")
        elif entry["status"] == "repaired":
            print(
                f"repaired  {name}: {entry['dropped']} entries did not decode and were deleted, "
                f"{entry['entries']} kept"
            )
        elif entry["status"] == "damaged":
            lost = "an unknown number" if entry.get("lost") is None else entry["lost"]
            moved = Path(entry["moved_to"]).name if entry.get("moved_to") else "(moved by another process)"
            print(
                f"damaged   {name}: {entry['reason']}; moved aside as {moved}, "
                f"{entry.get('recovered', 0)} entries recovered, {lost} lost"
            )
        else:
            print(f"unreadable {name}: {entry.get('reason')}")
    bad = sum(e["status"] != "ok" for e in report)
    print(f"{len(report)} shards checked in {store.root}: {len(report) - bad} sound, {bad} with problems")
    return 1 if bad else 0

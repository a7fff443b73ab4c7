"""``distalign reproduce meister2024``: the paper's tables (published value beside reproduced, with why
they differ) and the data of its figures, regenerated from the public release alone."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from distalign.cli.helptext import add_command
from distalign.cli.outputs import check_output
from distalign.cli.score import DATA_DIR_HELP, bootstrap_args
from distalign.errors import InputError
from distalign.report.meister2024.reproduce import reproduce, summary, write_reproduction
from distalign.report.render import print_whole

PAPERS = ("meister2024",)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(
        subparsers,
        "reproduce",
        "regenerate a paper's tables and figure data from its public release",
        (
            "distalign reproduce meister2024 --data-dir ~/meister2024 --out reproduction/",
            "distalign reproduce meister2024 --data-dir fixture --out repro-sample/ --n-resamples 200",
        ),
    )
    p.add_argument("paper", choices=PAPERS, help="the paper to reproduce")
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    p.add_argument("--out", type=Path, required=True, help="folder for the tables (CSV + Markdown)")
    p.add_argument(
        "--figure4-method",
        default="seq",
        help="the method Figure 4 plots (the paper's: seq); 'best' plots each model's best method",
    )
    bootstrap_args(p)
    p.set_defaults(func=cmd_reproduce)


def _missing(x: object) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _fmt(x: object) -> str:
    return "-" if _missing(x) else f"{x:.3f}"


def _text(value: object) -> str:
    """A table cell as text; missing (None, NaN) is blank."""
    return "" if value is None or value != value else str(value)


#: what --figure4-method accepts: the release's methods (and their temperature-scaled log-p), or best
FIGURE4_CHOICES: tuple[str, ...] = ("seq", "verbalize", "logprobs", "logprobs+temperature", "best")


def cmd_reproduce(args: argparse.Namespace) -> int:
    check_output(args.out, "--out", folder=True)
    if args.figure4_method not in FIGURE4_CHOICES:
        raise InputError(
            f"unknown method {args.figure4_method!r} (known: {', '.join(FIGURE4_CHOICES)})",
            where="--figure4-method",
        )
    start = time.perf_counter()
    rep = reproduce(
        args.data_dir,
        n_resamples=args.n_resamples,
        seed=args.seed,
        figure4_method=None if args.figure4_method == "best" else args.figure4_method,
    )
    written = write_reproduction(rep, args.out)
    table = Table(title="Meister et al. (2024): reproduced vs published (full tables and notes in --out)")
    for c in ("table", "model", "method", "steering", "dataset", "reproduced", "published", "differs"):
        table.add_column(c, justify="right" if c in ("reproduced", "published") else "left", overflow="fold")
    for r in summary(rep):
        cells = [r["table"], r["model"], *(_text(r[k]) for k in ("method", "steering")), r["dataset"]]
        table.add_row(
            *map(str, cells), _fmt(r["reproduced"]), _fmt(r["published"]), "yes" if r["why"] else ""
        )
    console = Console()
    print_whole(console, table)
    console.print(f"wrote {len(written)} files to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


__all__ = ["cmd_reproduce", "register"]

"""``distalign calibrate``: calibrate a predictions file against the human distributions.

Fits temperature scaling or regression calibration on the file's rows (or applies a calibrator logged
earlier, ``--model-uri``), writes the calibrated predictions in the predictions schema, and reports raw and
calibrated scores as leaderboard rows (the ``distalign score`` JSON shape) with ``calibration`` and
``split`` fields. Raw and calibrated scores are computed on the same rows: those no calibrator trained on.
``--ood`` adds the supervision paper's out-of-domain table (train on the other datasets, test on one),
``--curves`` its learning curves. Progress goes to stderr when it is a terminal.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table

from distalign.calibration.curves import CHOSEN, curve_families, learning_curve
from distalign.calibration.extraction import extraction_table
from distalign.calibration.figures import dataset_curves_figure
from distalign.calibration.frame import cell_groups, is_evaluated, question_keys, split_label
from distalign.calibration.ood import ood_table
from distalign.calibration.paper_tables import not_public_line
from distalign.calibration.regression import CANDIDATES
from distalign.calibration.report import ReportOptions, paper_ood_tables, sweep_tables
from distalign.calibration.stage import apply_calibrator, calibrate_items
from distalign.cli.outputs import check_output
from distalign.cli.score import warnings_on_stderr
from distalign.errors import InputError
from distalign.records.config import UNPARSED_POLICIES, CalibrationConfig
from distalign.report.figures import (
    group_effects_figure,
    save_figure,
    spread_figure,
)
from distalign.report.leaderboard import leaderboard
from distalign.report.render import print_whole
from distalign.scoring.predictions import datasets_in, read_predictions
from distalign.scoring.score import score_predictions
from distalign.survey.model import DATASETS, Survey
from distalign.survey.registry import surveys_for
from distalign.tracking.calibrators import load_calibrator

PREDICTION_COLUMNS: tuple[str, ...] = (
    "model",
    "method",
    "steering",
    "dataset",
    "item_id",
    "attribute",
    "group",
)
CELL_KEYS: tuple[str, ...] = ("model", "dataset", "method", "steering")
PROTOCOLS: tuple[str, ...] = ("kambhatla2025",)

DESCRIPTION = """Calibrate the distributions of a predictions file against the human ones and report raw and
calibrated scores on the same rows: those no calibrator trained on (a regression's test split, a
temperature's held-out folds). --ood adds the out-of-domain table (train on the other datasets, test on
one), --curves the learning curves, and the extraction rate of every setting is always reported.
Progress is shown on stderr when it is a terminal."""

EXAMPLES = """examples:
  distalign calibrate preds.jsonl --method regression --out calibrated/
  distalign calibrate preds.jsonl --method regression --unparsed exclude   # the supervision paper's protocol
  distalign calibrate preds.jsonl --method temperature --fit in_sample     # the benchmark paper's protocol
  distalign calibrate preds.jsonl --method regression --curves all --out calibrated/
  distalign calibrate preds.jsonl --curves linear --out curves/   # the curves alone, one figure per dataset
  distalign calibrate preds.jsonl --ood --out ood/     # train on two datasets, test on the third
  distalign calibrate preds.jsonl --model-uri models:/m-0123abcd --tracking-uri sqlite:///mlflow.db"""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Examples kept as written, and every option's default shown."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="temperature or regression calibration of a predictions file",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=_HelpFormatter,
    )
    p.add_argument(
        "predictions", type=Path, help="predictions file (JSONL, CSV or Parquet; see distalign score)"
    )
    p.add_argument(
        "--method",
        choices=("temperature", "regression"),
        default=None,
        help="calibrator to fit (one of --method, --model-uri or --ood is needed)",
    )
    p.add_argument(
        "--fit",
        choices=("held_out", "in_sample"),
        default="held_out",
        help="temperature: cross-fit by question or fit on the evaluated rows",
    )
    p.add_argument("--data-dir", default=None, help="release root folder; unset: $DISTALIGN_DATA_DIR")
    p.add_argument(
        "--survey", type=Path, action="append", default=[], help="a custom survey file (repeatable)"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for calibrated predictions, scores, extraction rates, curves and the out-of-domain "
        "table; unset: nothing is written but --ood's table, which goes to the current folder",
    )
    p.add_argument(
        "--json", type=Path, default=None, help="write the raw + calibrated score rows as JSON here"
    )
    p.add_argument(
        "--model-uri", default=None, help="apply this logged calibrator (models:/...) instead of fitting"
    )
    p.add_argument("--tracking-uri", default=None, help="MLflow tracking URI for --model-uri")
    p.add_argument(
        "--unparsed",
        choices=UNPARSED_POLICIES,
        default=None,
        help="how unparsed answers score: 'uniform' (the default, said when it happens) or 'exclude' "
        "(discarded: the supervision paper's protocol, --protocol kambhatla2025)",
    )
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default=None,
        help="kambhatla2025: the supervision paper's protocol (regression calibration; unparseable answers "
        "discarded, never filled in with a uniform distribution); sets --method and --unparsed",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="rows with no human distribution, repeated rows and probabilities with no mass are errors "
        "(default: skipped / counted once / unparsed, with a warning, as distalign score does)",
    )
    p.add_argument(
        "--ood",
        action="store_true",
        help="out-of-domain table: per setting, a regression calibrator trained on the other datasets, "
        "scored on each dataset's test split beside the in-domain one (needs 2+ datasets)",
    )
    p.add_argument(
        "--curves",
        nargs="+",
        default=None,
        metavar="FAMILY",
        help="learning curves (regression): 'chosen' (the family the dev split chose), 'all', or any of "
        f"{', '.join(CANDIDATES)}; written to --out; without --method only the curves are computed",
    )
    p.add_argument("--seed", type=int, default=0, help="split, sampling and bootstrap seed")
    p.add_argument("--n-resamples", type=int, default=1000, help="bootstrap resamples")
    p.set_defaults(func=cmd_calibrate)


@contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str], None]]:
    """``step(text)`` shows what is being done on stderr (a spinner and the elapsed time), or nothing."""
    if not enabled:
        yield lambda _text: None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(file=sys.stderr)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("starting", total=None)
        yield lambda text: bar.update(task, description=text, refresh=True)


def items_from_scored(scored: pd.DataFrame, surveys: dict[str, Survey]) -> pd.DataFrame:
    """``score_predictions`` output as an items table: probs columns renamed, ordinal positions added."""
    items = scored.rename(columns={"pred": "pred_probs", "human": "human_probs"})
    items["ordinal"] = [
        list(surveys[d].items[i].ordinal) for d, i in zip(items["dataset"], items["item_id"], strict=True)
    ]
    return items


def _rows(
    items: pd.DataFrame, label: str, split: str, order: list[str], args: argparse.Namespace
) -> list[dict[str, Any]]:
    rows = leaderboard(items, order, n_resamples=args.n_resamples, seed=args.seed)
    return [{**r, "calibration": label, "split": split} for r in rows]


def _clean(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()} for r in rows]


def _write_json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")


def _write_table(folder: Path, name: str, table: pd.DataFrame) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / f"{name}.csv", index=False)
    _write_json(folder / f"{name}.json", _clean(table.to_dict(orient="records")))
    return [f"{name}.csv", f"{name}.json"]


def _apply_protocol(args: argparse.Namespace) -> None:
    """``--protocol kambhatla2025``: regression calibration with unparseable answers discarded."""
    if args.protocol == "kambhatla2025":
        if args.method not in (None, "regression") or args.unparsed not in (None, "exclude"):
            raise InputError(
                "the kambhatla2025 protocol is regression calibration with unparsed answers excluded",
                where="--protocol",
            )
        if args.model_uri is None:
            args.method = "regression"
        args.unparsed = "exclude"
    args.unparsed = args.unparsed or "uniform"


def _check_args(args: argparse.Namespace) -> tuple[str, ...]:
    """Argument errors before any file is read; returns the curve families asked for."""
    _apply_protocol(args)
    if args.method is not None and args.model_uri is not None:
        raise InputError(
            "give exactly one of --method (fit a calibrator) or --model-uri (apply one)", where="--method"
        )
    if args.method is None and args.model_uri is None and not args.ood and not args.curves:
        raise InputError(
            "give exactly one of --method (fit a calibrator) or --model-uri (apply one), or --ood or "
            "--curves",
            where="--method",
        )
    check_output(args.out, "--out", folder=True)
    check_output(args.json, "--json")
    if not args.curves:
        return ()
    if args.method not in (None, "regression") or args.model_uri is not None:
        raise InputError("learning curves are those of regression calibration", where="--curves")
    if args.out is None:
        raise InputError("learning curves are written to a folder: give --out", where="--curves")
    return curve_families(args.curves)


def cmd_calibrate(args: argparse.Namespace) -> int:
    families = _check_args(args)
    with warnings_on_stderr("calibrate"), _progress(sys.stderr.isatty()) as step:
        step(f"reading {args.predictions}")
        df = read_predictions(args.predictions)
        surveys = surveys_for(datasets_in(df, args.predictions), args.data_dir, args.survey)
        step(f"scoring {len(df):,} predictions")
        scored = score_predictions(
            df, surveys, unparsed=args.unparsed, source=args.predictions, strict=args.strict, unique=True
        )
        items = items_from_scored(scored, surveys)
        rates = extraction_table(items)
        _say_unparsed(items, args)
        written: list[str] = []
        if args.method is not None or args.model_uri is not None:
            written += _calibrate(args, items, surveys, rates, step)
        if families:
            written += _curves(args, items, families, step)
        if args.ood:
            step("out-of-domain calibration")
            table = ood_table(items, seed=args.seed)
            _print_ood(table)
            folder = args.out if args.out is not None else Path(".")
            written += [str(folder / f) for f in _write_table(folder, "out_of_domain", table)]
            for name, paper in paper_ood_tables(table).items():  # Tables 11 and 12
                written += [str(folder / f) for f in _write_table(folder, name, paper)]
        _say_not_public(items, written)
    for folder, names in _by_folder(list(dict.fromkeys(written))).items():
        Console().print(f"wrote {folder}/: {', '.join(names)}")
    return 0


def _say_unparsed(items: pd.DataFrame, args: argparse.Namespace) -> None:
    """One line on stderr on what happened to unparseable answers, when there were any."""
    bad = int((items["status"] == "unparsed").sum()) if "status" in items.columns else 0
    if not bad:
        return
    how = (
        "discarded (not scored, never trained on; counted in the extraction rates)"
        if args.unparsed == "exclude"
        else "scored as uniform distributions (--unparsed exclude or --protocol kambhatla2025 discards them)"
    )
    protocol = f" under the {args.protocol} protocol" if args.protocol else ""
    print(f"calibrate: {bad:,} unparseable answer row(s) {how}{protocol}", file=sys.stderr)


#: files holding the paper's tables whose WGM / WVS columns need surveys that are not public
PAPER_LAYOUT_FILES = ("logp_alignment.csv", "out_of_domain_methods.csv", "out_of_domain_logp.csv")


def _say_not_public(items: pd.DataFrame, written: list[str]) -> None:
    """One line when a table in the paper's layout was written without the paper's WGM / WVS columns."""
    line = not_public_line(items["dataset"].astype(str).unique())
    names = sorted(Path(p).name for p in written if Path(p).name in PAPER_LAYOUT_FILES)
    if line and names:
        print(f"calibrate: {', '.join(names)}: {line}", file=sys.stderr)


def _by_folder(paths: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in map(Path, paths):
        out.setdefault(str(p.parent), []).append(p.name)
    return out


def _calibrate(
    args: argparse.Namespace,
    items: pd.DataFrame,
    surveys: dict[str, Survey],
    rates: pd.DataFrame,
    step: Callable[[str], None],
) -> list[str]:
    if args.model_uri:
        step("loading the calibrator")
        try:
            model = load_calibrator(args.model_uri, args.tracking_uri)
        except Exception as exc:  # MLflow raises many types for a bad URI or store
            raise InputError(
                f"cannot load calibrator: {str(exc).splitlines()[0]}", where="--model-uri"
            ) from None
        step("applying the calibrator")
        outcome = apply_calibrator(items, model)
        label = outcome.params["calibration"]
    else:
        cells = len(cell_groups(items))
        done = iter(range(1, cells + 1))
        step(f"calibrating ({args.method}): 0 of {cells} cells done")
        outcome = calibrate_items(
            items,
            CalibrationConfig(name=args.method, fit=args.fit),
            seed=args.seed,
            on_cell=lambda key: step(
                f"calibrating ({args.method}): {next(done)} of {cells} cells done ({key})"
            ),
        )
        label = args.method
    # evaluation rows, discarded answers included: they leave the means but count in the extraction rate
    ev = outcome.items[is_evaluated(outcome.items["split"])]
    split = split_label(outcome.items["split"], question_keys(outcome.items))
    order = [d for d in DATASETS if d in surveys] + [d for d in surveys if d not in DATASETS]
    step(f"bootstrapping intervals ({args.n_resamples} resamples)")
    raw = _rows(ev, "none", split, order, args)
    cal = _rows(
        ev.assign(tv=ev["calibrated_tv"], alignment=ev["calibrated_alignment"]), label, split, order, args
    )
    rows = _clean(raw + cal)
    _print(rows, outcome.metrics, rates)
    written = []
    if args.json is not None:
        _write_json(args.json, rows)
        written.append(str(args.json))
    if args.out is not None:
        summary = outcome.metrics | {"calibration": label, **outcome.params}
        written += [str(args.out / f) for f in _write_outputs(args.out, ev, rows, summary, rates)]
        if label == "regression":
            step("significance tests, group effects, spread")
            # Table 5 refits 10 draws of 5 training distributions per cell: the protocol's output only
            few = args.protocol == "kambhatla2025"
            written += _analyses(args.out, outcome.items.assign(calibration=label), args.seed, few)
    return written


def _analyses(out: Path, items: pd.DataFrame, seed: int, few_examples: bool) -> list[str]:
    """What the sweep report computes over calibrated cells (``sweep_tables`` without the learning
    curves, which are --curves): the raw-vs-calibrated table with paired tests, Table 6 (log-p cells),
    Tables 2/4 (triples) and the method comparison, per-group effects, Table 5 (5 examples vs the full
    train split, 10 draws; with ``few_examples``), and Figure 2 (spread) with its table."""
    options = ReportOptions(curves=False, few_examples=few_examples)
    tables = sweep_tables(items, seed=seed, options=options)
    names = []
    for name, table in tables.items():
        names += _write_table(out, name, table)
    if "spread" in tables:
        save_figure(spread_figure(tables["spread"]), out / "spread.png")
        names.append("spread.png")
    if "group_effects" in tables:
        save_figure(group_effects_figure(tables["group_effects"]), out / "group_effects.png")
        names.append("group_effects.png")
    return [str(out / n) for n in names]


def _curves(
    args: argparse.Namespace, items: pd.DataFrame, families: tuple[str, ...], step: Callable[[str], None]
) -> list[str]:
    """Every cell's learning curves in one table, drawn as one figure per dataset (panels per method and
    prompt type, like the paper's Figure 3)."""
    curves = []
    for key, rows in cell_groups(items, CELL_KEYS):
        step(f"learning curves ({', '.join(families)}): {key}")
        curve = learning_curve(items.iloc[rows], seed=args.seed, families=families or (CHOSEN,))
        cols = [c for c in CELL_KEYS if c in items.columns]
        curves.append(curve.assign(**{c: str(items[c].iat[rows[0]]) for c in cols}))
    table = pd.concat(curves, ignore_index=True)
    files = []
    for dataset in sorted(table["dataset"].astype(str).unique()):
        step(f"drawing the learning curves of {dataset}")
        png = args.out / f"learning_curves_{dataset}.png"
        save_figure(dataset_curves_figure(table, dataset), png)
        files.append(str(png))
    return files + [str(args.out / f) for f in _write_table(args.out, "learning_curves", table)]


def _write_outputs(
    out: Path, ev: pd.DataFrame, rows: list[dict[str, Any]], summary: dict[str, Any], rates: pd.DataFrame
) -> list[str]:
    """Calibrated predictions (schema of ``distalign score``, evaluation rows with a distribution), scores,
    metrics and extraction rates."""
    out.mkdir(parents=True, exist_ok=True)
    kept = ev[ev["calibrated_probs"].notna()]
    preds = kept[list(PREDICTION_COLUMNS)].assign(
        probs=[[round(float(x), 8) for x in p] for p in kept["calibrated_probs"]],
        calibration=summary["calibration"],
        split=kept["split"].to_numpy(),
    )
    preds.to_json(out / "predictions_calibrated.jsonl", orient="records", lines=True, force_ascii=False)
    _write_json(out / "scores.json", rows)
    pd.DataFrame(rows).to_csv(out / "scores.csv", index=False)
    _write_json(out / "metrics.json", _clean([summary])[0])
    names = ["predictions_calibrated.jsonl", "scores.json", "scores.csv", "metrics.json"]
    return names + _write_table(out, "extraction_rates", rates)


def _fmt(v: Any, digits: int = 3) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _print(rows: list[dict[str, Any]], metrics: dict[str, Any], rates: pd.DataFrame) -> None:
    split = rows[0]["split"] if rows else "test"
    table = Table(
        title=f"Raw vs calibrated TV on the same rows: {split}", box=box.SIMPLE_HEAD, pad_edge=False
    )
    labels = [c for c in ("calibration", "model", "method", "steering", "dataset") if c != "model" or
              len({r.get("model") for r in rows}) > 1]  # fmt: skip
    for c in labels:
        table.add_column("calib." if c == "calibration" else c)
    table.add_column("TV ± 95% CI", no_wrap=True, justify="right")
    table.add_column("n", justify="right")
    table.add_column("extr.", justify="right")
    for r in rows:
        tv = "-" if r["mean"] is None else f"{r['mean']:.3f} ± {(r['ci_high'] - r['ci_low']) / 2:.3f}"
        names = ["raw" if c == "calibration" and r[c] == "none" else str(r.get(c)) for c in labels]
        table.add_row(*names, tv, str(r["n"]), _fmt(r.get("extraction_rate")))
    console = Console()
    print_whole(console, table)  # piped: at its natural width, no name cut to "anthro…"
    shown = {k: v for k, v in metrics.items() if k in ("ece_before", "ece_after", "temperature", "dev_score")}
    if shown:
        console.print(", ".join(f"{k} {v:.4f}" for k, v in shown.items()))
    if (rates["extraction_rate"] < 1).any():
        worst = rates.sort_values("extraction_rate").iloc[0]
        console.print(
            f"extraction rate (all answers): lowest {worst['extraction_rate']:.3f} in "
            + "/".join(str(worst[c]) for c in CELL_KEYS if c in rates.columns)
        )


def _print_ood(table: pd.DataFrame) -> None:
    """Alignment before and after, on each target's test split (named in the title when it is one)."""
    splits = sorted({str(x).split(" ", 1)[1] for x in table["split"]})
    where = f"each target's {splits[0]}" if len(splits) == 1 else "each target's test split"
    t = Table(
        title=f"Out of domain: alignment on {where}",
        caption="ood: trained on the other datasets",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    cols = [c for c in ("model", "method", "steering", "target") if c in table.columns]
    cols += [] if len(splits) == 1 else ["split"]
    for c in (*cols, "n", "raw", "in-domain", "ood"):
        t.add_column(c, justify="right" if c in ("n", "raw", "in-domain", "ood") else "left")
    for r in table.to_dict(orient="records"):
        t.add_row(
            *(str(r[c]) for c in cols),
            str(r["n"]),
            *(_fmt(r[f"alignment_{k}"]) for k in ("raw", "in_domain", "ood")),
        )
    print_whole(Console(), t)

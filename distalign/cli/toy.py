"""``distalign toy``: run the biased-coin problem on a model and write its calibration curves."""

from __future__ import annotations

import argparse
from pathlib import Path

from distalign.cli.helptext import add_command
from distalign.cli.outputs import check_output
from distalign.engines.registry import DEFAULT_ENGINE, builtin_engines, make_engine
from distalign.errors import InputError
from distalign.methods.toy import calibration_table, coin_problems, run_toy, toy_methods, write_toy_outputs
from distalign.prompts.presets import load_templates
from distalign.records.config import ModelConfig, ServingConfig
from distalign.survey.paths import data_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_command(
        subparsers,
        "toy",
        "biased-coin toy problem: calibration of log-probs, sequence and verbalized answers",
        (
            "distalign toy --out toy/",
            "distalign toy --engine instant --out toy-smoke/",
            "distalign toy --engine litellm --weights openai/gpt-4o-mini --out toy-gpt/",
        ),
    )
    p.add_argument(
        "--engine",
        default=DEFAULT_ENGINE,
        help=f"engine backend: {' | '.join(builtin_engines())} or a module's dotted path "
        f"(default: {DEFAULT_ENGINE})",
    )
    p.add_argument("--weights", default="default", help="model weights (default: the packaged SmolLM2-135M)")
    p.add_argument("--model-name", default=None, help="model name for the record (default: from --weights)")
    p.add_argument("--out", required=True, help="folder for toy_results.csv, toy_calibration.csv/.png")
    p.add_argument(
        "--data-dir",
        default=None,
        help="benchmark release root; its biased-coin wording (toy_problems/) is used when present "
        "(default: the packaged wording)",
    )
    p.add_argument("--seq-len", type=int, default=30, help="flips per sequence (default: 30)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    p.add_argument(
        "--templates",
        default=None,
        help="a YAML file of prompt templates replacing the packaged ones (default: the packaged ones)",
    )
    p.set_defaults(func=cmd_toy)


def cmd_toy(args: argparse.Namespace) -> int:
    # validate everything cheap before loading a model
    if args.seq_len < 1:
        raise InputError("must be >= 1", where="--seq-len")
    check_output(Path(args.out), "--out", folder=True)
    templates = load_templates(args.templates)
    root = data_dir(args.data_dir)
    problems = coin_problems(root)
    methods = toy_methods(args.seq_len, args.seed)
    name = args.model_name or ("smollm2-135m-instruct" if args.weights == "default" else args.weights)
    engine = make_engine(
        ModelConfig(name=name, weights=args.weights, serving=ServingConfig(engine=args.engine))
    )
    results = run_toy(engine, problems, methods, args.seq_len, templates)
    paths = write_toy_outputs(results, args.out)
    print(calibration_table(results).round(3).to_string())
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0

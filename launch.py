"""Run a grid of cells: ``python launch.py -m model=smollm2_135m method=seq,verbalize steering=none,persona``.

Hydra composes every cell from conf/; the distalign launcher runs them together on Ray (shared engine pools,
de-duplicated requests), logs each cell as an MLflow child run and prints the leaderboard. Without ``-m`` one
cell runs the same way.
"""

from __future__ import annotations

import re
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _stopped() -> NoReturn:
    """Ctrl-C or SIGTERM before the sweep started (imports, composition, validation): nothing ran yet."""
    print("distalign: interrupted before the sweep started; nothing was run", file=sys.stderr)
    sys.exit(130)


# SIGTERM (a scheduler, `kill`) stops a launch the way Ctrl-C does, from its first line on
signal.signal(signal.SIGTERM, _interrupt)
try:
    from distalign.cli.collector import tune_for_a_command

    tune_for_a_command()  # before the thousands of imports it is for
    import hydra
    from omegaconf import DictConfig

    from distalign.engines.registry import register_configs

    register_configs()
except KeyboardInterrupt:
    _stopped()


_MULTIRUN = ("-m", "--multirun")


def _flag(argv: list[str], *names: str) -> bool:
    return any(a in names or a.startswith(tuple(f"{n}=" for n in names if n.startswith("--"))) for a in argv)


def _show_only(argv: list[str]) -> list[str]:
    """``--info`` shows what a launch would use and runs nothing, so with ``-m`` it shows the same (Hydra
    itself refuses the pair); ``--cfg`` shows ONE cell's config, so ``-m`` there is a clear error."""
    if not _flag(argv, *_MULTIRUN):
        return argv
    if _flag(argv, "--info", "-i"):
        return [a for a in argv if a not in _MULTIRUN]
    if _flag(argv, "--cfg", "-c", "--shell-completion", "-sc"):
        print(
            "distalign: --cfg shows the config of one cell: leave out -m and give one value per key "
            "(e.g. method=seq, not method=seq,verbalize)",
            file=sys.stderr,
        )
        sys.exit(2)
    return argv


EXAMPLES = (
    ("one cell of the default model (CPU)", "launch.py"),
    ("a grid", "launch.py -m model=smollm2_135m method=seq,verbalize steering=none,persona"),
    ("seconds, no model: the plumbing", "launch.py -m experiment=smoke"),
    (
        "the plan and its cost, nothing called",
        "launch.py -m experiment=demo sweep.dry_run=true",
    ),
    ("the shipped invented sample", "launch.py -m experiment=demo model=instant dataset.data_dir=fixture"),
    ("one cell's composed config", "launch.py model=gpt4 method=seq --cfg job"),
)


def _experiments() -> list[tuple[str, str]]:
    """Each experiment of conf/experiment with the first line of its comment."""
    out = []
    for path in sorted((Path(__file__).parent / "conf" / "experiment").glob("*.yaml")):
        comments = [
            ln.lstrip("# ").strip()
            for ln in path.read_text(encoding="utf-8").splitlines()
            if ln.startswith("#") and "@package" not in ln
        ]
        first = re.split(r"(?<!al)\.\s", " ".join(comments))[0] if comments else ""
        out.append((path.stem, first if len(first) <= 110 else first[:109] + "…"))
    return out


def _help_tail() -> str:
    width = max(len(d) for d, _ in EXAMPLES)
    lines = ["", "== Examples ==", *(f"  {d:<{width}}  python {c}" for d, c in EXAMPLES), ""]
    lines.append("== Experiments == (experiment=NAME: a whole grid; add -m)")
    exps = _experiments()
    name_w = max((len(n) for n, _ in exps), default=0)
    lines += [f"  {n:<{name_w}}  {d}" for n, d in exps]
    lines += [
        "",
        "Exit status: 0 done, 1 some cell failed (summary at the end), 2 bad input, 75 the sweep is running "
        "elsewhere, 130 interrupted.",
    ]
    return "\n".join(lines)


def _refuse_pasted_keys(argv: list[str]) -> None:
    """A key given where its variable's NAME belongs is refused before Hydra writes it into output folder
    names and YAML files (a key set in a config file is refused by validation, after Hydra saved it)."""
    from distalign.engines.secrets import key_refusal, looks_like_key

    for arg in argv:
        option, sep, value = arg.lstrip("+~").partition("=")
        if (
            sep
            and option.split(".")[-1] == "api_key_env"
            and any(looks_like_key(v) for v in value.split(","))
        ):
            print(f"distalign: {key_refusal(option)}", file=sys.stderr)
            sys.exit(2)


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> object:
    from distalign.sweep import orchestrate

    return orchestrate.task(cfg)


if __name__ == "__main__":
    _refuse_pasted_keys(sys.argv[1:])
    sys.argv[1:] = _show_only(sys.argv[1:])
    if _flag(sys.argv[1:], "--help", "-h"):
        try:
            main()
        finally:  # after Hydra's groups and config, where a reader looks first
            print(_help_tail())
    try:
        main()
        from distalign.sweep import orchestrate
    except KeyboardInterrupt:
        _stopped()
    sys.exit(orchestrate.exit_code())

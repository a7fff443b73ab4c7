"""Run a grid of cells: ``python launch.py -m model=smollm2_135m method=seq,verbalize steering=none,persona``.

Hydra composes every cell from conf/; the distalign launcher runs them together on Ray (shared engine pools,
de-duplicated requests), logs each cell as an MLflow child run and prints the leaderboard. Without ``-m`` one
cell runs the same way.
"""

from __future__ import annotations

import signal
import sys
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


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> object:
    from distalign.sweep import orchestrate

    return orchestrate.task(cfg)


if __name__ == "__main__":
    sys.argv[1:] = _show_only(sys.argv[1:])
    try:
        main()
        from distalign.sweep import orchestrate
    except KeyboardInterrupt:
        _stopped()
    sys.exit(orchestrate.exit_code())

"""Run a grid of cells: ``python launch.py -m model=smollm2_135m method=seq,verbalize steering=none,persona``.

Hydra composes every cell from conf/; the distalign launcher runs them together on Ray (shared engine pools,
de-duplicated requests), logs each cell as an MLflow child run and prints the leaderboard. Without ``-m`` one
cell runs the same way.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from distalign.records.config import register_configs

register_configs()


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> object:
    from distalign.sweep import orchestrate

    return orchestrate.task(cfg)


if __name__ == "__main__":
    main()
    from distalign.sweep import orchestrate

    sys.exit(orchestrate.exit_code())

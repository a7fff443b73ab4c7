"""A Hydra launcher that receives the whole grid at once and runs it as ONE sweep on Ray.

Hydra's basic launcher runs jobs one after another and the (unmaintained) Ray launcher runs each job as an
isolated Ray task: both would load a model once per cell. Here every job is first composed and saved by Hydra
as usual (``.hydra/`` per job), but the task function only returns the job's typed cell; the launcher then
plans all cells together (shared engine pools, de-duplicated requests) and fills each job's return value with
its cell's metrics. A failed cell is reported as data so it never aborts the other cells.
"""

# No `from __future__ import annotations`: Hydra executes plugin modules before registering them in
# sys.modules, and dataclasses cannot resolve string annotations then.

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

log = logging.getLogger(__name__)


@dataclass
class DistalignLauncherConf:
    _target_: str = "hydra_plugins.distalign_launcher.distalign_launcher.DistalignLauncher"


ConfigStore.instance().store(group="hydra/launcher", name="distalign_ray", node=DistalignLauncherConf)


class DistalignLauncher(Launcher):
    def __init__(self) -> None:
        super().__init__()
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        from distalign.sweep import orchestrate

        setup_globals()
        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info("Composing %d cells", len(job_overrides))
        returns: list[JobReturn] = []
        with orchestrate.collecting():
            for idx, overrides in enumerate(job_overrides):
                idx = initial_job_idx + idx
                log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
                sweep_config = self.hydra_context.config_loader.load_sweep_config(
                    self.config, list(overrides)
                )
                with open_dict(sweep_config):
                    sweep_config.hydra.job.id = idx
                    sweep_config.hydra.job.num = idx
                ret = run_job(
                    hydra_context=self.hydra_context,
                    task_function=self.task_function,
                    config=sweep_config,
                    job_dir_key="hydra.sweep.dir",
                    job_subdir_key="hydra.sweep.subdir",
                )
                if ret.status != JobStatus.COMPLETED:
                    # A config that does not compose or validate stops the sweep before anything runs.
                    raise ret._return_value
                returns.append(ret)
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        cells = [r._return_value for r in returns]
        outcome = orchestrate.run(cells)
        for ret, cell in zip(returns, cells, strict=True):
            ret.return_value = outcome.summary_for(cell)
            ret.status = JobStatus.COMPLETED
        return returns

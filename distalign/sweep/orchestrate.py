"""From composed cells to a sweep: validate, then print the plan (a dry run) or hand the cells to
:mod:`distalign.sweep.execute`, which runs them, tracks them and prints the leaderboard.

Shared by the Hydra launcher (a whole grid) and a plain ``python launch.py`` (one cell), so both paths
behave identically.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from distalign.errors import InputError
from distalign.records.config import CellConfig, SweepSettings, to_cell
from distalign.sweep.dryrun import describe
from distalign.sweep.outcome import Outcome, fail
from distalign.sweep.plan import summarize
from distalign.sweep.validate import Validated, check_serving, check_settings, validate_cells

__all__ = ["LAUNCH", "Launch", "Outcome", "collecting", "exit_code", "run", "task"]


@dataclass
class Launch:
    """One process's launch: whether the task function only composes cells (the Hydra launcher then runs
    them all), and the outcome of the last sweep it ran (for the exit status)."""

    composing: bool = False
    last: Outcome | None = None

    @contextlib.contextmanager
    def collecting(self) -> Iterator[None]:
        self.composing = True
        try:
            yield
        finally:
            self.composing = False

    def exit_code(self) -> int:
        """1 after a sweep in which some cell failed (all other cells still ran and were logged)."""
        return 1 if self.last is not None and self.last.failed else 0


#: Hydra calls the task function with the config alone, so the launch it belongs to is the process's
LAUNCH = Launch()


def collecting() -> contextlib.AbstractContextManager[None]:
    """While active, the task function only composes and returns its cell (the launcher runs them all)."""
    return LAUNCH.collecting()


def task(cfg: DictConfig) -> Any:
    try:
        cell = to_cell(cfg)
    except InputError as exc:
        raise fail(f"configuration error: {exc}") from None
    if LAUNCH.composing:
        return cell
    return run([cell]).summary_for(cell)


def exit_code() -> int:
    return LAUNCH.exit_code()


def _settings(cells: Sequence[CellConfig]) -> SweepSettings:
    settings = cells[0].sweep
    for c in cells[1:]:
        if c.sweep != settings:
            key = next(k for k in vars(settings) if getattr(c.sweep, k) != getattr(settings, k))
            raise InputError(
                f"all cells of one sweep must share sweep.{key} "
                f"({getattr(settings, key)!r} vs {getattr(c.sweep, key)!r})"
            )
    return settings


def run(cells: Sequence[CellConfig]) -> Outcome:
    try:
        settings = _settings(cells)
        if settings.dry_run:
            outcome = _dry_run(*_validate_dry(cells, settings), n_cells=len(cells))
        else:
            validated = validate_cells(cells, unsupported=settings.unsupported)
    except InputError as exc:
        raise fail(f"configuration error: {exc}") from None
    if not settings.dry_run:
        for line in validated.unsupported_lines():
            print(line)
        # imported here: only a real run loads MLflow, Ray and the report's libraries (see execute)
        from distalign.sweep.execute import run_validated

        outcome = run_validated(validated, settings)
    LAUNCH.last = outcome
    return outcome


def _validate_dry(
    cells: Sequence[CellConfig], settings: SweepSettings
) -> tuple[Validated, InputError | None]:
    """The cells a dry run can plan, and the first error the real run would stop at (missing data ...):
    the plan of the other cells is still printed before that error ends the dry run."""
    try:
        return validate_cells(cells, require_keys=False, unsupported=settings.unsupported), None
    except InputError as exc:
        error = exc
    check_settings(settings)  # a bad sweep setting concerns every cell: nothing to plan
    good = []
    for cell in cells:
        with contextlib.suppress(InputError):
            validate_cells([cell], require_keys=False, unsupported=settings.unsupported)
            good.append(cell)
    if not good:
        raise error
    return validate_cells(good, require_keys=False, unsupported=settings.unsupported), error


def _dry_run(validated: Validated, error: InputError | None = None, n_cells: int = 0) -> Outcome:
    for line in validated.unsupported_lines():
        print(line)
    summary = summarize(validated.cells)
    print(describe(summary))
    if error is not None:
        print(f"(the plan above covers {len(validated.cells)} of {n_cells} cells; the real run stops at:)")
        raise error
    # what the real run would refuse before its first request (keys) fails here too, after the plan
    try:
        for model in {c.config.model.name: c.config.model for c in validated.cells}.values():
            check_serving(model, require_keys=True)
    except InputError as exc:
        raise fail(f"configuration error: {exc}") from None
    if summary.failed:
        raise fail(f"{len(summary.failed)} cell(s) could not be planned (see above)", 1)
    return Outcome(summaries={c.spec_hash: {"status": "planned"} for c in validated.cells})

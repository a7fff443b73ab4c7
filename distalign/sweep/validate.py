"""Every check a sweep can make before it reserves a GPU, starts an actor or calls a model.

A bad grid fails here, in seconds, with a message naming the model, the method, the key or the file and
saying how to fix it, instead of half-way through an expensive run. The checks resolve each cell (its
dataset and templates are read once), so what passes here can be planned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from distalign.engines.registry import check_serving as check_engine_serving
from distalign.engines.registry import engine_capabilities, engine_settings
from distalign.engines.secrets import key_refusal, looks_like_key
from distalign.engines.weights import check_weights
from distalign.errors import InputError
from distalign.methods.base import Method
from distalign.prompts.render import STEERINGS, RenderedPrompt
from distalign.records.config import UNPARSED_POLICIES, CellConfig, ModelConfig, SweepSettings
from distalign.records.engine import (
    Capabilities,
    CapabilityError,
    GenerateRequest,
    Message,
    OptionLogprobRequest,
)
from distalign.sweep.cells import CALIBRATIONS, Cell, cell_method, resolve

_PROBE_LETTERS = ("A", "B", "C")
_PROBE_LABELS = ("Yes", "No", "Refused")
UNSUPPORTED_POLICIES = ("skip", "error")


@dataclass
class Validated:
    """The resolved cells to run, and the cells skipped because their model cannot serve their method."""

    cells: list[Cell] = field(default_factory=list)
    #: (cell config, why its model cannot serve its method)
    unsupported: list[tuple[CellConfig, str]] = field(default_factory=list)

    def unsupported_lines(self) -> list[str]:
        """One line per model: which of its methods are skipped and why (the paper's empty cells)."""
        by_model: dict[str, dict[str, str]] = {}
        for cell, why in self.unsupported:
            by_model.setdefault(cell.model.name, {})[cell.method.name] = why
        lines = []
        for model, methods in by_model.items():
            n = sum(1 for c, _ in self.unsupported if c.model.name == model)
            reasons = "; ".join(f"{m}: {why}" for m, why in methods.items())
            lines.append(f"skipped {n} cell(s) of model {model!r} it cannot serve ({reasons})")
        return lines


def _probe_prompt() -> RenderedPrompt:
    """A tiny rendered prompt to ask a method which requests it would make."""
    text = "Question?\n" + "\n".join(f"{a}. {b}" for a, b in zip(_PROBE_LETTERS, _PROBE_LABELS, strict=True))
    messages = (Message("user", text),)
    return RenderedPrompt(
        messages=messages,
        assistant_prefix="Answer:",
        letters=_PROBE_LETTERS,
        labels=_PROBE_LABELS,
        variants=(messages,) * 5,  # the paraphrase method asks one request per framing
    )


def _missing_capability(method: Method, caps: Capabilities) -> str | None:
    try:
        requests = method.requests(_probe_prompt(), capabilities=caps)
    except CapabilityError as exc:
        return str(exc)
    for r in requests:
        if isinstance(r, OptionLogprobRequest) and not caps.option_logprobs:
            return "it returns no option log-probabilities"
        if isinstance(r, GenerateRequest):
            if not caps.generate:
                return "it cannot generate text"
            if r.params.n > 1 and not caps.n_samples:
                return f"it cannot return {r.params.n} samples per request"
            if r.params.allowed and not caps.allowed_tokens:
                return "it cannot restrict generation to the option letters"
    return None


def _unsupported_error(cell: CellConfig, why: str) -> InputError:
    model, name = cell.model, cell.method.name
    others = "seq or verbalize" if name in ("logprobs", "logp") else "another method"
    return InputError(
        f"model {model.name!r} ({model.serving.engine}: {model.weights}) cannot serve method {name!r}: "
        f"{why}. Use method={others} for this model, serve a model that can (a local engine), set "
        f"sweep.unsupported=skip to leave such cells empty, or, if the provider does support it, set "
        f"model.serving.capabilities in the model's config",
        where=f"model={model.name} method={name}",
    )


def check_serving(model: ModelConfig, require_keys: bool = True) -> None:
    """The engine's own checks (through the registry), then what holds for every engine: no key pasted
    where a variable name belongs, and local weights that exist (seconds here, where an engine actor would
    retry the hub for a minute)."""
    key_env = getattr(engine_settings(model), "api_key_env", None)
    if key_env and looks_like_key(key_env):  # from a config file: argv is checked in launch.py
        raise InputError(key_refusal(f"model {model.name!r}: serving.api_key_env"))
    check_engine_serving(model, require_keys)
    if require_keys:
        check_weights(model)


def _check_models_consistent(cells: Sequence[CellConfig]) -> None:
    """One name, one model: a pool is shared by name, so two definitions under one name are an error."""
    seen: dict[str, ModelConfig] = {}
    for cell in cells:
        m = cell.model
        first = seen.setdefault(m.name, m)
        if first != m:
            raise InputError(
                "two different model configs share this name; give each its own model name",
                where=f"model {m.name!r}",
            )


def _check_steering(cell: CellConfig) -> None:
    s = cell.steering
    allowed = STEERINGS.get(s.protocol)
    if allowed is None:
        raise InputError(
            f"unknown protocol {s.protocol!r}; known: {', '.join(STEERINGS)}", where=f"steering {s.name!r}"
        )
    if s.steering not in allowed:
        raise InputError(
            f"unknown steering {s.steering!r} for protocol {s.protocol!r}; known: {', '.join(allowed)}",
            where=f"steering {s.name!r}",
        )
    if cell.calibration.name not in CALIBRATIONS:
        raise InputError(
            f"unknown calibration {cell.calibration.name!r}; known: {', '.join(CALIBRATIONS)}",
            where="calibration",
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: where a sweep's engines run (``sweep.engine_pool``)
EXECUTORS = ("ray", "inline")


def check_settings(settings: SweepSettings) -> None:
    """Every sweep setting a real run would use, checked before a dry run too: a value a run would only
    reject after sending requests (``n_resamples=-1`` fails when the first cell is scored) fails here."""

    def bad(key: str, reason: str) -> InputError:
        return InputError(f"{reason}, got {getattr(settings, key)!r}", where=f"sweep.{key}")

    for key in ("name", "experiment", "output_dir"):
        value = getattr(settings, key)
        if not isinstance(value, str) or not value.strip():
            raise bad(key, "must be a non-empty text")
    if not _is_int(settings.n_resamples) or settings.n_resamples < 1:
        raise bad("n_resamples", "must be a whole number of at least 1 (bootstrap resamples)")
    if not _is_int(settings.seed) or settings.seed < 0:
        raise bad("seed", "must be a whole number >= 0")
    if settings.unparsed not in UNPARSED_POLICIES:
        raise bad("unparsed", f"must be one of {', '.join(UNPARSED_POLICIES)}")
    if settings.unsupported not in UNSUPPORTED_POLICIES:
        raise bad("unsupported", f"must be one of {', '.join(UNSUPPORTED_POLICIES)}")
    if settings.num_cpus is not None and (not _is_int(settings.num_cpus) or settings.num_cpus < 1):
        raise bad("num_cpus", "must be a whole number of at least 1, or null (all of this machine's)")
    if settings.executor not in EXECUTORS:
        raise bad("executor", f"must be one of {', '.join(EXECUTORS)}")
    for key in ("dry_run", "progress", "batch_wait"):
        if not isinstance(getattr(settings, key), bool):
            raise bad(key, "must be true or false")


def validate_cells(
    cells: Sequence[CellConfig], require_keys: bool = True, unsupported: str = "error"
) -> Validated:
    """Raise ``InputError`` for the first problem found, else the resolved cells. A cell whose model
    cannot serve its method is an error, or skipped (``unsupported="skip"``) and listed. ``require_keys``
    False (dry runs, which call no model) skips the API-key check."""
    if not cells:
        raise InputError("the sweep has no cells")
    check_settings(cells[0].sweep)
    if unsupported not in UNSUPPORTED_POLICIES:
        raise InputError(
            f"unknown policy {unsupported!r} (known: {', '.join(UNSUPPORTED_POLICIES)})",
            where="sweep.unsupported",
        )
    _check_models_consistent(cells)
    capabilities: dict[str, Capabilities] = {}
    missing: dict[tuple[str, str], str | None] = {}
    out = Validated()
    for cell in cells:
        if cell.model.name not in capabilities:
            check_serving(cell.model, require_keys)
            capabilities[cell.model.name] = engine_capabilities(cell.model)
        _check_steering(cell)
        pair = (cell.model.name, cell.method.name)
        if pair not in missing:
            missing[pair] = _missing_capability(cell_method(cell), capabilities[cell.model.name])
        why = missing[pair]
        if why is not None:
            if unsupported == "error":
                raise _unsupported_error(cell, why)
            out.unsupported.append((cell, why))
            continue
        out.cells.append(resolve(cell))
    if not out.cells:
        raise InputError("every cell of the sweep was skipped: no model can serve its method")
    return out

"""Structured configs: the typed schema every Hydra group is validated against.

Model *identity* (what determines outputs) is kept apart from *serving* (how it runs), so moving a model
from a laptop to a GPU cluster never changes a cell's identity or its cached responses. Secrets never live
here: a config names the environment variable that holds a key, never the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from omegaconf import MISSING

from distalign.errors import InputError


@dataclass
class ServingConfig:
    engine: str = "hf"  # hf | vllm | litellm | instant
    device: str = "cpu"
    dtype: str = "float32"
    #: requests per batch the sweep sends to one of this model's actors (hf: also its forward-pass batch)
    batch_size: int = 16
    #: actors in this model's pool (vLLM: each reserves tensor_parallel_size GPUs)
    replicas: int = 1
    tensor_parallel_size: int = 1
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None
    #: extra Ray resources an engine actor needs (e.g. {"node:gpu-a": 1}) to pin it to nodes
    resources: dict[str, float] = field(default_factory=dict)
    # litellm
    api_base: str | None = None
    api_key_env: str | None = None  # name of the environment variable, never the key
    rpm: float | None = None
    tpm: float | None = None
    max_concurrency: int = 8
    max_retries: int = 4
    timeout_s: float = 60.0
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None
    #: explicit capability overrides, e.g. {"option_logprobs": false}
    capabilities: dict[str, bool] = field(default_factory=dict)
    #: litellm: sync (one call per request) | batch (the provider's batch API: half the price, within 24 h;
    #: OpenAI-compatible and Anthropic providers)
    mode: str = "sync"
    #: batch mode: seconds between polls of a provider batch
    batch_poll_s: float = 30.0
    #: batch mode: how often the lines of a batch that failed, expired or was cancelled are re-submitted
    batch_retries: int = 2


@dataclass
class ModelConfig:
    name: str = MISSING
    weights: str = MISSING  # HF id, local folder, "default" (the packaged SmolLM2) or a litellm model string
    revision: str = ""
    chat_template: str | None = None
    serving: ServingConfig = field(default_factory=ServingConfig)


@dataclass
class DatasetConfig:
    name: str = MISSING  # opinionqa | opinionqa_500 | nyt_books | global_opinions | custom
    #: release root; null -> $DISTALIGN_DATA_DIR or ~/.cache/distalign/data; "fixture" -> the shipped sample
    data_dir: str | None = None
    path: str | None = None  # custom datasets: the JSONL/CSV/Parquet file
    max_items: int | None = None  # a deterministic sample of the first N items (smoke runs)
    groups: list[str] | None = None  # restrict to these groups (e.g. [Democrat, Republican])


@dataclass
class SteeringConfig:
    name: str = MISSING  # none | persona | few_shot | base | sd (+ variants)
    protocol: str = "benchmark"  # benchmark | supervision
    steering: str = "persona"
    few_shot: bool = False
    cot: bool = False
    n_examples: int = 5
    templates: str | None = None  # a user YAML of prompt templates overriding the packaged ones


@dataclass
class MethodConfig:
    name: str = MISSING  # logprobs | seq | verbalize | self_random | paraphrase | verbalize_then_sample
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class CalibrationConfig:
    name: str = "none"  # none | temperature | regression
    fit: str = "held_out"  # held_out | in_sample (temperature scaling, for reproduction)
    params: dict[str, Any] = field(default_factory=dict)
    #: the sweep's calibration report adds the out-of-domain table (train on the other datasets, test on one)
    ood: bool = False


@dataclass
class SweepSettings:
    """How the sweep runs. Nothing here is part of a cell's identity."""

    name: str = "distalign"
    ray_address: str | None = None  # null -> $RAY_ADDRESS or a local Ray
    tracking_uri: str | None = None  # null -> $MLFLOW_TRACKING_URI or sqlite:///mlflow.db in the cwd
    experiment: str = "distalign"
    store: str | None = None  # response store folder; null -> $DISTALIGN_STORE or ./.distalign/store
    #: where each sweep keeps its cells' results and report (a folder per sweep inside it)
    output_dir: str = ".distalign/sweeps"
    #: a cell whose model cannot serve its method (log-probs from an API without them): skip | error
    unsupported: str = "skip"
    dry_run: bool = False
    seed: int = 0
    n_resamples: int = 1000
    unparsed: str = "uniform"  # uniform | exclude | worst
    progress: bool = True
    num_cpus: int | None = None  # local Ray only
    #: batch mode: wait for provider batches (false: submit, record in the sweep folder and exit; a rerun
    #: of the same command collects them)
    batch_wait: bool = True


@dataclass
class CellConfig:
    """The composed config of one Hydra job = one cell of the grid."""

    model: ModelConfig = field(default_factory=ModelConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    steering: SteeringConfig = field(default_factory=SteeringConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    sweep: SweepSettings = field(default_factory=SweepSettings)


#: config fields that name *where* content is read from; a cell's identity covers the content instead
LOCATION_FIELDS: dict[str, tuple[str, ...]] = {"dataset": ("data_dir", "path"), "steering": ("templates",)}


def identity_dict(cell: CellConfig, content: Mapping[str, str]) -> dict[str, Any]:
    """The parts of a cell that determine its results: the config without serving and sweep settings and
    without the paths it reads from, plus ``content`` (the digests of the dataset and the templates), so
    editing a template re-runs the cells that use it and moving the data folder does not."""
    d = asdict(cell)
    model = dict(d["model"])
    model.pop("serving", None)
    parts = {k: dict(d[k]) for k in ("dataset", "steering")}
    for group, fields in LOCATION_FIELDS.items():
        for name in fields:
            parts[group].pop(name, None)
    return {
        "model": model,
        **parts,
        "method": d["method"],
        "calibration": d["calibration"],
        "seed": d["sweep"]["seed"],
        "unparsed": d["sweep"]["unparsed"],
        "content": dict(sorted(content.items())),
    }


def spec_hash(cell: CellConfig, content: Mapping[str, str]) -> str:
    """A stable short hash of a cell's identity: its name in MLflow and the key used to resume."""
    blob = json.dumps(identity_dict(cell, content), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cell_run_name(cell: CellConfig) -> str:
    parts = [cell.model.name, cell.dataset.name, cell.steering.name, cell.method.name]
    if cell.calibration.name != "none":
        parts.append(cell.calibration.name)
    return "/".join(parts)


def register_configs() -> None:
    """Register the cell schema with Hydra: conf/config.yaml composes every group onto it, so each group
    YAML is type-checked and unknown keys fail. Only the root is registered: a schema stored inside a
    group (``model/model_schema``) would be listed among that group's choices."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="cell_schema", node=CellConfig)


#: top-level keys of a composed config that are not part of a cell
_NOT_CELL = frozenset({"hydra"})


def _unknown_key(node: Any, schema: type, path: str) -> str | None:
    """The first key of ``node`` the dataclass ``schema`` (or a nested one) does not define. Keys added
    with Hydra's ``+`` bypass the structured config's own check, so they are looked for here. Free dicts
    (``method.params``, ``serving.resources``, ...) are checked by whoever reads them."""
    hints = typing.get_type_hints(schema)
    known = [f.name for f in dataclasses.fields(schema)]
    for key in node:
        name = str(key)
        full = f"{path}.{name}" if path else name
        if name not in known:
            if not path and name in _NOT_CELL:
                continue
            return f"unknown key {full!r} (known keys{f' of {path}' if path else ''}: {', '.join(known)})"
        sub = hints.get(name)
        if dataclasses.is_dataclass(sub) and isinstance(sub, type):
            value = node.get(name) if hasattr(node, "get") else None
            if isinstance(value, Mapping) or hasattr(value, "keys"):
                found = _unknown_key(value, sub, full)
                if found is not None:
                    return found
    return None


def to_cell(cfg: Any) -> CellConfig:
    """A composed Hydra config (DictConfig) -> a typed CellConfig, dropping the ``hydra`` node. A key the
    schema does not define (one added with ``+key=value``) is an InputError naming it and the known keys."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    unknown = _unknown_key(cfg, CellConfig, "")
    if unknown is not None:
        raise InputError(unknown)
    node = OmegaConf.masked_copy(cfg, ["model", "dataset", "steering", "method", "calibration", "sweep"])
    try:
        merged = OmegaConf.merge(OmegaConf.structured(CellConfig), node)
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(reason, where=key or None) from None

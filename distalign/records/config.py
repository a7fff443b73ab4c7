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

#: what an unparsed answer scores as: the uniform distribution, nothing (left out), or the worst TV
UnparsedPolicy = typing.Literal["uniform", "exclude", "worst"]
UNPARSED_POLICIES: tuple[str, ...] = typing.get_args(UnparsedPolicy)


@dataclass
class ServingConfig:
    """How a model is served, whatever the engine. Each engine declares its own settings (``device``,
    ``rpm``, ...) as a dataclass next to its code; in a config they sit beside these keys, and here they are
    kept, as given, in ``settings`` until the engine registry types and checks them."""

    #: the name of an engine module (distalign/engines/) or a dotted module path; every model config names one
    engine: str = MISSING
    #: requests per batch the sweep sends to one of this model's actors (hf: also its forward-pass batch)
    batch_size: int = 16
    #: actors in this model's pool (local engines; an API account has one)
    replicas: int = 1
    num_cpus: float = 1.0
    #: extra Ray resources an engine actor needs (e.g. {"node:gpu-a": 1}) to pin it to nodes
    resources: dict[str, float] = field(default_factory=dict)
    input_cost_per_token: float | None = None
    output_cost_per_token: float | None = None
    #: explicit capability overrides, e.g. {"option_logprobs": false}
    capabilities: dict[str, bool] = field(default_factory=dict)
    #: the engine's own settings (checked against its declaration by ``engines.registry.engine_settings``)
    settings: dict[str, Any] = field(default_factory=dict)


def serving(engine: str, **keys: Any) -> ServingConfig:
    """A ``ServingConfig`` from flat keys, as a YAML gives them: the engine's own go into ``settings``."""
    common = {f.name for f in dataclasses.fields(ServingConfig)} - {"settings"}
    return ServingConfig(
        engine=engine,
        **{k: v for k, v in keys.items() if k in common},
        settings={k: v for k, v in keys.items() if k not in common},
    )


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
    unparsed: str = "uniform"  # one of UNPARSED_POLICIES
    #: a cell that parsed fewer than this share of its answers is marked as mostly filler in every table,
    #: figure and the MLflow description, and left out of the knowledge-to-simulation gap
    min_parsed: float = 0.9
    progress: bool = True
    num_cpus: int | None = None  # local Ray only
    #: where engines run: ray (actors, one pool per model; local or a cluster) | inline (the driver's own
    #: process: no Ray, one batch at a time; for debugging, profiling and small sweeps)
    executor: str = "ray"
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


#: a flat serving key's type and default, as an engine declares it (``engines.registry.serving_fields``)
ServingField = tuple[Any, Any]


def config_schema(serving_fields: Mapping[str, ServingField]) -> type:
    """The cell schema Hydra composes onto: ``CellConfig`` with the engines' settings as flat keys of
    ``model.serving``, each optional (MISSING unless a config sets it), so a typo fails while composing."""
    common = [(f.name, f.type, f) for f in dataclasses.fields(ServingConfig) if f.name != "settings"]
    hints = typing.get_type_hints(ServingConfig)
    common = [(name, hints[name], f) for name, _, f in common]
    extra = [(name, typ | None, field(default=MISSING)) for name, (typ, _) in serving_fields.items()]
    serving = dataclasses.make_dataclass("ServingSchema", [*common, *extra])
    model = dataclasses.make_dataclass(
        "ModelSchema", [("serving", serving, field(default_factory=serving))], bases=(ModelConfig,)
    )
    return dataclasses.make_dataclass(
        "CellSchema", [("model", model, field(default_factory=model))], bases=(CellConfig,)
    )


def register_configs(serving_fields: Mapping[str, ServingField]) -> None:
    """Register the cell schema with Hydra: conf/config.yaml composes every group onto it, so each group
    YAML is type-checked and unknown keys fail. Only the root is registered: a schema stored inside a
    group (``model/model_schema``) would be listed among that group's choices. The engines' settings
    come from their registry (``engines.registry.register_configs``), which this layer cannot import."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="cell_schema", node=config_schema(serving_fields))


#: top-level keys of a composed config that are not part of a cell
_NOT_CELL = frozenset({"hydra"})


def _unknown_key(node: Any, schema: type, path: str) -> str | None:
    """The first key of ``node`` the dataclass ``schema`` (or a nested one) does not define. Keys added
    with Hydra's ``+`` bypass the structured config's own check, so they are looked for here. A node
    composed onto a schema is checked against that schema (``model.serving``: the engines' flat keys).
    Free dicts (``method.params``, ``serving.resources``, ...) are checked by whoever reads them."""
    from omegaconf import OmegaConf

    own = OmegaConf.get_type(node) if OmegaConf.is_config(node) else None
    if own is not None and dataclasses.is_dataclass(own):
        schema = own
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


_SERVING_COMMON = frozenset(f.name for f in dataclasses.fields(ServingConfig)) - {"settings"}


def _settings_apart(serving: dict[str, Any]) -> None:
    """Move a serving mapping's engine keys (flat, as in a YAML) into its ``settings``, in place."""
    settings = dict(serving.pop("settings", None) or {})
    for key in [k for k in serving if k not in _SERVING_COMMON]:
        value = serving.pop(key)
        if value != "???":  # MISSING: a key of another engine, unset
            settings[key] = value
    serving["settings"] = settings


T = typing.TypeVar("T")


def from_config(schema: type[T], node: Any) -> T:
    """A ``CellConfig`` or ``ModelConfig`` from a config node or mapping (a model YAML, a composed
    config), its model's flat engine keys kept in ``serving.settings``. OmegaConf's errors propagate."""
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(OmegaConf.create(node), resolve=True, throw_on_missing=False)
    model = data.get("model") if schema is CellConfig else data  # type: ignore[union-attr]
    if isinstance(model, dict) and isinstance(model.get("serving"), dict):
        _settings_apart(model["serving"])
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), data))  # type: ignore[return-value]


def to_cell(cfg: Any) -> CellConfig:
    """A composed Hydra config (DictConfig) -> a typed CellConfig, dropping the ``hydra`` node. A key the
    schema does not define (one added with ``+key=value``) is an InputError naming it and the known keys.
    The engine's own serving keys go, as given, into ``model.serving.settings``."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    unknown = _unknown_key(cfg, CellConfig, "")
    if unknown is not None:
        raise InputError(unknown)
    node = OmegaConf.masked_copy(cfg, ["model", "dataset", "steering", "method", "calibration", "sweep"])
    try:
        return from_config(CellConfig, node)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(reason, where=key or None) from None

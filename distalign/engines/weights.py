"""Local model weights are checked before a sweep starts, in seconds, instead of by an engine actor after
a minute of hub retries.

Accepted for engines that load weights themselves (``EngineSpec.local_weights``): the packaged default
model, a folder that exists, or a hub name
already in the local Hugging Face cache. Any other hub name is accepted only when hub access is allowed —
``HF_HUB_OFFLINE`` unset or false when the process started, the Hugging Face default — and then only if the
hub says the model exists (one request, 10 s at most). With ``HF_HUB_OFFLINE=1`` nothing is downloaded, so a
name missing from the cache fails here.
"""

from __future__ import annotations

import os
from pathlib import Path

from distalign.engines.registry import engine_spec
from distalign.errors import InputError
from distalign.records.config import ModelConfig

DEFAULT_WEIGHTS = "default"
HUB_TIMEOUT_S = 10.0
_FALSE = ("", "0", "false", "no", "off")
# read once: distalign itself turns the hub off for the packaged embedder later in the same process
_HUB_OFFLINE_AT_START = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() not in _FALSE


def hub_allowed() -> bool:
    return not _HUB_OFFLINE_AT_START


def _in_hf_cache(repo: str, revision: str | None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo, "config.json", revision=revision or None)
    except Exception:  # noqa: BLE001 - a malformed name is not cached; the hub check names it
        return False
    return isinstance(found, str)


def _check_on_hub(repo: str, revision: str | None, where: str) -> None:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        HfApi().model_info(repo, revision=revision or None, timeout=HUB_TIMEOUT_S)
    except GatedRepoError:
        raise InputError(
            f"model {repo!r} on the Hugging Face hub is gated: accept its licence there and set HF_TOKEN, "
            "or point model.weights at a local folder",
            where=where,
        ) from None
    except RepositoryNotFoundError:
        raise InputError(
            f"no model {repo!r} on the Hugging Face hub (nor a folder of that name here); check the name, "
            "or point model.weights at a local folder",
            where=where,
        ) from None
    except RevisionNotFoundError:
        raise InputError(f"model {repo!r} has no revision {revision!r}", where=where) from None
    except Exception as exc:  # noqa: BLE001 - httpx, OSError, HTTP errors: the hub is out of reach
        first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
        raise InputError(
            f"cannot reach the Hugging Face hub to fetch {repo!r} ({first[:160]}); download it where the hub "
            "is reachable and point model.weights at the folder (or set HF_HUB_OFFLINE=1 to use the local "
            "cache only)",
            where=where,
        ) from None


def check_weights(model: ModelConfig) -> None:
    """Raise ``InputError`` (one line) when a local engine's weights cannot be found."""
    if not engine_spec(model).local_weights or model.weights == DEFAULT_WEIGHTS:
        return
    where = f"model {model.name!r}: weights"
    weights = str(model.weights)
    path = Path(weights).expanduser()
    if path.is_dir():
        return
    if weights.startswith(("/", ".", "~")) or path.exists() or weights.count("/") > 1:
        raise InputError(
            "not a model folder here, nor a hub name (organisation/model)", file=weights, where=where
        )
    if _in_hf_cache(weights, model.revision):
        return
    if not hub_allowed():
        raise InputError(
            f"{weights!r} is not in the local Hugging Face cache and hub access is off (HF_HUB_OFFLINE=1); "
            "download it first or point model.weights at a local folder",
            where=where,
        )
    _check_on_hub(weights, model.revision, where)

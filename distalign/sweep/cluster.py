"""Joining a Ray cluster, or starting a private local one, without the ways ``ray.init`` can hang.

``ray.init`` retries an unreachable address for minutes and can lose a Ctrl-C pressed while it forks its
processes; the checks here answer in seconds with what to do instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import ray

from distalign.errors import InputError
from distalign.records.config import SweepSettings
from distalign.sweep import ray_internals

LOCAL_OBJECT_STORE_BYTES = 512 * 2**20

#: seconds a cluster's head may take to accept a connection
CONNECT_TIMEOUT_S = 5.0
_UNSET = "unset RAY_ADDRESS / sweep.ray_address to run on a private local Ray"


def ray_address(settings: SweepSettings) -> str | None:
    """The cluster to join (``None``: start a private local Ray)."""
    address = settings.ray_address or os.environ.get("RAY_ADDRESS") or None
    return None if address == "local" else address


def _auto_address() -> str:
    """What ``address="auto"`` joins: the cluster last started on this machine with ``ray start``."""
    try:
        return ray_internals.auto_address() or ""
    except (ConnectionError, ValueError) as exc:
        raise InputError(
            f"ray_address=auto found no running Ray cluster on this machine ({exc}); start one with "
            f"`ray start --head`, or {_UNSET}",
            where="sweep.ray_address",
        ) from None


def check_ray_address(settings: SweepSettings, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Raise ``InputError`` in seconds when the configured cluster does not accept connections (``ray.init``
    would retry for minutes, logging "Failed to connect to GCS"). Engines run inline: nothing to reach."""
    if settings.executor == "inline":
        return
    address = ray_address(settings)
    if address is None:
        return
    target = _auto_address() if address == "auto" else address
    hostport = target.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not target or not port.isdigit():
        if target:
            raise InputError(
                f"{address!r} is not a Ray address (HOST:PORT, ray://HOST:PORT, auto or local)",
                where="sweep.ray_address",
            )
        return
    host = host.strip("[]") or "127.0.0.1"
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        why = exc.strerror or f"no answer within {timeout_s:g} s"
    else:
        why = _gcs_answer(target, host, int(port), timeout_s)
        if why is None:
            return
    raise InputError(
        f"cannot reach the Ray cluster at {target} ({why}); start it with `ray start --head` on that machine "
        f"(or check the address and firewall), or {_UNSET}",
        where="sweep.ray_address",
    )


def _gcs_answer(target: str, host: str, port: int, timeout_s: float) -> str | None:
    """``None`` when a Ray cluster answers at the address, else why not. A GCS (``HOST:PORT``) is asked for
    its cluster id, a Ray Client server (``ray://``) for a gRPC handshake: a listener that never answers,
    or a service that is not Ray's, would otherwise leave ``ray.init`` waiting without end. With TLS
    (``RAY_USE_TLS``) a plain-text probe cannot tell, so none is made."""
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return None
    channel = grpc.insecure_channel(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    try:
        if target.startswith("ray://"):
            grpc.channel_ready_future(channel).result(timeout=timeout_s)
            return None
        ray_internals.gcs_answers(channel, timeout_s)
        return None
    except grpc.FutureTimeoutError:
        return f"it accepts connections but gave no gRPC answer within {timeout_s:g} s"
    except grpc.RpcError as exc:
        code = exc.code()
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            return None  # a GCS that wants the cluster's token: ray.init brings it
        if code == grpc.StatusCode.UNIMPLEMENTED:
            return "a gRPC service answers there, but not a Ray GCS (a Ray Client port needs ray://HOST:PORT)"
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return f"it accepts connections but gave no Ray answer within {timeout_s:g} s"
        return f"it accepts connections but does not answer as a Ray GCS ({code.name})"
    finally:
        channel.close()


def ensure_ray(settings: SweepSettings) -> bool:
    """Join the configured cluster, or start a local Ray; True when this call started it."""
    if ray.is_initialized():
        return False
    check_ray_address(settings)
    address = ray_address(settings)
    common: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True}
    try:
        with _signals_held() as received:
            _init(address, settings, common)
        if received:  # Ctrl-C or SIGTERM while Ray started: stop now that it can be stopped cleanly
            raise KeyboardInterrupt
    except BaseException:  # stop the processes started so far, which would outlive us
        with contextlib.suppress(Exception):
            ray.shutdown()
        raise
    return True


@contextlib.contextmanager
def _signals_held() -> Iterator[list[int]]:
    """Holds SIGINT and SIGTERM back while Ray starts, and yields the signals received meanwhile.

    Ray starts its processes with fork hooks; an exception that a signal handler raises inside one (Ray's
    own SIGTERM handler calls ``sys.exit``, Python's SIGINT handler raises ``KeyboardInterrupt``) is
    swallowed by Python and leaves the ``logging`` lock held, so the interrupt is lost and the sweep later
    hangs. Ray's handler is therefore not installed, and ours only records the signal."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def hold(signum: int, frame: Any) -> None:
        received.append(signum)

    previous = {s: signal.signal(s, hold) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with ray_internals.sigterm_handler_off():
            yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


ray_internals.hide_token_auth_notice()


def _init(address: str | None, settings: SweepSettings, common: dict[str, Any]) -> None:
    if address:
        try:
            ray.init(address=address, **common)
        except ConnectionError as exc:  # something answers there, but not a Ray cluster's GCS
            raise InputError(
                f"{address} accepts connections but no Ray cluster answered there ({exc}); give the "
                f"address of the head node's GCS (the one `ray start --head` printed, port 6379 by default), "
                f"or {_UNSET}",
                where="sweep.ray_address",
            ) from None
    else:
        # address="local": always a fresh private instance; a bare init() would silently join any cluster
        # someone else started on this machine with `ray start`
        ray.init(
            address="local",
            num_cpus=settings.num_cpus,
            include_dashboard=False,
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            **common,
        )

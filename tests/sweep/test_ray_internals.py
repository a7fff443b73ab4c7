"""Pins the Ray internals ``sweep/ray_internals.py`` relies on: a Ray upgrade that moves one fails here."""

from __future__ import annotations

import inspect

import grpc
import pytest

from distalign.sweep import ray_internals


def test_ray_still_has_the_private_functions_used() -> None:
    from ray._private import services, utils
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    assert callable(services.canonicalize_bootstrap_address_or_die)
    assert list(inspect.signature(utils.set_sigterm_handler).parameters) == ["sigterm_handler"]
    assert hasattr(gcs_service_pb2_grpc, "NodeInfoGcsServiceStub")
    assert hasattr(gcs_service_pb2, "GetClusterIdRequest")


def test_sigterm_handler_off_disables_rays_handler_and_restores_it() -> None:
    from ray._private import utils

    original = utils.set_sigterm_handler
    with ray_internals.sigterm_handler_off():
        assert utils.set_sigterm_handler is not original
        assert utils.set_sigterm_handler(lambda *a: None) is None
    assert utils.set_sigterm_handler is original


def test_sigterm_handler_is_restored_after_an_error() -> None:
    from ray._private import utils

    original = utils.set_sigterm_handler
    with pytest.raises(KeyboardInterrupt), ray_internals.sigterm_handler_off():
        raise KeyboardInterrupt
    assert utils.set_sigterm_handler is original


def test_a_closed_port_gives_no_gcs_answer() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        with pytest.raises(grpc.RpcError):
            ray_internals.gcs_answers(channel, timeout_s=2.0)
    finally:
        channel.close()

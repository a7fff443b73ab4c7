"""The only module that touches Ray's private internals, each for a reason Ray's public API cannot serve.

* ``auto_address``: which cluster ``address="auto"`` would join, to probe it before ``ray.init`` (which
  retries for minutes against a dead address); Ray has no public way to ask.
* ``gcs_answers``: a GCS asked for its cluster id over gRPC, to tell a Ray head from a silent listener or
  another gRPC service, which would leave ``ray.init`` waiting without end.
* ``hide_token_auth_notice``: Ray logs "Token authentication is enabled for this Ray cluster" on every
  start from a private module's logger; authentication stays on, only that notice is dropped.
* ``sigterm_handler_off``: stops Ray installing its SIGTERM handler while it starts (see
  ``cluster._signals_held``); Ray offers no switch for it.

``tests/sweep/test_ray_internals.py`` pins each of them, so a Ray upgrade that moves one fails there, by
name, instead of in a sweep.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

#: the logger of Ray's token-authentication set-up (a private module; pinned by the tests)
TOKEN_AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"


class _TokenAuthNotice(logging.Filter):
    """Drops Ray's "Token authentication is enabled for this Ray cluster" warning, and only it.

    A sweep's private local Ray keeps token authentication on (Ray's default since 2.59: it generates
    ``~/.ray/auth_token`` once and every process of the cluster presents it). Ray warns about that default
    on every start, a notice that asks nothing of the user, so it is not shown; ``RAY_AUTH_MODE=disabled``
    still turns authentication off, and every other message of that logger (e.g. the warning that
    authentication is *disabled*) still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Token authentication is enabled for this Ray cluster")


def hide_token_auth_notice() -> None:
    logger = logging.getLogger(TOKEN_AUTH_LOGGER)
    if not any(isinstance(f, _TokenAuthNotice) for f in logger.filters):
        logger.addFilter(_TokenAuthNotice())


def auto_address() -> str | None:
    """The bootstrap address of the cluster started on this machine (``ray start``); None when this Ray
    cannot tell. Raises ConnectionError or ValueError when there is none."""
    try:
        from ray._private.services import canonicalize_bootstrap_address_or_die
    except ImportError:  # a Ray without it: ray.init reports the problem itself
        return None
    return str(canonicalize_bootstrap_address_or_die("auto"))


def gcs_answers(channel: object, timeout_s: float) -> None:
    """Ask the GCS behind a gRPC ``channel`` for its cluster id; raises ``grpc.RpcError`` (or a timeout)
    when nothing answers as a GCS."""
    from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

    stub = gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel)
    stub.GetClusterId(gcs_service_pb2.GetClusterIdRequest(), timeout=timeout_s)


@contextlib.contextmanager
def sigterm_handler_off() -> Iterator[None]:
    """While inside, Ray's ``set_sigterm_handler`` does nothing; restored on the way out."""
    from ray._private import utils

    original = utils.set_sigterm_handler
    utils.set_sigterm_handler = lambda handler: None
    try:
        yield
    finally:
        utils.set_sigterm_handler = original

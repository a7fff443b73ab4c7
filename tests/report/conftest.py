"""Report tests share the hand-made surveys of the scoring tests."""

from tests.scoring.conftest import surveys  # noqa: F401

"""Failed cells are summarised per kind: count, first message, what to check."""

from __future__ import annotations

from distalign.records.config import ModelConfig, ServingConfig
from distalign.records.results import CellResult
from distalign.sweep.failures import failure_lines, summarise
from tests.sweep.conftest import make_cell


def _failed(spec: str, error: str, model: ModelConfig) -> CellResult:
    return CellResult(spec, make_cell("verbalize", model=model), "failed", error)


def test_cells_failing_the_same_way_are_one_line_naming_what_to_check() -> None:
    api = ModelConfig(
        name="gpt4",
        weights="openai/gpt-4",
        serving=ServingConfig(
            engine="litellm", api_base="http://127.0.0.1:9/v1", api_key_env="OPENAI_API_KEY"
        ),
    )
    results = [
        _failed("a" * 16, "6 of 6 requests failed (first: AuthenticationError - 401 Unauthorized)", api),
        _failed("b" * 16, "12 of 12 requests failed (first: AuthenticationError - 401 Unauthorized)", api),
        _failed("c" * 16, "3 of 3 requests failed (first: APIConnectionError: Connection refused)", api),
    ]
    lines = failure_lines(summarise(results), total=4)
    assert len(lines) == 2, lines
    assert lines[0].startswith("2 of 4 cell(s) of model gpt4 (at http://127.0.0.1:9/v1) failed: 6 of 6")
    assert lines[0].endswith("— check OPENAI_API_KEY")
    assert lines[1].startswith("1 of 4") and "server at http://127.0.0.1:9/v1 is running" in lines[1]

"""The plain progress lines say what is happening: the model load, then rates from the first answer."""

from __future__ import annotations

import logging

import pytest

from distalign.records.config import ModelConfig, ServingConfig
from distalign.sweep.progress import SweepProgress


def test_the_model_load_is_named_instead_of_a_rate_frozen_at_zero(caplog: pytest.LogCaptureFixture) -> None:
    p = SweepProgress(cells_total=2, requests_total=10, enabled=False)
    models = [
        ModelConfig(name="smollm2_135m", weights="default", serving=ServingConfig(engine="hf")),
        ModelConfig(name="gpt4", weights="openai/gpt-4", serving=ServingConfig(engine="litellm")),
    ]
    with caplog.at_level(logging.INFO, logger="distalign.sweep"):
        p.starting(models)
    assert "loading model smollm2_135m (first time: ~1 min)" in caplog.text
    assert "API callers for gpt4" in caplog.text
    assert "loading model smollm2_135m" in p.line() and "/s" not in p.line()
    p.batch(5, tokens=100, cost_usd=0.0)
    assert "loading" not in p.line() and "requests 5/10" in p.line()


def test_nothing_to_run_prints_no_progress(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="distalign.sweep"), SweepProgress(0, 0, enabled=False):
        pass
    assert "cells 0/0" not in caplog.text

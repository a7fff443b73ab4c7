"""The GlobalOpinionQA country table: which countries are evaluated, each model's TV there."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from distalign.report.meister2024.countries import country_markdown, country_table


def test_countries_their_questions_and_the_models_mean(release_dir: Path, release_surveys: dict) -> None:
    data = json.loads((release_dir / "Global_Values" / "data" / "data.json").read_text(encoding="utf-8"))
    slots = Counter(c for entry in data.values() for c in entry["countries"][:3])
    scored = pd.DataFrame(
        {
            "model": ["gpt-4"] * 4,
            "method": ["verbalize"] * 4,
            "steering": ["persona", "few_shot", "none", "persona"],
            "dataset": ["global_opinions"] * 4,
            "attribute": ["country"] * 4,
            "group": ["Jordan", "Jordan", "Jordan", "Japan"],
            "tv": [0.2, 0.4, 0.9, np.nan],
        }
    )
    t = country_table(scored, release_surveys["global_opinions"]).set_index("country")
    assert dict(t["pairs"]) == dict(slots) and t.index[0] == slots.most_common(1)[0][0]
    assert t.loc["Jordan", "gpt-4 | verbalize"] == 0.30000000000000004 or np.isclose(
        t.loc["Jordan", "gpt-4 | verbalize"], 0.3
    )
    assert np.isnan(t.loc["Japan", "gpt-4 | verbalize"]) and list(t.columns[-1:]) == ["gpt-4 | verbalize"]
    assert t["uniform"].between(0, 1).all()
    md = country_markdown(t.reset_index(), "T")
    assert "| Jordan | 32 |" in md and "gpt-4 / verbalize" in md

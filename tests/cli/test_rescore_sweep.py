"""A sweep's raw answers re-score identically: every method, each with settings other than its defaults, is
swept (the instant engine, through ``launch.py``), its raw answers are exported with ``distalign import``
and scored with ``distalign score``, and every row and every cell comes out as the sweep scored it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from distalign import cli
from distalign.methods.registry import METHODS
from distalign.scoring.results import read_items, read_records
from tests.test_launch import launch

#: method config -> (method, its settings other than the defaults); logprobs has no settings
METHOD_CONFIGS: dict[str, tuple[str, dict]] = {
    "t_seq": ("seq", {"seq_len": 10, "temperature": 0.7}),
    "t_verbalize": ("verbalize", {"n": 2, "temperature": 0.5}),
    "t_vts": ("verbalize_then_sample", {"n_respondents": 1000, "seed": 7}),
    "t_logprobs": ("logprobs", {}),
    "t_self_random": ("self_random", {"n": 3, "temperature": 0.9}),
    "t_paraphrase": ("paraphrase", {"n_paraphrases": 3}),
}
#: paraphrase exists in the supervision protocol only, whose prompts number the options 1, 2, ... (the
#: instant engine answers them with a letter: unparsed, in the sweep and in the re-score alike)
SWEEPS = (
    ("bench", "t_seq,t_verbalize,t_vts,t_logprobs,t_self_random", "none,persona"),
    ("super", "t_self_random,t_paraphrase", "kambhatla_base"),
)
KEYS = ["method", "steering", "item_id", "attribute", "group"]


@pytest.mark.slow
def test_every_method_with_its_own_settings_rescores_to_the_sweeps_numbers(tmp_path: Path, capsys) -> None:
    assert {m for m, _ in METHOD_CONFIGS.values()} == set(METHODS)
    conf = tmp_path / "conf" / "method"
    conf.mkdir(parents=True)
    for config, (name, params) in METHOD_CONFIGS.items():
        (conf / f"{config}.yaml").write_text(json.dumps({"name": name, "params": params}))
    for sweep, methods, steering in SWEEPS:
        proc = launch(
            tmp_path,
            "model=instant",
            "dataset.data_dir=fixture",
            "dataset.max_items=3",
            f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
            f"method={methods}",
            f"steering={steering}",
            f"sweep.name={sweep}",
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    folders = sorted((tmp_path / ".distalign" / "sweeps").iterdir())
    assert len(folders) == 2
    for folder in folders:
        raw, out = tmp_path / f"{folder.name}.jsonl", tmp_path / f"{folder.name}-scores"
        assert cli.main(["import", str(folder), "--out", str(raw)]) == 0
        exported = pd.read_json(raw, lines=True)
        settings = exported["method_params"].map(json.loads)
        assert (settings.map(bool) | exported["method"].eq("logprobs")).all()  # logprobs has none
        assert cli.main(["score", str(raw), "--data-dir", "fixture", "--out", str(out)]) == 0
        capsys.readouterr()

        sweep = read_items(folder).set_index(KEYS).sort_index()
        if folder.name.startswith("bench"):  # every method's answers parsed: the settings matter
            parsed = sweep[sweep["status"] != "unparsed"].index.get_level_values("method")
            assert set(parsed) == {"seq", "verbalize", "verbalize_then_sample", "logprobs", "self_random"}
        scored = pd.read_csv(out / "scores.csv", keep_default_na=False, na_values=[""])
        scored = scored.set_index(KEYS).sort_index()
        assert len(sweep) == len(scored) > 0
        assert list(sweep.index) == list(scored.index)
        assert list(sweep["status"]) == list(scored["status"])  # a 10-letter sequence is complete
        for want, got in zip(sweep["pred_probs"], scored["pred"], strict=True):
            assert json.loads(got) == pytest.approx(list(want), abs=1e-6)
        assert list(sweep["tv"]) == pytest.approx(list(scored["tv"]), abs=1e-6)

        board = pd.DataFrame(json.loads((out / "leaderboard.json").read_text()))
        for record in read_records(folder):
            cell = record["cell"]
            row = board[
                (board["method"] == cell["method"]["name"])
                & (board["steering"] == cell["steering"]["name"])
                & (board["dataset"] == "opinionqa")
            ]
            assert len(row) == 1, cell
            metrics = record["metrics"]
            assert row["mean"].iat[0] == pytest.approx(metrics["tv_mean"], abs=1e-12)
            assert row["extraction_rate"].iat[0] == pytest.approx(metrics["extraction_rate"], abs=1e-12)

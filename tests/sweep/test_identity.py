"""A cell's identity covers the content it reads, not where it reads it from: an edited template re-runs
the cells that use it, a moved data folder does not."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import yaml

from distalign.prompts.templates import packaged_templates
from distalign.survey.paths import fixture_dir
from distalign.sweep.cells import cell_hash, clear_dataset_cache
from distalign.sweep.runner import run_sweep
from distalign.sweep.trackers import MemoryTracker
from tests.sweep.conftest import make_cell, settings


def _templates(path: Path, system: str | None = None) -> str:
    raw = dict(packaged_templates().raw)
    if system is not None:
        raw["system"] = {**raw["system"], "benchmark": system}
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return str(path)


def _with(cell, data_dir: str | None = None, templates: str | None = None):  # type: ignore[no-untyped-def]
    if data_dir is not None:
        cell = replace(cell, dataset=replace(cell.dataset, data_dir=data_dir))
    if templates is not None:
        cell = replace(cell, steering=replace(cell.steering, templates=templates))
    return cell


def test_moving_the_data_folder_keeps_the_identity(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(fixture_dir(), a)
    before = cell_hash(_with(make_cell(), data_dir=str(a)))
    shutil.move(a, b)
    clear_dataset_cache()
    assert cell_hash(_with(make_cell(), data_dir=str(b))) == before
    assert before == cell_hash(make_cell())  # the shipped sample itself: same content, same identity


def test_editing_the_data_changes_the_identity(tmp_path: Path) -> None:
    shutil.copytree(fixture_dir(), tmp_path / "a")
    before = cell_hash(_with(make_cell(), data_dir=str(tmp_path / "a")))
    data = next((tmp_path / "a").rglob("POLPARTY_data.json"))
    data.write_text(
        data.read_text().replace(
            '"Democrat": {"More than now": 62.0', '"Democrat": {"More than now": 72.0', 1
        )
    )
    clear_dataset_cache()
    assert cell_hash(_with(make_cell(), data_dir=str(tmp_path / "a"))) != before


def test_a_template_file_counts_by_its_wording(tmp_path: Path) -> None:
    same = _templates(tmp_path / "copy.yaml")
    assert cell_hash(_with(make_cell(), templates=same)) == cell_hash(make_cell())
    clear_dataset_cache()
    edited = _templates(tmp_path / "edited.yaml", system="You answer survey questions. Be brief.")
    assert cell_hash(_with(make_cell(), templates=edited)) != cell_hash(make_cell())


def test_an_edited_template_reruns_its_cells_and_a_moved_folder_does_not(tmp_path: Path) -> None:
    shutil.copytree(fixture_dir(), tmp_path / "data")
    path = _templates(tmp_path / "templates.yaml")
    cell = _with(make_cell("logprobs", "persona", max_items=2), str(tmp_path / "data"), path)
    folder = tmp_path / "sweep"
    first = run_sweep([cell], settings(tmp_path / "store", executor="inline"), MemoryTracker(), folder=folder)
    assert first.totals["finished"] == 1

    shutil.move(tmp_path / "data", tmp_path / "moved")
    clear_dataset_cache()
    moved = run_sweep(
        [_with(cell, data_dir=str(tmp_path / "moved"))],
        settings(tmp_path / "store", executor="inline"),
        folder=folder,
    )
    assert moved.totals["skipped"] == 1 and moved.results == []

    _templates(tmp_path / "templates.yaml", system="You answer survey questions. Be brief.")
    clear_dataset_cache()
    edited = run_sweep(
        [_with(cell, data_dir=str(tmp_path / "moved"))],
        settings(tmp_path / "store", executor="inline"),
        folder=folder,
    )
    assert edited.totals["skipped"] == 0 and edited.totals["finished"] == 1
    assert edited.totals["requests_sent"] == edited.totals["requests"] > 0  # new prompts, new requests

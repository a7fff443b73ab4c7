"""Figure 3: the NYT books whose Republican and Democrat annotators differ most."""

from __future__ import annotations

from pathlib import Path

from distalign.report.meister2024.nyt_books import figure3, figure3_frame


def test_the_figure_spells_the_books_as_the_paper_does(release_dir: Path) -> None:
    """The release title-cases every letter after an apostrophe ("Washington'S Crossing"); the frame keeps
    the release's spelling, the figure's labels read as the paper's x-axis ("Washington's Crossing")."""
    frame = figure3_frame(release_dir, n_resamples=20)
    assert "Washington'S Crossing By David Hackett Fischer" in set(frame["book"])
    labels = [t.get_text().replace("\n", " ") for t in figure3(frame).axes[0].get_xticklabels()]
    assert any(label.startswith("Washington's Crossing") for label in labels), labels
    assert not any("'S" in label for label in labels), labels
    others = frame.replace({"book": {frame["book"].iloc[0]: "Why Don'T We By Maggie O'Farrell"}})
    labels = [t.get_text().replace("\n", " ") for t in figure3(others).axes[0].get_xticklabels()]
    assert "Why Don't We By Maggie O'Farrell" in labels, labels

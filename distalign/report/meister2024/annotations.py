"""What the release lacks, said on the figures themselves (the drawings are the report's; these notes are
the benchmark paper's): an empty panel or column otherwise reads as a plotting error."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from distalign.report import style

#: Figure 4's empty GlobalOpinionQA "none" column
NO_STEERING_GLOBAL = "not in the\nrelease: no\nrun without\nsteering\n(no task0\noutputs)"
#: Figure 2's right panel
NO_VERBALIZED_COIN = (
    "The paper's right panel (verbalize) is not drawn: the release holds no verbalized coin outputs\n"
    "(results/biased_coin has log-p and sequence only); `distalign toy` produces it with a model."
)


def note_empty_steering(fig: Figure, dataset: str = "global_opinions", steering_index: int = 0) -> Figure:
    """Writes ``NO_STEERING_GLOBAL`` in the empty "none" column of ``dataset``'s panels."""
    title = style.label(dataset, style.DATASET_LABELS)
    columns = [ax for ax in fig.axes if ax.get_title() == title]
    for ax in fig.axes:
        if columns and ax.get_subplotspec() is not None:
            same = ax.get_subplotspec().colspan == columns[0].get_subplotspec().colspan
            if same:
                ax.text(
                    steering_index,
                    0.04,
                    NO_STEERING_GLOBAL,
                    transform=blended_transform_factory(ax.transData, ax.transAxes),
                    ha="center",
                    va="bottom",
                    fontsize=6.5,
                    color="0.35",
                )
    return fig


def note_no_verbalized_coin(fig: Figure) -> Figure:
    fig.suptitle(NO_VERBALIZED_COIN, fontsize=7.5, color="0.3")
    return fig


__all__ = ["NO_STEERING_GLOBAL", "NO_VERBALIZED_COIN", "note_empty_steering", "note_no_verbalized_coin"]

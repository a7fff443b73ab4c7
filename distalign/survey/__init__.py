"""Survey data: the data model, loaders for the benchmark release and a documented custom format."""

from distalign.survey.custom import load_custom
from distalign.survey.global_opinions import load_global_opinions
from distalign.survey.model import Example, GroupDistribution, Item, Survey
from distalign.survey.nyt import load_nyt_books
from distalign.survey.opinionqa import load_opinionqa
from distalign.survey.paths import data_dir, fixture_dir
from distalign.survey.registry import DATASET_LOADERS, list_datasets, load_survey

__all__ = [
    "DATASET_LOADERS",
    "Example",
    "GroupDistribution",
    "Item",
    "Survey",
    "data_dir",
    "fixture_dir",
    "list_datasets",
    "load_custom",
    "load_global_opinions",
    "load_nyt_books",
    "load_opinionqa",
    "load_survey",
]

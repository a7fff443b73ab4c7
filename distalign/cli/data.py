"""``distalign data list|download|info``: get the benchmark release and check what a loader sees."""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

from distalign.cli.helptext import add_command
from distalign.survey.download import download, downloadable, files_for, load_manifest
from distalign.survey.paths import (
    ENV_VAR,
    FIXTURE_ALIAS,
    FIXTURE_NOTE,
    data_dir,
    is_fixture,
    tool_command,
)
from distalign.survey.registry import CUSTOM, DATASET_LOADERS, list_datasets, load_survey

#: the manifest entry holding every file of the release
RELEASE = "meister2024"

_DATA_DIR_HELP = (
    f"release root folder (default: ${ENV_VAR}, else ~/.cache/distalign/data; "
    f"'{FIXTURE_ALIAS}' = the small shipped sample)"
)


_LIST = "distalign data list"
_DOWNLOAD = "distalign data download opinionqa"
_INFO = (
    "distalign data info nyt_books --data-dir fixture",
    "distalign data info custom --path my_survey.jsonl",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers, "data", "list, download and inspect survey datasets", (_LIST, _DOWNLOAD, *_INFO)
    )
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    p = add_command(sub, "list", "datasets and whether they are present in the data folder", (_LIST,))
    p.add_argument("--data-dir", default=None, help=_DATA_DIR_HELP)
    p.set_defaults(func=cmd_list)

    p = add_command(sub, "download", "download a dataset of the public release (checksummed)", (_DOWNLOAD,))
    p.add_argument("name", help=f"one of: {', '.join(downloadable())}")
    p.add_argument("--data-dir", default=None, help=_DATA_DIR_HELP)
    p.set_defaults(func=cmd_download)

    p = add_command(sub, "info", "load a dataset and print its counts", _INFO)
    p.add_argument("name", help=f"one of: {', '.join(list_datasets())}")
    p.add_argument("--data-dir", default=None, help=_DATA_DIR_HELP)
    p.add_argument("--path", default=None, help="the file, for the 'custom' dataset (default: none)")
    p.set_defaults(func=cmd_info)


def cmd_list(args: argparse.Namespace) -> int:
    root = data_dir(args.data_dir)
    origin = "--data-dir" if args.data_dir else (f"${ENV_VAR}" if os.environ.get(ENV_VAR) else "default")
    print(f"data folder: {root}  ({origin})")
    if is_fixture(args.data_dir):
        print(f"  note: {FIXTURE_NOTE}")
    missing = []
    for name, loader in DATASET_LOADERS.items():
        present = all((root / f).is_file() for f in loader.files)
        missing += [] if present else [name]
        print(f"  {name:<16} {'present' if present else 'missing':<8} {loader.description}")
    manifest = load_manifest()
    release = files_for(RELEASE, manifest)
    n_release = sum((root / f.path).is_file() for f in release)
    state = "present" if n_release == len(release) else "partly" if n_release else "missing"
    if not is_fixture(args.data_dir):
        print(
            f"  {RELEASE:<16} {state:<8} the whole release: the datasets, the paper's prompts, model outputs "
            f"and annotator study ({n_release} of {len(release)} files; for `distalign reproduce {RELEASE}`)"
        )
    print(f"  {CUSTOM:<16} {'':<8} your own file: distalign data info custom --path FILE")
    if is_fixture(args.data_dir):
        return 0
    tool = tool_command()
    if missing or n_release < len(release):
        mb = sum(f.size for f in release) / 1e6
        print("\nTo get what is missing (needs internet; checksums verified):")
        print(f"  {tool} data download {RELEASE}      # everything above, {mb:.0f} MB")
        for name in missing:
            print(f"  {tool} data download {name}")
        print(
            "Offline: copy a release folder from another machine and point the tool at it (or pass "
            "--data-dir DIR to distalign commands, dataset.data_dir=DIR to launch.py):\n"
            f"  export {ENV_VAR}=/path/to/{RELEASE}"
        )
    print(
        "\nAlso shipped with the package: an invented sample in the release's layout (made-up questions and "
        "answer counts, for trying the tool, not survey data); the demo runs on it:"
    )
    print(f"  {tool} data list --data-dir {FIXTURE_ALIAS}")
    print(f"  {launch_command()} -m experiment=smoke dataset.data_dir={FIXTURE_ALIAS}")
    return 0


def launch_command() -> str:
    """``launch.py`` as a shell started anywhere can run it (it lives in the repository, beside ``conf/``)."""
    launch = Path(__file__).resolve().parents[2] / "launch.py"
    python = tool_command("python")
    if Path("launch.py").resolve() == launch:
        return f"{python} launch.py"
    return f"{python} {launch}" if launch.exists() else f"{python} launch.py"


def cmd_download(args: argparse.Namespace) -> int:
    m = load_manifest()
    root = data_dir(args.data_dir)
    files_for(args.name, m)  # an unknown name fails before anything is announced or fetched
    print(f"downloading {args.name!r} from {m.repository}@{m.commit[:10]} into {root}")
    written = download(args.name, args.data_dir, progress=lambda line: print(f"  {line}"))
    print(f"done: {len(written)} file(s) written, all checksums verified")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    kw = {"path": args.path} if args.name == CUSTOM else {}
    survey = load_survey(args.name, args.data_dir, **kw)
    n_cands = [len(survey.examples(d.item_id, d.group)) for d in survey.distributions]
    print(f"dataset:  {survey.name}")
    print(f"source:   {survey.source}")
    print(f"items:    {len(survey.items)}")
    print(f"pairs:    {len(survey)} (item, group)")
    for attribute, group in survey.groups():
        n = sum(1 for d in survey.distributions if d.attribute == attribute and d.group == group)
        print(f"  {attribute}={group}: {n}")
    if n_cands:
        print(
            f"few-shot candidates per pair: min {min(n_cands)}, median {statistics.median(n_cands):g}, "
            f"max {max(n_cands)}"
        )
    return 0

"""The README is the first hour of a new user: its commands, and the commands the tool prints, must work as
written. Its two opening commands are the project's contract (CI runs the second); every other command
names an executable and options that exist; its command blocks run in order in a fresh shell."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.conftest import REPO

#: a block whose first line names one of these is shown, not run by the block runner
NOT_RUN = ("needs internet", "needs api keys", "needs a gpu", "starts a server", "needs a ray cluster")
#: the offline block's placeholder: the runner puts the release's real path there
RELEASE_PLACEHOLDER = "/path/to/meister2024"


def _blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def _commands(block: str) -> list[str]:
    """The commands of a block: comments dropped, continuation lines joined, ``&&`` chains split."""
    joined = re.sub(r"\\\n\s*", " ", block)
    out = []
    for line in joined.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        out += [part.strip() for part in line.split("&&") if part.strip()]
    return out


def test_readme_opens_with_the_two_commands() -> None:
    text = (REPO / "README.md").read_text()
    first_block = text.index("```bash")
    assert text[:first_block].strip().startswith("# distalign")
    run, test = _blocks()[:2]
    assert "launch.py -m" in run and "scripts/setup.sh" in run
    assert "pytest" in test and "scripts/setup.sh" in test


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    _, test = _blocks()[:2]
    assert f"TEST_COMMAND='{test}'" in ci


def test_the_readme_activates_the_environment_before_bare_commands() -> None:
    blocks = _blocks()
    activate = next(i for i, b in enumerate(blocks) if "source .venv/bin/activate" in _commands(b))
    assert activate == 2, "activation is the first block after the two opening commands"
    for block in blocks[:activate]:
        for cmd in _commands(block):
            assert not re.match(r"(distalign|python|mlflow)\b", cmd), f"bare command before activation: {cmd}"


# --- every command names an executable and options that exist ---------------------------------------------


def _check_distalign(argv: list[str]) -> None:
    from distalign.cli import build_parser
    from distalign.survey.download import downloadable

    try:
        build_parser(argv).parse_args(argv)
    except SystemExit as exc:  # --help exits 0
        if exc.code == 0:
            return
        raise AssertionError(f"`distalign {shlex.join(argv)}` is not accepted (exit {exc.code})") from None
    if argv[:2] == ["data", "download"]:
        assert argv[2] in downloadable(), argv


def _check_launch(args: list[str]) -> None:
    """Hydra composes the overrides (the first value of each comma list): groups, options and keys exist."""
    from hydra import compose, initialize_config_dir

    from distalign.engines.registry import register_configs

    register_configs()
    overrides = [a.split(",")[0] if "=" in a else a for a in args if not a.startswith("-")]
    assert all(a in ("-m", "--multirun", "--help", "-h") for a in args if a.startswith("-")), args
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        try:
            compose(config_name="config", overrides=overrides)
        except Exception as exc:  # Hydra's errors name the bad override
            raise AssertionError(f"launch.py {shlex.join(args)}: {exc}") from None


def _mlflow_ui_options() -> set[str]:
    import click
    from mlflow.cli import cli

    ui = cli.get_command(click.Context(cli), "ui")
    return {o for p in ui.params for o in p.opts}


def check_command(cmd: str) -> None:
    """Raise ``AssertionError`` unless ``cmd`` names an executable this checkout has and options it takes."""
    words = shlex.split(cmd.replace("$PWD", str(REPO)))
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):  # VAR=value prefixes
        words = words[1:]
    exe, args = Path(words[0]).name, words[1:]
    if Path(words[0]).is_absolute():
        assert Path(words[0]).exists(), f"{words[0]} does not exist"
    if exe == "source":
        assert (REPO / args[0]).exists() or args[0] == ".venv/bin/activate", cmd
    elif exe == "export":
        name = args[0].split("=")[0]
        assert name in (REPO / "README.md").read_text() and name.startswith("DISTALIGN_"), cmd
    elif exe == "bash":
        script = REPO / args[0]
        assert script.is_file(), cmd
        for opt in args[1:]:
            assert f"{opt})" in script.read_text(), f"{cmd}: {script.name} has no option {opt}"
    elif exe == "distalign":
        _check_distalign(args)
    elif exe.startswith("python"):
        if args[:2] == ["-m", "pytest"]:
            return
        launch = Path(args[0])
        assert launch.name == "launch.py" and (REPO / "launch.py").is_file(), cmd
        _check_launch(args[1:])
    elif exe == "mlflow":
        assert args[0] == "ui", cmd
        unknown = {a for a in args[1:] if a.startswith("--")} - _mlflow_ui_options()
        assert not unknown, f"{cmd}: mlflow ui has no {unknown}"
    else:
        raise AssertionError(f"{cmd}: unknown executable {exe!r}")


def _readme_commands() -> list[str]:
    return [c for b in _blocks() for c in _commands(b)]


def _printed_commands(tmp_path: Path) -> list[str]:
    """The commands the tool prints: ``data list``'s hints, the missing-data error in both option forms,
    the ``mlflow ui`` line a sweep ends with, and every ``--help`` example."""
    from distalign.cli import EPILOG, build_parser
    from distalign.survey.paths import CLI_OPTION, HYDRA_OPTION, MissingDataError
    from distalign.tracking.mlflow_tracker import MLflowTracker

    venv_bin = str(Path(sys.executable).parent)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "empty")}
    env.pop("DISTALIGN_DATA_DIR", None)
    listing = subprocess.run(
        [str(Path(sys.executable).parent / "distalign"), "data", "list"],
        capture_output=True, text=True, env=env, timeout=120, check=True,
    ).stdout  # fmt: skip
    lines = [line.split("#")[0].strip() for line in listing.splitlines()]
    cmds = [ln for ln in lines if ln.startswith((venv_bin, "distalign ", "python ", "export "))]
    cmds += [ln.split("your own file: ")[1] for ln in lines if "your own file: " in ln]
    for option in (CLI_OPTION, HYDRA_OPTION):
        message = str(MissingDataError("opinionqa", tmp_path / "x.json", option))
        quoted = re.findall(r"`([^`]+)`", message)
        cmds += [c for c in quoted if c.startswith((venv_bin, "distalign "))]
        # the option forms it names are accepted by the command that gave that form
        taker = "distalign data list" if option == CLI_OPTION else "python launch.py"
        forms = [c for c in quoted if c.startswith(option)]
        assert len(forms) == 2, message  # DIR and the shipped sample
        cmds += [f"{taker} {form}" for form in forms]
    ui = MLflowTracker.ui_command(SimpleNamespace(uri=f"sqlite:///{tmp_path / 'mlflow.db'}"))  # type: ignore[arg-type]
    cmds.append(ui)
    setup = (REPO / "scripts" / "setup.sh").read_text()  # its last lines say what to run next
    hint = next(line for line in setup.splitlines() if "source .venv/bin/activate" in line)
    cmds += ["source .venv/bin/activate", *re.findall(r"(distalign [\w -]+?)[,)]", hint)]
    assert len(cmds) > 3
    epilogs, stack = [EPILOG], [build_parser()]
    while stack:  # every command's and action's parser
        for action in stack.pop()._actions:
            if isinstance(action, argparse._SubParsersAction):
                epilogs += [sub.epilog or "" for sub in action.choices.values()]
                stack += list(action.choices.values())
    for epilog in epilogs:
        for line in epilog.splitlines():
            line = re.sub(r"\s#.*$", "", line).strip().removeprefix("sweeps run with: ")
            if line.startswith(("distalign ", "python launch.py")):
                cmds.append(line)
    return cmds


def _bare(cmd: str) -> str:
    """A printed hint as the README's activated shell would type it (absolute venv paths are checked to
    exist, then shortened)."""
    venv_bin = str(Path(sys.executable).parent) + "/"
    for word in shlex.split(cmd):
        if word.startswith(venv_bin):
            assert Path(word).exists(), word
    return cmd.replace(venv_bin, "").replace(str(REPO) + "/launch.py", "launch.py")


def test_every_readme_command_names_an_executable_and_options_that_exist() -> None:
    commands = _readme_commands()
    assert len(commands) > 10
    problems = []
    for cmd in commands:
        try:
            check_command(cmd)
        except AssertionError as exc:
            problems.append(f"{cmd}\n    {exc}")
    assert not problems, "\n".join(problems)


def test_every_command_the_tool_prints_names_an_executable_and_options_that_exist(tmp_path: Path) -> None:
    commands = _printed_commands(tmp_path)
    assert any("data download" in c for c in commands) and any(" ui " in c for c in commands)
    problems = []
    for cmd in commands:
        try:
            check_command(_bare(cmd))
        except AssertionError as exc:
            problems.append(f"{cmd}\n    {exc}")
    assert not problems, "\n".join(problems)


def test_a_bad_command_is_caught() -> None:
    """The checker can fail: unknown options, groups and executables are reported."""
    for bad in (
        "distalign data list --no-such-option",
        "python launch.py -m --data-dir fixture",
        "python launch.py -m model=no_such_model",
        "mlflow ui --no-such-flag 1",
        "distalign data download no_such_dataset",
        "notatool --help",
    ):
        with pytest.raises(AssertionError):
            check_command(bad)


# --- the README's blocks, run in order in a fresh shell ---------------------------------------------------


def _checkout_copy(tmp_path: Path) -> Path:
    """The tracked files in a fresh folder (so the blocks' outputs land there), with this checkout's .venv."""
    files = (
        subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    root = tmp_path / "checkout"
    for rel in filter(None, files):
        if (REPO / rel).is_file():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, root / rel)
    (root / ".venv").symlink_to(REPO / ".venv")
    return root


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_readme_blocks_run_in_order_in_a_fresh_shell(release_dir: Path, tmp_path: Path) -> None:
    """After the first command (its .venv), every block not labelled as needing internet, keys, GPUs, a
    cluster or running a server exits 0, run one after another by one new login-free shell."""
    root = _checkout_copy(tmp_path)
    blocks = _blocks()[2:]
    run = [b for b in blocks if not any(label in b.splitlines()[0].lower() for label in NOT_RUN)]
    skipped = [b.splitlines()[0] for b in blocks if b not in run]
    assert any(RELEASE_PLACEHOLDER in b for b in run), "the offline block is run (with the real path)"
    script = "set -eo pipefail\n" + "\n".join(
        f"echo '+ block {i}' >&2\n{b.replace(RELEASE_PLACEHOLDER, str(release_dir))}"
        for i, b in enumerate(run)
    )
    env = {
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "PATH": "/usr/local/bin:/usr/bin:/bin",  # nothing of .venv until the README activates it
        "LANG": "C.UTF-8",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),  # no download from an earlier session counts
        "DISTALIGN_MODEL_CACHE": os.environ.get(
            "DISTALIGN_MODEL_CACHE", str(Path.home() / ".cache" / "distalign" / "models")
        ),
    }
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", script],
        cwd=root, env=env, capture_output=True, text=True, timeout=1100,
    )  # fmt: skip
    assert proc.returncode == 0, f"skipped: {skipped}\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    assert (root / "reproduction").is_dir() and (root / "report-smoke").is_dir()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_printed_mlflow_command_starts_the_ui(tmp_path: Path) -> None:
    """The line a sweep ends with, run from another folder by a shell without the venv on PATH, serves the
    sweep's experiment."""
    import signal
    import socket
    import time
    import urllib.request

    launch = subprocess.run(
        [sys.executable, str(REPO / "launch.py"), "-m", "experiment=smoke", "model=instant",
         "sweep.executor=inline"],
        cwd=tmp_path, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert launch.returncode == 0, launch.stderr[-3000:]
    line = next(ln for ln in launch.stdout.splitlines() if ln.startswith("Open it with:"))
    command = line.removeprefix("Open it with:").strip()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"HOME": os.environ.get("HOME", str(tmp_path)), "PATH": "/usr/bin:/bin"}
    server = subprocess.Popen(
        ["bash", "--noprofile", "--norc", "-c", f"{command} --host 127.0.0.1 --port {port} --workers 1"],
        cwd="/", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        body = ""
        deadline = time.monotonic() + 240
        url = f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search?max_results=10"
        while time.monotonic() < deadline and server.poll() is None:
            try:
                body = urllib.request.urlopen(url, timeout=5).read().decode()
                break
            except OSError:
                time.sleep(1)
        assert "distalign-smoke" in body, (
            f"the UI did not serve the sweep's experiment (exit {server.poll()})"
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()

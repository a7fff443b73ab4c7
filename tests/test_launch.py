"""``python launch.py -m ...`` end to end: Hydra composes the grid, the distalign launcher runs it on a local
Ray, every cell becomes an MLflow child run under one parent, and nothing secret is ever written."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import REPO
from tests.engines.openai_stub import OpenAIStub

CELL_METRICS = {
    "tv_mean",
    "tv_ci_low",
    "tv_ci_high",
    "alignment_mean",
    "extraction_rate",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "wall_time_s",
    "requests",
    "cache_hits",
}
ITEM_COLUMNS = {"prompt_hash", "responses", "pred_probs", "human_probs", "tv", "item_id", "group"}


#: supervision-grid launches calibrate with the linear families and 2 curve draws: the random forest grid per
#: cell and draw is the report's main cost, and every table keeps its shape (these overrides also once made
#: Hydra's job folder names, named after the overrides, too long for the file system)
QUICK_CALIBRATION = ("+calibration.params.candidates=[linear,ridge]", "+calibration.params.curve_repeats=2")


def launch(
    cwd: Path,
    *overrides: str,
    env: dict[str, str] | None = None,
    timeout: int = 900,
    executor: str = "inline",
) -> subprocess.CompletedProcess:
    """``launch.py -m`` in ``cwd``; engines run inline (no Ray start-up per test) unless the test is about Ray
    (``executor="ray"``) or its overrides set ``sweep.executor``."""
    if not any(o.lstrip("+").startswith("sweep.executor=") for o in overrides):
        overrides = (*overrides, f"sweep.executor={executor}")
    base = {k: v for k, v in os.environ.items() if k not in {"MLFLOW_TRACKING_URI", "RAY_ADDRESS"}}
    base.update({"DISTALIGN_STORE": str(cwd / "store"), "PYTHONUNBUFFERED": "1"})
    base.update(env or {})
    return subprocess.run(
        [sys.executable, str(REPO / "launch.py"), "-m", *overrides, "sweep.progress=false"],
        cwd=cwd,
        env=base,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def runs(cwd: Path, experiment: str = "distalign") -> tuple[MlflowClient, list, list]:
    client = MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no MLflow experiment {experiment!r} in {cwd}"
    all_runs = client.search_runs([exp.experiment_id], max_results=1000)
    parents = [r for r in all_runs if r.data.tags.get("distalign.kind") == "sweep"]
    children = [r for r in all_runs if r.data.tags.get("distalign.kind") == "cell"]
    return client, parents, children


@pytest.mark.slow
def test_six_cells_of_the_default_model_become_six_finished_child_runs(tmp_path: Path) -> None:
    proc = launch(
        tmp_path,
        "model=smollm2_135m",
        "method=seq,verbalize,logprobs",
        "steering=none,persona",
        "dataset.data_dir=fixture",
        "dataset.max_items=1",  # the tiny model's generation is what costs; one item shows every path
        executor="ray",  # the main job's path
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    client, parents, children = runs(tmp_path)
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert len(children) == 6
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    assert len({c.data.tags["distalign.spec_hash"] for c in children}) == 6
    combos = {(c.data.params["method.name"], c.data.params["steering.name"]) for c in children}
    assert combos == {(m, s) for m in ("seq", "verbalize", "logprobs") for s in ("none", "persona")}
    for child in children:
        assert child.info.status == "FINISHED", child.data.tags.get("distalign.error")
        assert CELL_METRICS <= set(child.data.metrics), CELL_METRICS - set(child.data.metrics)
        assert 0.0 <= child.data.metrics["tv_mean"] <= 1.0
        assert (
            child.data.metrics["tv_ci_low"]
            <= child.data.metrics["tv_mean"]
            <= child.data.metrics["tv_ci_high"]
        )
        assert child.data.metrics["requests"] > 0
        assert child.data.params["model.name"] == "smollm2_135m"
        assert child.data.tags["distalign.git_revision"]
        assert "torch" in json.loads(child.data.tags["distalign.packages"])
        names = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"items.parquet", "figures"} <= names
        local = client.download_artifacts(child.info.run_id, "items.parquet", str(tmp_path))
        items = pd.read_parquet(local)
        assert ITEM_COLUMNS <= set(items.columns)
        # "none" answers once per item and is scored against each of its groups
        assert items["item_id"].nunique() == 1 and items["group"].nunique() >= 2
    parent_artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"leaderboard.json", "report"} <= parent_artifacts
    report = {Path(a.path).name for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report.html", "report.md", "tables", "figures"} <= report
    tables = {Path(a.path).name for a in client.list_artifacts(parent.info.run_id, "report/tables")}
    # kss.csv only where both sequence and verbalize parsed well enough: the tiny model's mostly do not
    assert {"leaderboard.csv", "baselines.csv"} <= tables
    note = parent.data.tags["mlflow.note.content"].splitlines()
    # Table 1a's shape: one row for the model, one column per method
    header = next(line for line in note if line.startswith("| model |"))
    assert all(m in header for m in ("log-p", "sequence", "verbalize")), header
    assert any(line.startswith("| SmolLM2-135M | ") and "±" in line for line in note), note
    assert "mlflow ui --backend-store-uri" in proc.stdout
    assert "invented sample shipped with the package" in proc.stdout  # the demo data says what it is
    md = client.download_artifacts(parent.info.run_id, "report/report.md", str(tmp_path))
    assert "(invented sample data)" in Path(md).read_text().splitlines()[0]
    # the sweep folder holds every cell and the report the run printed
    folder = next((tmp_path / ".distalign" / "sweeps").iterdir())
    assert len(list((folder / "cells").glob("*/cell.json"))) == 6
    assert f"Report: {folder.relative_to(tmp_path)}/report/report.html" in proc.stdout


@pytest.mark.slow
def test_kambhatla2025_on_the_default_model_logs_the_calibration_table_and_figures(tmp_path: Path) -> None:
    """The supervision grid (reduced to log-probs with the base prompt on two datasets to keep CI short:
    the instant-engine test below runs every prompt type, the same code with more cells) on SmolLM2: one
    raw-vs-calibrated table over every dataset x method x prompt type with significance marks, learning
    curves and per-group figures, in the parent run."""
    proc = launch(
        tmp_path,
        "experiment=kambhatla2025",
        "model=smollm2_135m",
        "dataset=opinionqa,nyt_books",
        "method=logprobs",
        "steering=kambhatla_base",  # one prompt per question: the group's prompt asks one per group
        "dataset.data_dir=fixture",
        *QUICK_CALIBRATION,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    client, parents, children = runs(tmp_path, "kambhatla2025")
    assert len(parents) == 1 and len(children) == 2
    assert all(c.info.status == "FINISHED" for c in children), [c.data.tags for c in children]
    calibrated = {"calibrated_tv_mean", "calibrated_alignment_mean", "raw_tv_test_mean", "tv_mean"}
    assert all(calibrated <= set(c.data.metrics) for c in children)
    parent = parents[0].info.run_id
    local = client.download_artifacts(parent, "report/tables/calibration_table.csv", str(tmp_path))
    table = pd.read_csv(local, keep_default_na=False)
    cells = {(r.dataset, r.method, r.steering) for r in table.itertuples()}
    assert cells == {(d, "logprobs", "kambhatla_base") for d in ("opinionqa", "nyt_books")}
    for metric in ("alignment", "tv"):
        raw, cal = table[f"{metric}_raw"], table[f"{metric}_calibrated"]
        assert raw.between(0, 1).all() and cal.between(0, 1).all()
        assert table[f"{metric}_mark"].isin(["", "*"]).all()
        assert (table[f"{metric}_mark"] == "*").eq(table[f"{metric}_significant"]).all()
    figures = {Path(a.path).name for a in client.list_artifacts(parent, "report/figures")}
    assert {"group_effects.png", "learning_curves.png", "spread.png", "leaderboard.png"} <= figures


def _closed_port() -> int:
    """A loopback port nothing listens on (bound once by the OS, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("server", ["stub", "closed_port"])
def test_no_secret_is_written_anywhere(tmp_path: Path, server: str) -> None:
    """Fake keys (the model's API key and HF_TOKEN, a secret the engine actors are also handed) appear in no
    file of the run folder (Hydra's outputs, the MLflow store, the response store) nor of Ray's temporary
    folder for this session (its logs include runtime_env_agent.log), whether the calls succeed or fail."""
    secrets = {"DISTALIGN_TEST_KEY": "sk-distalign-test-7f3a9c1e5b", "HF_TOKEN": "hf_distalign_test_51c0d2e8"}
    ray_tmp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths are length-limited
    answer = '{"A": 40, "B": 35, "C": 25}'
    stub = None
    if server == "stub":
        stub = OpenAIStub(reply=lambda body: [answer] * int(body.get("n") or 1)).start()
    api_base = stub.base_url if stub is not None else f"http://127.0.0.1:{_closed_port()}/v1"
    try:
        try:
            proc = launch(
                tmp_path,
                "model=vllm_server",
                "model.weights=openai/stub-model",
                f"model.serving.api_base={api_base}",
                "model.serving.api_key_env=DISTALIGN_TEST_KEY",
                "model.serving.max_retries=0",
                "method=verbalize",
                "steering=persona",
                "dataset.data_dir=fixture",
                "dataset.max_items=1",
                env={**secrets, "RAY_TMPDIR": str(ray_tmp)},
                timeout=600,
                executor="ray",  # Ray's own files are searched for the key too
            )
        finally:
            if stub is not None:
                stub.stop()
        out = proc.stdout[-3000:] + proc.stderr[-5000:]
        _, _, children = runs(tmp_path)
        assert children, out
        key = secrets["DISTALIGN_TEST_KEY"]
        if stub is not None:  # the key was really used: the server saw it
            assert proc.returncode == 0, out
            auth = [r.headers.get("Authorization", r.headers.get("authorization", "")) for r in stub.received]
            assert any(key in a for a in auth)
        else:  # the actor had the key (without it the error would say the variable is not set) and failed
            errors = [c.data.tags.get("distalign.error", "") for c in children]
            assert proc.returncode != 0 and all("connection error" in e.lower() for e in errors), errors
        sessions = list((ray_tmp / "ray").glob("session_2*"))
        assert len(sessions) == 1 and (sessions[0] / "logs" / "runtime_env_agent.log").is_file()
        written = [p for root in (tmp_path, ray_tmp) for p in root.rglob("*") if p.is_file()]
        assert any(p.name == "config.yaml" for p in written) and any(p.suffix == ".parquet" for p in written)
        for name, secret in secrets.items():
            assert secret not in proc.stdout and secret not in proc.stderr, name
            leaks = [str(p) for p in written if secret.encode() in p.read_bytes()]
            assert not leaks, f"{name} written to {leaks}"
            for child in children:
                assert secret not in json.dumps([child.data.params, child.data.tags, child.data.metrics])
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.parametrize(
    ("overrides", "env", "message"),
    [
        (["model.no_such_key=1"], {}, "no_such_key"),
        (["model=claude_3_opus", "method=logprobs"], {"ANTHROPIC_API_KEY": "x"}, "logprobs"),
        (["model=gpt4", "method=verbalize"], {"OPENAI_API_KEY": ""}, "OPENAI_API_KEY"),
        (["dataset.data_dir=/nonexistent/distalign-data"], {}, "/nonexistent/distalign-data"),
        (["method=no_such_method"], {}, "no_such_method"),
    ],
)
def test_bad_configuration_fails_before_anything_starts(
    tmp_path: Path, overrides: list[str], env: dict[str, str], message: str
) -> None:
    data = [] if any(o.startswith("dataset.") for o in overrides) else ["dataset.data_dir=fixture"]
    proc = launch(tmp_path, "steering=persona", *data, *overrides, env=env, timeout=300)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert not (tmp_path / "mlflow.db").exists(), "the tracking store was opened before validation failed"
    assert "Started a local Ray instance" not in proc.stdout + proc.stderr


def test_dry_run_prints_the_plan_without_model_calls(tmp_path: Path) -> None:
    proc = launch(
        tmp_path,
        "model=gpt4,smollm2_135m",
        "method=verbalize",
        "steering=none,persona",
        "dataset.data_dir=fixture",
        "dataset.max_items=2",
        "sweep.dry_run=true",
        env={"OPENAI_API_KEY": "sk-never-used"},  # without it the dry run fails as the real run would
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "cells: 4" in proc.stdout and "after de-duplication" in proc.stdout
    gpt4 = next(line for line in proc.stdout.splitlines() if line.startswith("gpt4"))
    assert "unknown" not in gpt4  # priced from litellm's bundled table
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "store").exists()


FAST = ("model=instant", "dataset.data_dir=fixture", "dataset.max_items=2")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["+model.serving.rpmm=5"], "unknown key 'model.serving.rpmm' (known keys of model.serving: engine"),
        (["+method.parms.x=1"], "unknown key 'method.parms' (known keys of method: name, params)"),
        (["+method.params.bogus=1"], "unknown parameter 'bogus' for method 'verbalize'"),
        (["method=seq", "+method.params.seq_len=five"], "parameter 'seq_len' of method 'seq' must be int"),
        (["sweep.n_resamples=-1"], "sweep.n_resamples: must be a whole number of at least 1"),
        (["sweep.n_resamples=-1", "sweep.dry_run=true"], "sweep.n_resamples"),
        (["sweep.unparsed=ignore", "sweep.dry_run=true"], "sweep.unparsed"),
        (["steering.templates=/nonexistent/templates.yaml", "sweep.dry_run=true"], "/nonexistent/templates"),
    ],
)
def test_a_bad_key_or_setting_fails_dry_and_real_runs_with_one_line(
    tmp_path: Path, overrides: list[str], message: str
) -> None:
    proc = launch(tmp_path, *FAST, *overrides, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    assert message in proc.stderr and "Traceback" not in out, out[-3000:]
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "store").exists()


def _survey(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


SURVEY_ROWS = [
    {"item_id": f"Q{i}", "question": f"Question {i}?", "options": ["Yes", "No"], "attribute": "SEX",
     "group": "Female", "probs": [0.25 * i, 1 - 0.25 * i]}
    for i in (1, 2)
]  # fmt: skip


def test_a_dry_run_whose_cells_cannot_be_planned_fails(tmp_path: Path) -> None:
    """Few-shot prompts need similar items; a survey without them plans no prompt, so the dry run says so
    and exits non-zero, as the real run would fail those cells."""
    path = _survey(tmp_path / "town.jsonl", SURVEY_ROWS)
    proc = launch(
        tmp_path, "model=instant", "dataset=custom", f"dataset.path={path}", "steering=few_shot",
        "sweep.dry_run=true", timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "FAILED few_shot" in proc.stdout and "few-shot prompt needs examples" in proc.stdout
    assert "1 cell(s) could not be planned" in proc.stderr and "Traceback" not in proc.stderr


def test_a_survey_that_is_not_utf8_fails_the_dry_run_with_file_and_byte(tmp_path: Path) -> None:
    path = _survey(tmp_path / "town.jsonl", SURVEY_ROWS)
    path.write_bytes(path.read_bytes().replace(b"Question 2", b"Caf\xe9 2"))
    proc = launch(tmp_path, "model=instant", "dataset=custom", f"dataset.path={path}", "sweep.dry_run=true")
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("distalign:")]
    assert str(path) in line and "line 2" in line and "0xe9" in line and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("override", "hint"),
    [
        ("sweep.ray_address=127.0.0.1:{port}", "ray start --head"),
        ("sweep.tracking_uri=http://127.0.0.1:{port}", "mlflow server"),
    ],
)
def test_an_unreachable_cluster_or_tracking_server_fails_before_anything_starts(
    tmp_path: Path, override: str, hint: str
) -> None:
    """Ray would retry "Failed to connect to GCS" for minutes, MLflow its HTTP calls: instead one message
    naming the address and what to start, before a run is created or a cell planned."""
    setting = override.format(port=_closed_port())
    proc = launch(tmp_path, *FAST, setting, timeout=300, executor="ray")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("distalign:")]
    assert setting.split("=", 1)[1] in line and hint in line, line
    assert "Traceback" not in out and "Failed to connect" not in out
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / ".distalign").exists()


@contextlib.contextmanager
def _listener(kind: str) -> Iterator[int]:
    """A loopback port that accepts connections but is no Ray cluster: a socket that never answers, or a
    gRPC server without Ray's services."""
    if kind == "silent":
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen(16)
            yield int(server.getsockname()[1])
        return
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port
    finally:
        server.stop(None)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "message"),
    [("silent", "gave no Ray answer"), ("grpc_not_ray", "not a Ray GCS")],
)
def test_an_address_where_something_else_listens_is_one_message(
    tmp_path: Path, kind: str, message: str
) -> None:
    """A typo'd port, a firewall or another service: ray.init would wait without end; the sweep asks the
    GCS for its cluster id first and fails before anything starts."""
    with _listener(kind) as port:
        proc = launch(tmp_path, *FAST, f"sweep.ray_address=127.0.0.1:{port}", timeout=300, executor="ray")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("distalign:")]
    assert f"127.0.0.1:{port}" in line and message in line, line
    assert "Traceback" not in out, out[-3000:]
    assert not (tmp_path / "mlflow.db").exists()


@pytest.mark.parametrize("store", ["under_a_file", "not_sqlite"])
def test_an_unusable_tracking_store_is_one_message(tmp_path: Path, store: str) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("my notes\n")
    uri = f"sqlite:///{blocker / 'x.db'}" if store == "under_a_file" else f"sqlite:///{blocker}"
    proc = launch(tmp_path, *FAST, f"sweep.tracking_uri={uri}", timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("distalign:")]
    assert uri in line and "sweep.tracking_uri" in line and "Traceback" not in out
    assert blocker.read_text() == "my notes\n"


def test_info_works_with_multirun(tmp_path: Path) -> None:
    proc = launch(tmp_path, "--info", "plugins", *FAST, "method=seq,verbalize", timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "DistalignLauncher" in proc.stdout and "Traceback" not in proc.stderr
    assert not (tmp_path / "mlflow.db").exists()


def _processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that mention ``text`` (Ray's processes name their temp folder)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    found = []
    if psutil is not None:
        for p in psutil.process_iter(["cmdline", "status"]):
            cmd = " ".join(p.info["cmdline"] or [])
            if text in cmd and p.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(cmd)
        return found
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            found.append(cmd)
    return found


@pytest.mark.slow
@pytest.mark.parametrize(
    ("when", "signum"),
    [
        ("after_a_cell", signal.SIGINT),
        ("after_a_cell", signal.SIGTERM),
        ("ray_starting", signal.SIGINT),
        ("ray_starting", signal.SIGTERM),
        ("composing", signal.SIGINT),
    ],
)
def test_an_interrupted_sweep_stops_cleanly(tmp_path: Path, when: str, signum: int) -> None:
    """Ctrl-C or SIGTERM at any point: exit 130 with one line saying how to resume, no traceback; the
    parent run KILLED, finished cells FINISHED, and no process of the Ray it started left behind."""
    ray_tmp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths are length-limited
    env = {k: v for k, v in os.environ.items() if k not in {"MLFLOW_TRACKING_URI", "RAY_ADDRESS"}}
    env.update(
        DISTALIGN_STORE=str(tmp_path / "store"),
        PYTHONUNBUFFERED="1",
        RAY_TMPDIR=str(ray_tmp),
    )
    cmd = [
        sys.executable, str(REPO / "launch.py"), "-m", *FAST, "method=seq,verbalize,logprobs",
        "steering=none,persona", "model.serving.batch_size=1", "model.serving.delay_s=0.5",
        "sweep.progress=false",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # as from a terminal: a test runner started in the background passes SIGINT on as ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        if when == "composing":
            assert proc.stdout is not None
            lines = iter(proc.stdout.readline, "")
            head = [next(line for line in lines if "Composing" in line)]
        else:
            head = []
            ready = {
                "after_a_cell": lambda: any(tmp_path.glob(".distalign/sweeps/*/cells/*/cell.json")),
                "ray_starting": lambda: any(ray_tmp.glob("ray/session_2*")),
            }[when]
            while not ready() and proc.poll() is None:
                time.sleep(0.05)
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=300)
        out = "".join(head) + out
        assert proc.returncode == 130, out[-3000:] + err[-5000:]
        assert "Traceback" not in out + err, err[-5000:]
        said = [line for line in (out + err).splitlines() if "interrupted" in line.lower()]
        assert len(said) == 1, said
        assert said[0] in (
            "distalign: interrupted; finished cells are kept: run the same command again to resume",
            "distalign: interrupted before the sweep started; nothing was run",
        )
        if when != "composing":
            assert "resume" in said[0]
            _, parents, children = runs(tmp_path)
            assert [p.info.status for p in parents] == ["KILLED"]
            assert all(c.info.status == "FINISHED" for c in children), [c.info.status for c in children]
            if when == "after_a_cell":
                assert children
        # Ray's processes may take a few seconds to exit after the driver: wait up to 10 s for them to go,
        # then 1 s more, so that one coming back is caught
        deadline = time.monotonic() + 10
        while _processes_mentioning(str(ray_tmp)) and time.monotonic() < deadline:
            time.sleep(0.25)
        time.sleep(1)
        assert not _processes_mentioning(str(ray_tmp)), _processes_mentioning(str(ray_tmp))
    finally:
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.slow
def test_kambhatla2025_on_the_instant_engine_gives_every_table_and_figure_of_the_paper(
    tmp_path: Path,
) -> None:
    """Every answer format of the supervision protocol (index answers, percentage lists, <ANS_START>
    markers for CoT) is parsed, so the grid runs end to end, and the report holds the shapes of Tables 1,
    2/4 (triples with their ANOVA), 3, 5 and 17 and Figures 2 and 3."""
    proc = launch(
        tmp_path,
        "experiment=kambhatla2025",
        "model=instant",
        "dataset=opinionqa",
        "method=verbalize,self_random,logprobs",
        # the few-shot steering asks only the calibration's test questions (1 of these 12), too few for its
        # own 80/10/10 calibration split: it needs a survey of 30 questions or more
        "steering=kambhatla_base,kambhatla_base_cot,kambhatla_sd,kambhatla_sd_cot",
        "dataset.data_dir=fixture",
        "dataset.max_items=12",
        *QUICK_CALIBRATION,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    client, parents, children = runs(tmp_path, "kambhatla2025")
    assert len(children) == 12 and all(c.info.status == "FINISHED" for c in children)
    assert all(c.data.metrics["extraction_rate"] == 1.0 for c in children)
    parent = parents[0].info.run_id
    tables = {Path(a.path).name for a in client.list_artifacts(parent, "report/tables")}
    wanted = ["calibration_table", "triple_anova", "triple_pairs", "group_effects", "few_example_groups",
              "extraction_rates", "spread", "learning_curves"]  # fmt: skip
    assert {f"{t}.csv" for t in wanted} <= tables, tables
    local = client.download_artifacts(parent, "report/tables/triple_anova.csv", str(tmp_path))
    anova = pd.read_csv(local)
    # per method: base vs CoT and sd vs CoT, each with the original and the calibrated
    assert len(anova) == 6 and set(anova["variant"]) == {"CoT"}
    assert set(anova["steering"]) == {"kambhatla_base", "kambhatla_sd"}
    figures = {Path(a.path).name for a in client.list_artifacts(parent, "report/figures")}
    assert {"spread.png", "learning_curves.png", "group_effects.png"} <= figures


@pytest.mark.slow
def test_kambhatla2025_few_shot_triples_on_released_items(tmp_path: Path, release_dir: Path) -> None:
    """The few-shot variation (Table 4's triples) needs a survey large enough for its own calibration split:
    30 released OpinionQA questions give its prompts five demonstrations from the calibration examples and
    its triple (original | few-shot | calibrated) an ANOVA and paired tests."""
    proc = launch(
        tmp_path,
        "experiment=kambhatla2025",
        "model=instant",
        "dataset=opinionqa",
        f"dataset.data_dir={release_dir}",
        "dataset.max_items=30",
        "method=verbalize",
        "steering=kambhatla_sd,kambhatla_sd_few_shot",
        *QUICK_CALIBRATION,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    client, parents, children = runs(tmp_path, "kambhatla2025")
    assert len(children) == 2 and all(c.data.metrics["extraction_rate"] == 1.0 for c in children)
    parent = parents[0].info.run_id
    anova = pd.read_csv(client.download_artifacts(parent, "report/tables/triple_anova.csv", str(tmp_path)))
    assert list(anova["variant"]) == ["few-shot"] and list(anova["conditions"]) == [
        "original | few-shot | calibrated"
    ]
    pairs = pd.read_csv(client.download_artifacts(parent, "report/tables/triple_pairs.csv", str(tmp_path)))
    assert len(pairs) == 3 and set(pairs["variant"]) == {"few-shot"}

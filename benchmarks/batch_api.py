"""Batch mode's own cost to the driver: the meister2024 grid for ``gpt4`` (27 cells) through the loopback
OpenAI Files + Batches server (tests/engines/batch_stub.py, run in another process so that its work is not
the driver's) with ``model.serving.mode=batch``.

Timed: the batch phase of a sweep, which is all the driver does for a batch-mode model: planning every
cell, looking each request up in the store, building and uploading the JSONL files, polling, downloading
and ingesting the results into the store. Then the rest of the sweep (cells answered from the store,
parsed, scored, written) is timed apart. Printed: wall and CPU seconds, the driver's peak memory (max RSS),
lines lost (requests without a stored result afterwards: target 0) and lines sent twice (target 0).
Targets: the batch phase <= 60 s and <= 1 GB on 2 cores.

    python benchmarks/batch_api.py [--data-dir DIR] [--max-items N]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.sweep_overhead import DATASETS, METHODS, STEERINGS, _default_data_dir  # noqa: E402
from distalign.engines.store import ResponseStore  # noqa: E402
from distalign.records.config import (  # noqa: E402
    CellConfig,
    DatasetConfig,
    MethodConfig,
    ModelConfig,
    SteeringConfig,
    SweepSettings,
    serving,
)
from distalign.sweep.batches import run_batches  # noqa: E402
from distalign.sweep.cells import as_cell  # noqa: E402
from distalign.sweep.runner import run_sweep  # noqa: E402
from distalign.sweep.trackers import NullTracker  # noqa: E402
from distalign.sweep.validate import validate_cells  # noqa: E402

TARGET_S = 60.0
TARGET_MB = 1024.0


def peak_mb() -> float:
    """This process's peak resident memory (``VmHWM``: unlike ``ru_maxrss``, not inherited across the
    ``exec`` that started it, so a large parent such as a test runner does not count)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _serve(queue: mp.Queue) -> None:
    from tests.engines.batch_stub import BatchStub

    stub = BatchStub().start()
    queue.put(stub.base_url)
    while True:
        time.sleep(3600)


def _stats(base_url: str) -> dict:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/stats") as r:
        return json.loads(r.read())


def grid(data_dir: str, api_base: str, max_items: int | None) -> list[CellConfig]:
    model = ModelConfig(
        name="gpt4",
        weights="openai/gpt-4-0613",
        serving=serving(
            "litellm", api_base=api_base, api_key_env="OPENAI_API_KEY", mode="batch", batch_poll_s=0.2
        ),
    )
    return [
        CellConfig(
            model=model,
            dataset=DatasetConfig(name=d, data_dir=data_dir, max_items=max_items),
            steering=SteeringConfig(name=s, protocol="benchmark", steering=s),
            method=MethodConfig(name=m),
        )
        for d in DATASETS
        for s in STEERINGS
        for m in METHODS
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=_default_data_dir())
    parser.add_argument("--max-items", type=int, default=None)
    args = parser.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "sk-benchmark-not-a-key")
    ctx = mp.get_context("spawn")
    queue: mp.Queue = ctx.Queue()
    server = ctx.Process(target=_serve, args=(queue,), daemon=True)
    server.start()
    base_url = queue.get(timeout=600)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = SweepSettings(
                store=f"{tmp}/store", output_dir=f"{tmp}/sweeps", progress=False, n_resamples=200
            )
            configs = grid(args.data_dir, base_url, args.max_items)
            cells = validate_cells([as_cell(c) for c in configs]).cells
            store = ResponseStore(settings.store)
            rss0 = peak_mb()
            t, c = time.perf_counter(), time.process_time()
            report = run_batches(cells, settings, store, Path(tmp) / "sweeps" / "bench")
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            peak = peak_mb()
            wanted = {k for reqs in report.requests.values() for k in reqs}
            lost = len(wanted) - len(ResponseStore(settings.store).get_many(list(wanted)))
            stub = _stats(base_url)
            print(
                f"data: {args.data_dir}  cells: {len(cells)}  cores: {os.cpu_count()}  "
                f"load: {os.getloadavg()[0]:.2f}"
            )
            print(
                f"requests: {len(wanted)}  batches: {report.submitted}  lines sent: {stub['lines']}  "
                f"collected: {report.collected}"
            )
            print(
                f"batch phase: wall {wall:.1f} s  cpu {cpu:.1f} s  peak memory {peak:.0f} MB "
                f"(at start {rss0:.0f} MB)"
            )
            print(
                f"lines lost: {lost}  lines sent twice: {stub['twice']}  "
                f"synchronous calls: {stub['sync_calls']}"
            )
            t = time.perf_counter()
            out = run_sweep(configs, settings, NullTracker(), folder=Path(tmp) / "sweeps" / "bench")
            rest = time.perf_counter() - t
            after = _stats(base_url)
            print(
                f"rest of the sweep (from the store): {rest:.1f} s, "
                f"{int(out.totals['finished'])}/{int(out.totals['cells'])} "
                f"cells finished, lines sent by it: {after['lines'] - stub['lines']}"
            )
            ok = wall <= TARGET_S and peak <= TARGET_MB and lost == 0 and stub["twice"] == 0
            print(
                f"verdict: batch phase {wall:.1f} s (target <= {TARGET_S:.0f}), "
                f"{peak:.0f} MB (target <= {TARGET_MB:.0f}), "
                f"lost {lost}, twice {stub['twice']}: {'PASS' if ok else 'FAIL'}"
            )
            return 0 if ok else 1
    finally:
        server.terminate()
        server.join(timeout=5)


if __name__ == "__main__":
    sys.exit(main())

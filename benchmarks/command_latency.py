"""Wall time of short commands with CPython's collector as it comes and as ``distalign.cli.collector`` sets
it (fewer young-generation collections; the objects left at exit frozen, so shutdown does not walk them).

Each command runs in a fresh process and a fresh folder (its own response store and MLflow store), the two
settings taking turns; the figure is the median of ``--repeat`` runs of each. The target is a tuned/default
ratio <= 0.80 for the sweep (20% faster).

    python benchmarks/command_latency.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.80

#: runs a command in this process, with the collector tuned (as shipped) or left as CPython sets it
HARNESS = """
import runpy, sys
import distalign.cli.collector as collector
if sys.argv[1] == "default":
    collector.tune_for_a_command = lambda: None
kind, argv = sys.argv[2], sys.argv[3:]
if kind == "launch":
    sys.argv = [argv[0], *argv[1:]]
    runpy.run_path(argv[0], run_name="__main__")
else:
    from distalign.cli import main
    sys.argv = ["distalign", *argv]
    sys.exit(main())
"""

COMMANDS: dict[str, tuple[str, list[str]]] = {
    "sweep (launch.py -m experiment=smoke, inline)": (
        "launch",
        [str(ROOT / "launch.py"), "-m", "experiment=smoke", "sweep.executor=inline", "sweep.progress=false"],
    ),
    "distalign baselines --data-dir fixture": (
        "cli",
        ["baselines", "--data-dir", "fixture", "--json", "b.json"],
    ),
}


def _once(setting: str, kind: str, argv: list[str]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DISTALIGN_STORE": str(Path(tmp) / "store"), "PYTHONPATH": str(ROOT)}
        env.pop("MLFLOW_TRACKING_URI", None)
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", HARNESS, setting, kind, *argv],
            cwd=tmp, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        wall = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} ({setting}) failed:\n{out.stderr[-3000:]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="runs of each command with each setting")
    args = ap.parse_args()
    load = os.getloadavg()
    print(f"{args.repeat} runs of each, settings taking turns; load average before {load[0]:.2f}")
    ratios = {}
    for label, (kind, argv) in COMMANDS.items():
        times: dict[str, list[float]] = {"default": [], "tuned": []}
        for _ in range(args.repeat):
            for setting in times:
                times[setting].append(_once(setting, kind, argv))
        default, tuned = (statistics.median(times[s]) for s in ("default", "tuned"))
        ratios[label] = tuned / default
        print(
            f"{label}: default {default:.2f} s ({min(times['default']):.2f}-{max(times['default']):.2f}), "
            f"tuned {tuned:.2f} s ({min(times['tuned']):.2f}-{max(times['tuned']):.2f}): "
            f"ratio {tuned / default:.2f}"
        )
    sweep = next(iter(ratios.values()))
    verdict = "meets" if sweep <= TARGET else "misses"
    print(f"sweep tuned/default: {sweep:.2f}; {verdict} the target {TARGET:.2f}")
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

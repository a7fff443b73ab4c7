"""Engine efficiency: the meister2024 grid's requests through a sweep versus straight to the library.

The requests are the project's own: the meister2024 grid (3 datasets x steering none/persona/few_shot x
option log-probs / 30-letter sequences / verbalized with n=3) on the first ``--items`` items of each
dataset, planned by ``distalign.sweep.plan.plan_cell``. For each engine they are answered twice:

* **sweep**: ``run_sweep`` with the engine's model config (``smollm2_135m`` for hf,
  ``smollm2_135m_vllm`` for vllm), a fresh response store and a no-op tracker; the engine runs in its Ray
  actor. The time counted runs from the moment the actor's model had loaded (the engine reports it,
  ``SweepOutcome.engine_stats``) to the moment ``run_sweep`` returned, scoring and recording included.
* **raw**: the same distinct requests in this process, rendered with the tokenizer's chat template;
  vllm: one ``vllm.LLM.generate`` call with every request at once (the way vLLM schedules best);
  hf: the plain transformers loops of ``distalign.engines.hf_reference`` (length-sorted left-padded
  batches of the engine's ``batch_size``, last-position forward pass for log-probs, ``model.generate`` per
  group of equal sampling settings).

Model loading is timed apart on both sides and not counted. Both sides use the same number of threads
(``--threads``, default 1 as in the shipped configs): the sweep's model config gets ``serving.num_cpus``
set to it (Ray then sets ``OMP_NUM_THREADS`` in the actor, which torch and vLLM follow) and the raw side
sets the same. Verbalize runs with ``max_tokens`` 32 unless told (``--verbalize-max-tokens``; the
method's own default is 200) so that a run takes minutes on 2 cores.

Prints requests/s and output tokens/s of each side, their
ratio, where the sweep's time went (engine busy, idle between batches, after the last batch) and the load
average. ``api`` (in ``--engines`` by default) adds the API callers' figure: the steady phase of
``benchmarks/api_rate.py`` (one account at ``--api-rpm`` for ``--api-seconds`` against a loopback OpenAI
server answering in 200-800 ms), its achieved rate and the ratio to the configured one.

    python benchmarks/engine_efficiency.py [--items 1] [--engines hf,vllm,api] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from distalign.engines import hf_reference
from distalign.engines.store import ResponseStore
from distalign.records.config import (
    CellConfig,
    DatasetConfig,
    MethodConfig,
    ModelConfig,
    SteeringConfig,
    SweepSettings,
)
from distalign.records.engine import GenerateRequest, GenerateResult, OptionLogprobRequest
from distalign.sweep.cells import resolve
from distalign.sweep.plan import plan_cell
from distalign.sweep.runner import run_sweep
from distalign.sweep.trackers import NullTracker

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("opinionqa", "nyt_books", "global_opinions")
STEERINGS = ("none", "persona", "few_shot")
MODELS = {"hf": "smollm2_135m", "vllm": "smollm2_135m_vllm"}
TARGET = 0.90


def _default_data_dir() -> str:
    shared = ROOT.parent / "shared" / "data" / "meister2024"
    if os.environ.get("DISTALIGN_DATA_DIR"):
        return os.environ["DISTALIGN_DATA_DIR"]
    return str(shared) if (shared / "opinions_qa").is_dir() else "fixture"


def _conf(group: str, name: str, schema: type) -> Any:
    from omegaconf import OmegaConf

    from distalign.records.config import from_config

    return from_config(schema, OmegaConf.load(ROOT / "conf" / group / f"{name}.yaml"))


def grid(
    engine: str,
    data_dir: str,
    items: int,
    threads: int,
    verbalize_tokens: int,
    datasets: Sequence[str] = DATASETS,
    steerings: Sequence[str] = STEERINGS,
    batch_size: int | None = None,
) -> list[CellConfig]:
    model: ModelConfig = _conf("model", MODELS[engine], ModelConfig)
    model = replace(model, serving=replace(model.serving, num_cpus=float(threads)))
    if batch_size is not None:
        model = replace(model, serving=replace(model.serving, batch_size=batch_size))
    methods = [
        MethodConfig(name="logprobs"),
        MethodConfig(name="seq"),
        MethodConfig(name="verbalize", params={"n": 3, "max_tokens": verbalize_tokens}),
    ]
    return [
        CellConfig(
            model=model,
            dataset=DatasetConfig(name=d, data_dir=data_dir, max_items=items),
            steering=_conf("steering", s, SteeringConfig),
            method=m,
        )
        for d in datasets
        for s in steerings
        for m in methods
    ]


@dataclass
class Side:
    label: str
    seconds: float
    requests: int
    tokens: int
    load_s: float
    cpu_s: float  # CPU time of the process(es) doing the work: robust to other load on a shared machine
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"  {self.label:<6} {self.requests} requests, {self.tokens:,} output tokens in "
            f"{self.seconds:.1f} s: {self.requests / self.seconds:.2f} requests/s, "
            f"{self.tokens / self.seconds:.1f} tokens/s "
            f"(load {self.load_s:.1f} s, not counted); CPU {self.cpu_s:.1f} s"
        )


def _engine_stats(stats: Any) -> dict[str, Any] | None:
    """The engine's own ``stats()`` (with ``ready_at``) inside the sweep's per-pool actor stats."""
    if isinstance(stats, dict):
        if "ready_at" in stats:
            return stats
        values: Any = stats.values()
    elif isinstance(stats, list | tuple):
        values = stats
    else:
        return None
    for value in values:
        found = _engine_stats(value)
        if found is not None:
            return found
    return None


def _output_tokens(results: dict[str, Any]) -> int:
    return sum(r.usage.completion_tokens for r in results.values() if isinstance(r, GenerateResult))


def sweep_side(cells: list[CellConfig], keys: list[str], tmp: Path) -> Side:
    # each engine's sweep gets its own store and sweep folder: a cell's identity leaves the engine out,
    # so a shared folder would let the second engine resume the first one's cells and run nothing
    folder = tmp / f"sweep-{cells[0].model.serving.engine}"
    store = folder / "store"
    settings = SweepSettings(store=str(store), output_dir=str(folder / "sweeps"), progress=False)
    driver_cpu = time.process_time()
    out = run_sweep(cells, settings, NullTracker())
    end, driver_cpu = time.time(), time.process_time() - driver_cpu
    t = out.totals
    if t["finished"] != len(cells):
        raise SystemExit(f"sweep finished {int(t['finished'])} of {len(cells)} cells: {out.failures[:3]}")
    stats = _engine_stats(out.engine_stats)
    if stats is None:
        raise SystemExit("the engine reported no ready_at in SweepOutcome.engine_stats")
    results = ResponseStore(store).get_many(keys)
    failed = [k for k in keys if k not in results]
    if failed:
        raise SystemExit(f"{len(failed)} of {len(keys)} requests have no stored answer")
    seconds = end - stats["ready_at"]
    cpu = stats["cpu_s"] + driver_cpu
    side = Side("sweep", seconds, int(t["requests_sent"]), _output_tokens(results), stats["load_s"], cpu)
    spans = sorted(stats["spans"], key=lambda s: s[2])
    if spans:
        idle = sum(max(0.0, b[2] - a[3]) for a, b in zip(spans, spans[1:], strict=False))
        sizes: dict[str, list[int]] = {}
        for kind, n, _, _ in spans:
            sizes.setdefault(kind, []).append(n)
        per_kind = ", ".join(f"{k} {len(v)} x {sum(v) / len(v):.0f}" for k, v in sizes.items())
        side.notes += [
            f"engine calls: {per_kind} requests (mean)",
            f"engine busy {stats['busy_s']:.1f} s; before its first call "
            f"{spans[0][2] - stats['ready_at']:.1f} s, idle between calls {idle:.1f} s, "
            f"after its last call {end - spans[-1][3]:.1f} s "
            f"(scoring, recording, shutdown)",
        ]
    side.notes.append(
        f"sweep wall {t['wall_time_s']:.1f} s in all (plan {t['plan_s']:.1f} s, parse+score "
        f"{t['parse_score_s']:.1f} s), {int(t['requests_sent'])} requests sent; CPU: engine actor "
        f"{stats['cpu_s']:.1f} s in its calls, driver {driver_cpu:.1f} s"
    )
    return side


def _rendered(tokenizer: Any, request: Any) -> list[int]:
    text = hf_reference.render(tokenizer, request.messages, request.assistant_prefix)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _letters(tokenizer: Any, allowed: Any) -> list[int]:
    return hf_reference.single_token_ids(tokenizer, allowed, spaced=False)


def raw_vllm(requests: list[Any], folder: str, threads: int, batch_size: int) -> list[Side]:
    """All requests in one ``generate`` call; then again in the sweep's batches (per kind, in plan order,
    ``batch_size`` each, one call after the other), which separates the cost of how the sweep batches from
    the cost of the sweep itself."""
    from distalign.engines.vllm_engine import CPU_ENV_DEFAULTS

    for key, value in CPU_ENV_DEFAULTS.items():  # the engine's own settings, so both run alike
        os.environ.setdefault(key, value)
    # Ray sets OMP_NUM_THREADS=num_cpus in the engine actor before torch starts, and vLLM keeps it. Here
    # torch is already imported (its pool sized to every core), so the variable alone is not enough.
    import torch

    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    t = time.perf_counter()
    llm = LLM(
        model=folder,
        dtype="float32",
        gpu_memory_utilization=0.3,
        enforce_eager=True,
        generation_config="vllm",
        seed=0,
    )
    load_s = time.perf_counter() - t
    tok = llm.get_tokenizer()

    def prepare(r: Any) -> tuple[Any, Any]:
        prompt = TokensPrompt(prompt_token_ids=_rendered(tok, r))
        if isinstance(r, OptionLogprobRequest):
            ids = hf_reference.single_token_ids(tok, r.candidates, spaced=True)
            return prompt, SamplingParams(
                max_tokens=1, temperature=0.0, logprob_token_ids=ids, detokenize=False
            )
        p = r.params
        allowed = None if p.allowed is None else _letters(tok, p.allowed)
        return prompt, SamplingParams(
            n=p.n, temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens,
            min_tokens=p.min_tokens, allowed_token_ids=allowed, seed=p.seed,
        )  # fmt: skip

    def run(batches: list[list[Any]], label: str, note: str) -> Side:
        start, cpu = time.perf_counter(), time.process_time()
        tokens = 0
        for batch in batches:
            prompts, params = zip(*(prepare(r) for r in batch), strict=True)
            outputs = llm.generate(list(prompts), list(params), use_tqdm=False)
            tokens += sum(
                len(o.token_ids)
                for r, out in zip(batch, outputs, strict=True)
                if isinstance(r, GenerateRequest)
                for o in out.outputs
            )
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        return Side(label, seconds, len(requests), tokens, load_s, cpu, [note])

    by_kind: list[list[Any]] = []
    for kind in (OptionLogprobRequest, GenerateRequest):
        mine = [r for r in requests if isinstance(r, kind)]
        by_kind += [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]
    sides = [
        run([requests], "raw", "one LLM.generate call with every request"),
        run(
            by_kind,
            "raw-b",
            f"{len(by_kind)} LLM.generate calls, one per sweep batch (per kind, <= {batch_size})",
        ),
    ]
    return sides


def raw_hf(requests: list[Any], folder: str, batch_size: int, threads: int) -> Side:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    t = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    load_s = time.perf_counter() - t
    start, cpu = time.perf_counter(), time.process_time()
    logp = [r for r in requests if isinstance(r, OptionLogprobRequest)]
    gen = [r for r in requests if isinstance(r, GenerateRequest)]
    hf_reference.option_logprobs(
        model,
        tok,
        [_rendered(tok, r) for r in logp],
        [hf_reference.single_token_ids(tok, r.candidates, spaced=True) for r in logp],
        batch_size,
    )
    settings = [
        hf_reference.Generation(
            temperature=r.params.temperature,
            top_p=r.params.top_p,
            max_new_tokens=r.params.max_tokens,
            min_new_tokens=r.params.min_tokens,
            n=r.params.n,
            allowed=None
            if r.params.allowed is None
            else tuple(hf_reference.single_token_ids(tok, r.params.allowed, False)),
        )
        for r in gen
    ]
    produced = hf_reference.generate(model, tok, [_rendered(tok, r) for r in gen], settings, batch_size)
    seconds = time.perf_counter() - start
    note = f"transformers loops, batches of {batch_size} sequences, {threads} threads"
    cpu = time.process_time() - cpu
    return Side("raw", seconds, len(requests), sum(produced), load_s, cpu, [note])


def _api_rate(rpm: float, seconds: float, work: Path) -> bool:
    """The steady phase of benchmarks/api_rate.py (this script's folder is on ``sys.path``)."""
    import api_rate

    print(
        f"\napi callers: one account at {rpm:g} requests/min for {seconds:g} s, loopback OpenAI server",
        flush=True,
    )
    settings = SweepSettings(store=str(work / "api-store"), progress=False, n_resamples=100)
    return api_rate.steady(rpm, seconds, work, settings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1, help="items per dataset")
    parser.add_argument("--engines", default="hf,vllm,api", help="comma-separated: hf, vllm, api")
    parser.add_argument("--api-rpm", type=float, default=600.0, help="api: configured requests per minute")
    parser.add_argument("--api-seconds", type=float, default=120.0, help="api: length of the measurement")
    parser.add_argument("--data-dir", default=_default_data_dir())
    parser.add_argument(
        "--threads", type=int, default=1, help="threads on both sides (the shipped configs reserve 1 CPU)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="model.serving.batch_size (default: the model config's)"
    )
    parser.add_argument(
        "--verbalize-max-tokens",
        type=int,
        default=32,
        help="verbalize's max_tokens (the method's own default is 200; 32 keeps a run to minutes on 2 cores)",
    )
    parser.add_argument("--datasets", default=",".join(DATASETS), help="a subset, comma-separated")
    parser.add_argument("--steerings", default=",".join(STEERINGS), help="a subset, comma-separated")
    args = parser.parse_args()
    datasets = [d for d in args.datasets.split(",") if d]
    steerings = [s for s in args.steerings.split(",") if s]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = sorted(set(engines) - set(MODELS) - {"api"})
    if unknown:
        parser.error(f"unknown engines {unknown}; choose from {sorted(MODELS) + ['api']}")

    import ray

    from distalign.engines.model_prep import prepare_default_model

    folder = str(prepare_default_model())
    print(f"data: {args.data_dir}  items per dataset: {args.items}  threads: {args.threads}  "
          f"batch size: {args.batch_size or 'as configured'}  cores: {os.cpu_count()}")  # fmt: skip
    t = time.perf_counter()
    ray.init(
        address="local",
        num_cpus=max(args.threads, os.cpu_count() or 1),
        include_dashboard=False,
        object_store_memory=256 * 2**20,
        logging_level="WARNING",
    )
    print(f"ray start {time.perf_counter() - t:.1f} s (not counted)")
    verdicts = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for engine in engines:
                if engine == "api":
                    verdicts.append(
                        "meets" if _api_rate(args.api_rpm, args.api_seconds, Path(tmp)) else "misses"
                    )
                    continue
                cells = grid(
                    engine,
                    args.data_dir,
                    args.items,
                    args.threads,
                    args.verbalize_max_tokens,
                    datasets,
                    steerings,
                    args.batch_size,
                )
                distinct: dict[str, Any] = {}
                for cell in cells:  # the sweep's own planning: every distinct request once
                    distinct.update(plan_cell(resolve(cell)).requests)
                keys, requests = list(distinct), list(distinct.values())
                kinds = {
                    "option log-probs": sum(isinstance(r, OptionLogprobRequest) for r in requests),
                    "generations": sum(isinstance(r, GenerateRequest) for r in requests),
                }
                model = cells[0].model
                print(
                    f"\n{engine} engine (model {MODELS[engine]}): {len(cells)} cells, "
                    f"{len(requests)} distinct requests ({', '.join(f'{v} {k}' for k, v in kinds.items())}), "
                    f"serving.batch_size {model.serving.batch_size}",
                    flush=True,
                )
                load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
                sweep = sweep_side(cells, keys, Path(tmp))
                print(sweep.line(), flush=True)
                for note in sweep.notes:
                    print(f"         {note}")
                if engine == "vllm":
                    raws = raw_vllm(requests, folder, args.threads, model.serving.batch_size)
                else:
                    raws = [raw_hf(requests, folder, model.serving.batch_size, args.threads)]
                for raw in raws:
                    print(raw.line(), flush=True)
                    for note in raw.notes:
                        print(f"         {note}")
                raw = raws[0]
                ratio_r = (sweep.requests / sweep.seconds) / (raw.requests / raw.seconds)
                ratio_t = (sweep.tokens / sweep.seconds) / max(raw.tokens / raw.seconds, 1e-9)
                verdict = "meets" if ratio_r >= TARGET else "misses"
                after = " / ".join(f"{x:.2f}" for x in os.getloadavg())
                print(
                    f"  {engine}: sweep/raw = {ratio_r:.2f} in requests/s, {ratio_t:.2f} in output tokens/s; "
                    f"{verdict} the {TARGET:.0%} target  (load average 1/5/15 min before {load}, "
                    f"after {after})",
                    flush=True,
                )
                verdicts.append(verdict)
                print(f"  {engine}: CPU time raw/sweep = {raw.cpu_s / sweep.cpu_s:.2f}", flush=True)
                for other in raws[1:]:
                    print(
                        f"  {engine}: sweep/{other.label} = {other.seconds / sweep.seconds:.2f} requests/s, "
                        f"CPU time {other.label}/sweep = {other.cpu_s / sweep.cpu_s:.2f}",
                        flush=True,
                    )
    finally:
        ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

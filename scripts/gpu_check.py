"""GPU check of the ``hf`` engine: runs where only torch (CUDA), transformers and numpy are installed.

The default model's architecture (its ``config.json``) and tokenizer travel in a small folder (a few MB,
``--pack`` writes it from the prepared default model); the weights are drawn at random on the spot, since
throughput and batching agreement do not depend on what the weights learned. For bfloat16 and float32:

* option log-probs, batched: the engine against a plain transformers loop (``engines.hf_reference``),
  requests per second and their ratio; the two must agree;
* option log-probs one request at a time: the engine's batched option distributions must match them
  within a tolerance per dtype (left padding and batch shape change the kernels' rounding, not the math);
* batched sampling (a fixed number of new tokens, with and without ``n``): engine versus
  ``model.generate``, output tokens per second and their ratio.

``--cpu`` runs the same on the CPU with a tiny model of the same kind (hidden size 64, 2 layers) so the
check is exercised where no GPU is (tests/scripts/test_gpu_check.py). Exit status 0 when every agreement
check passes, 1 when one fails; speed ratios are reported, not enforced.

    bash scripts/gpu-check.sh [--cpu] [--pack] [--model-files DIR] [--prompts N] [--new-tokens N]
"""

from __future__ import annotations

import argparse
import math
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from distalign.engines import hf_reference
from distalign.engines.hf import HFEngine
from distalign.records.engine import (
    GenerateRequest,
    Message,
    ModelIdentity,
    OptionLogprobRequest,
    SamplingParams,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILES = ROOT / "build" / "gpu-check" / "smollm2"
#: what travels: the architecture and the tokenizer, never weights
FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "special_tokens_map.json",
    "generation_config.json",
)
TINY = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}
LETTERS = ("A", "B", "C", "D")
#: batched vs one-at-a-time option distributions: largest total variation allowed, per dtype
TV_TOLERANCE = {"float32": 1e-4, "bfloat16": 2e-2}
TARGET = 0.90
TOPICS = ("taxes", "schools", "climate", "public transport", "music", "travel", "science", "city parks")
CONTEXT = "Some people say this matters a great deal for their community, others see it differently. "


def pack(dest: Path) -> Path:
    """Copy the default model's config and tokenizer (not its weights) into ``dest``."""
    from distalign.engines.model_prep import prepare_default_model

    source = prepare_default_model()
    dest.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, dest / name)
    return dest


def random_model(files: Path, out: Path, tiny: bool) -> None:
    """A randomly initialised model of the packed architecture (shrunk when ``tiny``), saved with the
    tokenizer so the engine loads it through its usual path."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(files)
    if tiny:
        for key, value in TINY.items():
            setattr(config, key, value)
        config.head_dim = TINY["hidden_size"] // TINY["num_attention_heads"]
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(files).save_pretrained(out)


def prompts(n: int) -> list[tuple[Message, ...]]:
    """Survey-like questions of varied length, so batches need padding."""
    out = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        text = (
            CONTEXT * (i % 5)
            + f"Question {i}: how much do you care about {topic}?\n"
            + "A. A great deal\nB. Somewhat\nC. Not much\nD. Not at all"
        )
        out.append((Message("system", "Answer survey questions."), Message("user", text)))
    return out


def _ids(tokenizer: Any, messages: Sequence[Message], prefix: str) -> list[int]:
    text = hf_reference.render(tokenizer, messages, prefix)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _timed(fn: Callable[[], Any], device: torch.device) -> tuple[Any, float]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def _distribution(logprobs: Sequence[float | None]) -> list[float]:
    values = [math.exp(v) if v is not None else 0.0 for v in logprobs]
    total = sum(values)
    return [v / total for v in values]


def _tv(p: Sequence[float], q: Sequence[float]) -> float:
    return 0.5 * sum(abs(a - b) for a, b in zip(p, q, strict=True))


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def check_dtype(
    weights: Path, device: torch.device, dtype: str, args: argparse.Namespace
) -> tuple[list[str], bool]:
    """Every measurement of one dtype; returns report lines and whether the agreement checks passed."""
    engine = HFEngine(
        ModelIdentity(name="random-smollm2", weights=str(weights)),
        device=str(device),
        dtype=dtype,
        batch_size=args.batch_size,
    )
    tok, model = engine.tokenizer, engine.model
    messages = prompts(args.prompts)
    logp = [OptionLogprobRequest(m, LETTERS, "Answer:") for m in messages]
    ids = [_ids(tok, m, "Answer:") for m in messages]
    spellings = [hf_reference.single_token_ids(tok, LETTERS, spaced=True) for _ in messages]
    engine.option_logprobs(logp[:2])  # warm-up: kernels, allocator
    hf_reference.option_logprobs(model, tok, ids[:2], spellings[:2], args.batch_size)

    batched, engine_s = _timed(lambda: engine.option_logprobs(logp), device)
    plain, plain_s = _timed(  # rendering and tokenising included, as in the engine
        lambda: hf_reference.option_logprobs(
            model, tok, [_ids(tok, m, "Answer:") for m in messages], spellings, args.batch_size
        ),
        device,
    )
    alone = [engine.option_logprobs([r])[0] for r in logp]
    ok = all(r.ok for r in batched + alone)
    tv_alone = max(
        _tv(_distribution(b.logprobs), _distribution(a.logprobs)) for b, a in zip(batched, alone, strict=True)
    )
    # the plain loop returns each spelling ("A", " A"); the engine sums an option's spellings
    letter_ids = [hf_reference.single_token_ids(tok, (c,), spaced=True) for c in LETTERS]
    flat = spellings[0]
    tv_plain = 0.0
    for b, row in zip(batched, plain, strict=True):
        by_id = dict(zip(flat, row, strict=True))
        ref = [_logsumexp([by_id[t] for t in ids_]) for ids_ in letter_ids]
        tv_plain = max(tv_plain, _tv(_distribution(b.logprobs), _distribution(ref)))
    tol = TV_TOLERANCE[dtype]
    passed = ok and tv_alone <= tol and tv_plain <= tol
    n = len(logp)
    lines = [
        f"{dtype:>8}  option log-probs: engine {n / engine_s:8.1f} req/s, plain transformers "
        f"{n / plain_s:8.1f} req/s, ratio {plain_s / engine_s:.2f}",
        f"{dtype:>8}  agreement (max total variation over {n} prompts): batched vs one at a time "
        f"{tv_alone:.2e}, engine vs plain {tv_plain:.2e}; tolerance {tol:.0e}: "
        + ("PASS" if passed else "FAIL" + ("" if ok else " (engine errors)")),
    ]

    for label, params in (
        (
            "sampling n=1",
            SamplingParams(temperature=1.0, max_tokens=args.new_tokens, min_tokens=args.new_tokens),
        ),
        (
            "sampling n=3",
            SamplingParams(temperature=0.7, max_tokens=args.new_tokens, min_tokens=args.new_tokens, n=3),
        ),
    ):
        gen = [GenerateRequest(m, params, "", 0) for m in messages]
        setting = hf_reference.Generation(
            params.temperature, params.top_p, params.max_tokens, params.min_tokens, params.n
        )
        engine.generate(gen[:1])
        results, engine_s = _timed(lambda gen=gen: engine.generate(gen), device)
        produced, plain_s = _timed(
            lambda s=setting: hf_reference.generate(
                model, tok, [_ids(tok, m, "") for m in messages], [s] * len(messages), args.batch_size
            ),
            device,
        )
        engine_tokens = sum(r.usage.completion_tokens for r in results)
        gen_ok = all(r.ok for r in results)
        passed = passed and gen_ok
        e_rate, p_rate = engine_tokens / engine_s, sum(produced) / plain_s
        lines.append(
            f"{dtype:>8}  {label}: engine {e_rate:8.1f} tokens/s, model.generate {p_rate:8.1f} tokens/s, "
            f"ratio {e_rate / p_rate:.2f}" + ("" if gen_ok else "  FAIL (engine errors)")
        )
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return lines, passed


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="run on the CPU with a tiny model")
    parser.add_argument("--pack", action="store_true", help="only write the model files (config, tokenizer)")
    parser.add_argument("--model-files", type=Path, default=DEFAULT_FILES)
    parser.add_argument("--prompts", type=int, default=None, help="prompts per measurement")
    parser.add_argument("--new-tokens", type=int, default=None, help="tokens per generation")
    parser.add_argument("--batch-size", type=int, default=None, help="the engine's batch_size")
    args = parser.parse_args(argv)
    if args.pack:
        print(f"packed {pack(args.model_files)}")
        return 0
    if not (args.model_files / "config.json").is_file():
        try:
            pack(args.model_files)
        except ImportError as exc:
            print(
                f"no model files at {args.model_files} and none can be made here ({exc}); run "
                "`bash scripts/gpu-check.sh --pack` where the project is installed and bring build/gpu-check",
                file=sys.stderr,
            )
            return 2
    if not args.cpu and not torch.cuda.is_available():
        print("no CUDA device is visible; use --cpu for the CPU variant", file=sys.stderr)
        return 2
    device = torch.device("cpu" if args.cpu else "cuda")
    args.prompts = args.prompts or (8 if args.cpu else 64)
    args.new_tokens = args.new_tokens or (8 if args.cpu else 64)
    args.batch_size = args.batch_size or (8 if args.cpu else 64)

    import transformers

    header = (
        f"gpu-check of the hf engine on {device_name(device)}: torch {torch.__version__}, "
        f"transformers {transformers.__version__}; random {'tiny ' if args.cpu else ''}model of the default "
        f"architecture; {args.prompts} prompts, {args.new_tokens} new tokens, batch size {args.batch_size}"
    )
    print(header, flush=True)
    failed = []
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "model"
        random_model(args.model_files, weights, tiny=args.cpu)
        for dtype in ("bfloat16", "float32"):
            lines, passed = check_dtype(weights, device, dtype, args)
            for line in lines:
                print(line, flush=True)
            if not passed:
                failed.append(dtype)
    verdict = "FAIL: " + ", ".join(failed) if failed else "PASS"
    print(f"summary: {device_name(device)}: {verdict} (speed target: engine >= {TARGET:.0%} of plain)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

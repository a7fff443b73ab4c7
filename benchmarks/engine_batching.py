"""Throughput of the ``hf`` engine on the default model: batched versus one prompt at a time.

Both modes run in the same process on the same prompts, so the printed ratio is independent of how fast
the machine is. For option log-probs the raw transformers forward pass (left-padded, LM head at the last
position only: ``distalign.engines.hf_reference``) is timed at batch 1 and at the largest batch in the
same run, with the arithmetic rate it reaches (2 x non-embedding parameters per prompt token, plus the
LM head once per prompt): if the raw pass gains no more from batching than the engine, the limit is the
compute of the machine, not the engine.
Run: ``python benchmarks/engine_batching.py [--prompts 32] [--batch 16 32]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

from distalign.engines import hf_reference
from distalign.engines.hf import HFEngine
from distalign.engines.model_prep import default_identity
from distalign.records.engine import GenerateRequest, Message, OptionLogprobRequest, SamplingParams

TOPICS = ["taxes", "schools", "climate", "sports", "music", "travel", "science", "cities"]


def _messages(i: int) -> tuple[Message, ...]:
    topic = TOPICS[i % len(TOPICS)]
    text = f"Question {i}: how much do you care about {topic}? A: a lot, B: some, C: a little, D: not at all."
    return (Message("user", text),)


def _throughput(engine: HFEngine, batch: int, run: Callable[[list], list], requests: Sequence) -> float:
    engine.batch_size = batch
    start = time.perf_counter()
    if batch == 1:
        results = [run([r])[0] for r in requests]
    else:
        results = run(list(requests))
    elapsed = time.perf_counter() - start
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    return len(requests) / elapsed


def _ids(engine: HFEngine, request: OptionLogprobRequest) -> list[int]:
    text = hf_reference.render(engine.tokenizer, request.messages, request.assistant_prefix)
    return list(engine.tokenizer(text, add_special_tokens=False)["input_ids"])


def _raw_forward(engine: HFEngine, requests: Sequence[OptionLogprobRequest], batch: int) -> float:
    """Prompts per second of the plain last-position forward pass (rendering and tokenising included)."""
    tok = engine.tokenizer
    start = time.perf_counter()
    ids = [_ids(engine, r) for r in requests]
    cands = [hf_reference.single_token_ids(tok, r.candidates, spaced=True) for r in requests]
    hf_reference.option_logprobs(engine.model, tok, ids, cands, batch)
    return len(requests) / (time.perf_counter() - start)


def _flop_per_prompt(engine: HFEngine, requests: Sequence[OptionLogprobRequest]) -> float:
    """Multiply-adds x 2 of one average prompt: every non-embedding weight once per token, the head once."""
    model = engine.model
    embed = model.get_input_embeddings().weight
    body = sum(p.numel() for p in model.parameters()) - embed.numel()
    head = embed.numel()
    tokens = [len(_ids(engine, r)) for r in requests]
    return 2.0 * (body * sum(tokens) / len(tokens) + head)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=32, help="prompts per measurement")
    parser.add_argument("--batch", type=int, nargs="+", default=[16, 32], help="batch sizes to compare")
    parser.add_argument("--new-tokens", type=int, default=8, help="tokens per generation")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args(argv)

    engine = HFEngine(default_identity(), num_threads=args.threads)
    logp = [OptionLogprobRequest(_messages(i), ("A", "B", "C", "D"), "Answer:") for i in range(args.prompts)]
    params = SamplingParams(temperature=0.0, max_tokens=args.new_tokens, min_tokens=args.new_tokens)
    gen = [GenerateRequest(_messages(i), params) for i in range(args.prompts // 2)]
    engine.option_logprobs(logp[:2])  # warm-up (thread pools, allocator)
    _raw_forward(engine, logp[:2], 2)

    print(
        f"hf engine, default model: {args.prompts} log-prob prompts, "
        f"{len(gen)} generations of {args.new_tokens} tokens",
        flush=True,
    )
    flop = _flop_per_prompt(engine, logp)
    raw1 = _raw_forward(engine, logp, 1)
    label = "raw forward"
    print(f"{label:>16}  batch  1: {raw1:7.2f} prompts/s  ({raw1 * flop / 1e9:.0f} GFLOP/s)", flush=True)
    for batch in args.batch:
        rate = _raw_forward(engine, logp, batch)
        print(
            f"{label:>16}  batch {batch:2d}: {rate:7.2f} prompts/s  ({rate / raw1:.1f}x one at a time, "
            f"{rate * flop / 1e9:.0f} GFLOP/s)",
            flush=True,
        )
    for name, run, requests in (
        ("option_logprobs", engine.option_logprobs, logp),
        ("generate", engine.generate, gen),
    ):
        single = _throughput(engine, 1, run, requests)
        print(f"{name:>16}  batch  1: {single:7.2f} prompts/s", flush=True)
        for batch in args.batch:
            rate = _throughput(engine, batch, run, requests)
            print(
                f"{name:>16}  batch {batch:2d}: {rate:7.2f} prompts/s  ({rate / single:.1f}x one at a time)",
                flush=True,
            )


if __name__ == "__main__":
    main()

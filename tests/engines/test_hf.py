"""The ``hf`` engine and the shared chat helpers, on the real default model (small prompts: CPU)."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

import pytest

# looked up, not imported: every test worker collects this module; only the one that runs it needs torch
if importlib.util.find_spec("torch") is None:
    pytest.skip("torch is missing: bash scripts/setup.sh", allow_module_level=True)

from distalign.engines.base import Engine  # noqa: E402
from distalign.engines.chat import (  # noqa: E402
    allowed_token_ids,
    candidate_token_ids,
    candidate_token_spellings,
    encode,
    prompt_end,
    render_chat,
)
from distalign.engines.hf import HFEngine  # noqa: E402
from distalign.engines.model_prep import default_identity  # noqa: E402
from distalign.records.engine import GenerateRequest, Message, OptionLogprobRequest, SamplingParams  # noqa: E402

if TYPE_CHECKING:
    import torch

pytestmark = pytest.mark.slow
LETTERS = ("A", "B", "C", "D")


def _user(text: str) -> tuple[Message, ...]:
    return (Message("user", text),)


PROMPTS = [
    "Pick A or B.",
    "Is the sky blue? A: yes, B: no, C: sometimes, D: never. Reply with one letter.",
    "Which season do you like most? A spring B summer C autumn D winter",
]


@pytest.fixture(scope="module")
def engine() -> HFEngine:
    return HFEngine(default_identity(), batch_size=4, max_new_tokens_cap=64)


def _reference_logprobs(engine: HFEngine, request: OptionLogprobRequest) -> torch.Tensor:
    """Unbatched full-vocabulary next-token log-probs, straight from the model."""
    import torch

    text = render_chat(engine.tokenizer, request.messages, request.assistant_prefix)
    with torch.no_grad():
        logits = engine.model(torch.tensor([encode(engine.tokenizer, text)])).logits[0, -1]
    return torch.log_softmax(logits.float(), dim=-1)


def test_render_chat_ends_with_generation_prompt_and_prefix(engine: HFEngine) -> None:
    text = render_chat(engine.tokenizer, _user("hi"), "Answer:")
    assert text.endswith("<|im_start|>assistant\nAnswer:") and "<|im_start|>user\nhi<|im_end|>" in text
    custom = render_chat(engine.tokenizer, _user("hi"), "", chat_template="{{ messages[0]['content'] }}!")
    assert custom == "hi!"


def test_candidate_ids_follow_the_prompt_end(engine: HFEngine) -> None:
    tok = engine.tokenizer
    after_colon = candidate_token_ids(tok, ["A", " A", "AB", "Answer", "ABCD EFG", ""], "Answer:")
    assert after_colon[0] != after_colon[1] and None not in after_colon[:2]
    assert tok.decode([after_colon[0]]) == "A" and tok.decode([after_colon[1]]) == " A"
    assert after_colon[4] is None and after_colon[5] is None  # several tokens / empty: no id, not a guess
    after_space = candidate_token_ids(
        tok, ["A"], "Answer: "
    )  # "Answer: A" merges " A"; the prompt ends in " "
    base = encode(tok, "Answer: ")
    assert after_space[0] is not None and tok.decode(base + [after_space[0]]) == "Answer: A"


def test_option_lookups_depend_only_on_the_prompt_end(engine: HFEngine) -> None:
    """The lookups use the text after the last special token (shared by every prompt of a cell): it must
    tokenise exactly as the end of the whole prompt does, and give the ids the whole prompt gives."""
    tok = engine.tokenizer
    for prompt in PROMPTS:
        text = render_chat(tok, (Message("system", "Be brief."), *_user(prompt)), "Answer:")
        end = prompt_end(tok, text)
        assert end.startswith("<|im_start|>assistant") and len(end) < len(text)
        assert encode(tok, text)[-len(encode(tok, end)) :] == encode(tok, end)
        for letter in LETTERS:
            assert candidate_token_ids(tok, [letter, " " + letter], text) == candidate_token_ids(
                tok, [letter, " " + letter], end
            )
        assert candidate_token_spellings(tok, LETTERS, text) == candidate_token_spellings(tok, LETTERS, end)
        assert allowed_token_ids(tok, LETTERS, text) == allowed_token_ids(tok, LETTERS, end)
    assert prompt_end(tok, "no special token here") == "no special token here"


def test_n_samples_share_one_prefill_and_stay_seeded(engine: HFEngine) -> None:
    """n samples of a request are drawn from one prefill copied n times: each sample equals the one drawn
    by a request with the same seed and sample index run on its own."""
    params = SamplingParams(temperature=1.0, max_tokens=5, n=3, seed=5)
    (together,) = engine.generate([GenerateRequest(_user(PROMPTS[1]), params)])
    assert together.ok and len(together.texts) == 3 and len(set(together.texts)) > 1
    again = engine.generate([GenerateRequest(_user(PROMPTS[1]), params), GenerateRequest(_user(PROMPTS[0]))])
    assert again[0].texts == together.texts


def test_engine_protocol(engine: HFEngine) -> None:
    assert isinstance(engine, Engine) and engine.capabilities.option_logprobs


def test_option_logprobs_match_full_vocabulary_softmax(engine: HFEngine) -> None:
    request = OptionLogprobRequest(_user(PROMPTS[1]), LETTERS + ("multi token words",), "Answer:")
    (result,) = engine.option_logprobs([request])
    import torch

    reference = _reference_logprobs(engine, request)
    assert abs(float(reference.exp().sum()) - 1.0) < 1e-4
    spellings = candidate_token_spellings(
        engine.tokenizer, LETTERS, render_chat(engine.tokenizer, request.messages, "Answer:")
    )
    assert all(len(ids) >= 1 for ids in spellings)
    assert any(len(ids) == 2 for ids in spellings)  # both "A" and " A" are single tokens here
    assert result.ok and result.logprobs[4] is None
    for value, ids in zip(result.logprobs[:4], spellings, strict=True):
        # an option's log-prob is the mass of all its single-token spellings under the full softmax
        assert value == pytest.approx(float(torch.logsumexp(reference[list(ids)], dim=0)), abs=1e-4)
    assert sum(torch.tensor(result.logprobs[:4]).exp()) < 1.0
    assert result.usage.prompt_tokens > 10


def test_batched_logprobs_equal_one_at_a_time(engine: HFEngine) -> None:
    requests = [OptionLogprobRequest(_user(p), LETTERS, "Answer:") for p in PROMPTS]
    batched = engine.option_logprobs(requests)
    for request, together in zip(requests, batched, strict=True):
        (alone,) = engine.option_logprobs([request])
        assert together.logprobs == pytest.approx(alone.logprobs, abs=1e-4)


def test_a_long_prompt_never_pads_short_ones_to_its_length(engine: HFEngine, monkeypatch) -> None:
    """Prompts are batched by length, so that padding at most doubles a row's work (one long prompt would
    otherwise pad every short one to its length); the answers stay those of each prompt alone."""
    padded: list[int] = []  # rows x width of each prompt's forward pass (decoding steps not counted)
    forward = engine.model.forward

    def recording(*args, **kwargs):
        if kwargs.get("past_key_values") is None:
            padded.append(kwargs["input_ids"].numel())
        return forward(*args, **kwargs)

    monkeypatch.setattr(engine.model, "forward", recording)
    texts = [PROMPTS[0], " ".join(PROMPTS * 12), PROMPTS[1], PROMPTS[2]]

    def lengths(prefix: str) -> list[int]:
        return [len(encode(engine.tokenizer, render_chat(engine.tokenizer, _user(t), prefix))) for t in texts]

    assert max(lengths("Answer:")) > 4 * min(lengths("Answer:"))
    requests = [OptionLogprobRequest(_user(t), LETTERS, "Answer:") for t in texts]
    batched = engine.option_logprobs(requests)
    assert 1 < len(padded) < len(texts) and sum(padded) <= 2 * sum(lengths("Answer:"))
    for request, together in zip(requests, batched, strict=True):
        (alone,) = engine.option_logprobs([request])
        assert together.logprobs == pytest.approx(alone.logprobs, abs=1e-4)
    padded.clear()
    greedy = [GenerateRequest(_user(t), SamplingParams(temperature=0.0, max_tokens=3)) for t in texts]
    together_texts = [r.texts for r in engine.generate(greedy)]
    assert 1 < len(padded) < len(texts) and sum(padded) <= 2 * sum(lengths(""))
    assert together_texts == [engine.generate([r])[0].texts for r in greedy]


def test_greedy_is_deterministic_and_matches_transformers_generate(engine: HFEngine) -> None:
    import torch

    params = SamplingParams(temperature=0.0, max_tokens=6)
    requests = [GenerateRequest(_user(p), params) for p in PROMPTS[:2]]
    first, second = engine.generate(requests), engine.generate(requests[::-1])[::-1]
    assert [r.texts for r in first] == [r.texts for r in second]
    text = render_chat(engine.tokenizer, requests[0].messages)
    ids = torch.tensor([encode(engine.tokenizer, text)])
    out = engine.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=6, do_sample=False)
    expected = engine.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    assert first[0].texts == (expected,) and first[0].usage.completion_tokens == len(out[0]) - ids.shape[1]


def test_seeded_sampling_ignores_batch_composition(engine: HFEngine) -> None:
    seeded = GenerateRequest(_user(PROMPTS[0]), SamplingParams(temperature=1.0, max_tokens=6, n=2, seed=11))
    alone = engine.generate([seeded])[0]
    others = GenerateRequest(_user(PROMPTS[2]), SamplingParams(temperature=0.7, max_tokens=4))
    mixed = engine.generate([others, seeded, GenerateRequest(_user(PROMPTS[1]), seeded.params)])[1]
    assert alone.ok and len(alone.texts) == 2 and alone.texts == mixed.texts
    other_seed = GenerateRequest(seeded.messages, SamplingParams(temperature=1.0, max_tokens=6, n=2, seed=12))
    assert engine.generate([other_seed])[0].texts != alone.texts


def test_allowed_letters_and_min_tokens(engine: HFEngine) -> None:
    params = SamplingParams(
        temperature=1.0, max_tokens=12, min_tokens=12, allowed=("A", "B", "C"), seed=3, n=2
    )
    (result,) = engine.generate([GenerateRequest(_user("Write a random sequence of letters."), params)])
    assert result.ok and len(result.texts) == 2
    for text in result.texts:
        assert len(text) == 12 and set(text) <= {"A", "B", "C"}
    assert result.usage.completion_tokens == 24


def test_stop_strings_cut_the_text(engine: HFEngine) -> None:
    request = GenerateRequest(_user("Count from 1 to 10, one per line."), SamplingParams(max_tokens=24))
    (full,) = engine.generate([request])
    stop = full.texts[0].strip()[0]
    (cut,) = engine.generate([GenerateRequest(request.messages, SamplingParams(max_tokens=24, stop=(stop,)))])
    assert stop not in cut.texts[0] and full.texts[0].startswith(cut.texts[0])


def test_errors_are_data(engine: HFEngine) -> None:
    huge = _user("word " * 9000)
    good = GenerateRequest(_user("Hi"), SamplingParams(max_tokens=2))
    results = engine.generate(
        [good, GenerateRequest(huge), GenerateRequest(_user("Hi"), SamplingParams(top_p=0.0))]
    )
    assert results[0].ok and results[0].texts
    assert "context" in results[1].error and "top_p" in results[2].error
    not_single = SamplingParams(max_tokens=2, allowed=("several words here",))
    assert "single token" in engine.generate([GenerateRequest(_user("Hi"), not_single)])[0].error
    logp = engine.option_logprobs(
        [OptionLogprobRequest(huge, LETTERS), OptionLogprobRequest(_user("Hi"), LETTERS)]
    )
    assert logp[0].error and logp[1].ok and None not in logp[1].logprobs


def test_stats_report_load_and_each_call(engine: HFEngine) -> None:
    before = engine.stats()
    assert before["load_s"] > 0 and before["ready_at"] > 0
    engine.option_logprobs([OptionLogprobRequest(_user(p), LETTERS, "Answer:") for p in PROMPTS[:2]])
    after = engine.stats()
    assert after["calls"] == before["calls"] + 1 and after["requests"] == before["requests"] + 2
    kind, n, start, end = after["spans"][-1]
    assert (kind, n) == ("option_logprobs", 2) and before["ready_at"] <= start <= end

"""Chat rendering and option-token lookup shared by the local engines (``hf`` and ``vllm``).

Both must agree on the exact prompt text and on which token id stands for an option letter, or their
log-prob distributions would differ for reasons unrelated to the model.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

from distalign.errors import InputError
from distalign.records.engine import Message

#: tokens of ``after_text`` kept when checking a candidate by decoding (enough context for any merge).
_DECODE_TAIL = 8
#: per tokenizer: (prompt end, strings, kind) -> token ids; every prompt of a cell ends alike
_MEMO: weakref.WeakKeyDictionary[Any, dict[tuple[str, tuple[str, ...], str], Any]]
_MEMO = weakref.WeakKeyDictionary()


def prompt_end(tokenizer: Any, text: str) -> str:
    """``text`` from its last special token on. Tokenizers split their input at special tokens and
    tokenise each piece alone, so how a candidate letter tokenises after ``text`` depends only on this
    end (the assistant turn of a rendered chat), which lets lookups be shared across prompts."""
    specials = [t for t in getattr(tokenizer, "all_special_tokens", ()) if t]
    cut = max((text.rfind(t) for t in specials), default=-1)
    return text[cut:] if cut > 0 else text


def _memo(tokenizer: Any, key: tuple[str, tuple[str, ...], str], compute: Any) -> Any:
    try:
        table = _MEMO.setdefault(tokenizer, {})
    except TypeError:  # a tokenizer that cannot be weakly referenced: no memo
        return compute()
    if key not in table:
        table[key] = compute()
    return table[key]


def render_chat(
    tokenizer: Any,
    messages: Sequence[Message],
    assistant_prefix: str = "",
    chat_template: str | None = None,
) -> str:
    """The prompt text: the chat template with the generation prompt, then ``assistant_prefix``, so that
    what follows (an option letter) is the assistant's next token."""
    if chat_template is None and not getattr(tokenizer, "chat_template", None):
        raise InputError(
            "the tokenizer has no chat template; set chat_template in the model config",
            where=f"model {getattr(tokenizer, 'name_or_path', '?')}",
        )
    conversation = [{"role": m.role, "content": m.content} for m in messages]
    text = tokenizer.apply_chat_template(
        conversation, tokenize=False, add_generation_prompt=True, chat_template=chat_template
    )
    return str(text) + assistant_prefix


def encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids of rendered text: the template already holds every special token, so none is added."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def candidate_token_ids(tokenizer: Any, candidates: Sequence[str], after_text: str) -> list[int | None]:
    """For each candidate, the single token id that follows the tokens of ``after_text`` and spells it.

    ``None`` when no single token does (multi-token candidates), never a near miss: "A" and " A" are
    different tokens, and which one the prompt calls for depends on how it ends.
    """
    base = encode(tokenizer, after_text)
    tail = base[-_DECODE_TAIL:]
    tail_text = tokenizer.decode(tail)
    return [_one_candidate(tokenizer, base, tail, tail_text, after_text, c) for c in candidates]


def _one_candidate(
    tokenizer: Any, base: list[int], tail: list[int], tail_text: str, after_text: str, candidate: str
) -> int | None:
    if not candidate:
        return None
    full = encode(tokenizer, after_text + candidate)
    if len(full) == len(base) + 1 and full[: len(base)] == base:
        return full[-1]
    # The candidate merged with the end of the prompt (e.g. "Answer: " + "A" tokenises as "Answer:" " A"),
    # yet the prompt is fed as tokenised alone. Accept the candidate's own single token only if it
    # decodes, after those prompt tokens, to exactly the candidate.
    alone = encode(tokenizer, candidate)
    if len(alone) == 1 and tokenizer.decode(tail + alone) == tail_text + candidate:
        return alone[0]
    return None


def candidate_token_spellings(
    tokenizer: Any, candidates: Sequence[str], after_text: str
) -> list[tuple[int, ...]]:
    """Every single-token spelling of each candidate right after ``after_text``: the bare letter and the
    letter after a space ("A" and " A"). A model asked for "Answer:" puts its mass on " A"; summing the
    spellings' probabilities measures the option, not a whitespace habit (the litellm engine does the same
    with top log-probs). An empty tuple means no single token spells the candidate."""
    end = prompt_end(tokenizer, after_text)

    def compute() -> list[tuple[int, ...]]:
        out: list[tuple[int, ...]] = []
        for c in candidates:
            variants = [c] if c.startswith(" ") else [c, " " + c]
            ids = [t for t in candidate_token_ids(tokenizer, variants, end) if t is not None]
            out.append(tuple(dict.fromkeys(ids)))
        return out

    return list(_memo(tokenizer, (end, tuple(candidates), "spellings"), compute))


def allowed_token_ids(tokenizer: Any, allowed: Sequence[str], after_text: str) -> list[int]:
    """Token ids that may spell the allowed strings: each string's id right after the prompt, and its own
    single token (the id it has after another allowed string, e.g. "B" after "A" in a sequence)."""
    end = prompt_end(tokenizer, after_text)
    return list(_memo(tokenizer, (end, tuple(allowed), "allowed"), lambda: _allowed(tokenizer, allowed, end)))


def _allowed(tokenizer: Any, allowed: Sequence[str], after_text: str) -> list[int]:
    in_context = candidate_token_ids(tokenizer, allowed, after_text)
    ids: set[int] = set()
    for string, tid in zip(allowed, in_context, strict=True):
        alone = encode(tokenizer, string)
        if len(alone) == 1 and tokenizer.decode(alone) == string:
            ids.add(alone[0])
        if tid is not None:
            ids.add(tid)
        elif len(alone) != 1:
            raise ValueError(f"allowed string {string!r} is not a single token for this model")
    if not ids:
        raise ValueError("no allowed strings")
    return sorted(ids)

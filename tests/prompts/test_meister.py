"""The ``meister2024`` preset asks what the benchmark's release asked.

The oracle below rebuilds the release's prompts the way its public code does (``utils.py``:
``get_prompt_opinionqa`` / ``get_prompt_nytimes`` / ``get_prompt_globalvalues``, tasks 0, 1 and 3), by
plain string concatenation over the release's own files: the demonstration files under ``inputs/`` and the
question, option and count tables of its data JSON. It shares no code with the preset. Demonstration answers
the release drew at random are matched as a pattern (the right number of letters among the options shown).
"""

from __future__ import annotations

import ast
import json
import re
import shutil
from functools import cache
from pathlib import Path

import pytest

from distalign.errors import InputError
from distalign.prompts.fewshot import examples_for
from distalign.prompts.presets import load_templates
from distalign.prompts.render import PromptSpec, render_prompt
from distalign.survey import load_survey
from distalign.survey.download import files_for, sha256_of
from distalign.survey.model import Item, Survey

OQA100 = "opinions_qa/data/human_resp/Pew_American_Trends_Panel_disagreement_100"
OQA500 = "opinions_qa/data/human_resp/Pew_American_Trends_Panel_disagreement_500"
FOLDERS = {"logprobs": "model_logprobs", "seq": "sequence", "verbalize": "express_distribution"}
INPUTS = {"opinionqa": "opinion_surveys", "nyt_books": "nytimes", "global_opinions": "globalvalues"}
TASKS = {"none": "task0", "persona": "task1"}
L = "ABCDEFGHIJKLMNOPQR"

# -- the release's wording, in the fragments its code strings together -------------------------------------
SEQ_RULES = (
    "Please only respond with 30 multiple choice answers, no extra spaces, characters, quotes or text. "
    "Please only produce 30 characters. Answers with more than 30 characters will not be accepted."
)
ONE_RULES = (
    "Please only respond with a single multiple choice answer, no extra spaces, characters, quotes or text. "
    "Please only produce 1 character. Answers with more than one characters will not be accepted."
)
DICT_RULES = (
    "Please only respond in the exact format of a dictionary mapping answer choice letter to probability, "
    "no extra spaces, characters, quotes or text. Please only produce 1 sentence in this format. Answers "
    "outside of this format will not be accepted."
)
OWN_VIEW = (
    "Do not follow the distribution expressed in the examples as they are only to give you an example of "
    "formatting, express the distribution based on your understanding of how humans may respond. "
)
FIRST = (
    "First I will provide a few examples of this task just to give you a sense of the answer formatting, "
    "then you will perform the task yourself"
)
NO_DISTRIBUTION = (
    " For the new question, there will be no distribution provided, this is for you to estimate!"
)
SAME_GROUP = (
    "\nYour turn! Please answer this question for the group of {g}s. As a reminder, this group is the exact "
    "same group as the group in the previous examples. The previous examples are used to provide an example "
    "of formatting and to give you insight into how this group would respond to such questions.\n"
)
BOOK_Q = "\nQuestion: Given the information about this book, how likely {who} to read it?\n"


def intro(fmt: str, group: str | None) -> str:
    """The sentence block before a demonstration file (tasks 0 and 1)."""
    shown = {"seq": "a sequence of responses to", "logprobs": "a multiple choice response to"}
    what = shown.get(fmt, "a distribution over answer choices on")
    who = f' from a group of "{group}"' if group else ""
    task = {
        "seq": f"simulate 30 samples{who}",
        "logprobs": f"simulate an answer{who}",
        "verbalize": f"express the distribution of answers{who}",
    }[fmt]
    rules = {"seq": SEQ_RULES, "logprobs": ONE_RULES, "verbalize": OWN_VIEW + DICT_RULES}[fmt]
    end = f' for "{group}".' if group else "."
    return (
        f"I will provide {what} a series of questions{' from a random group' if group else ''} to help you "
        f"understand the formatting of this task. After the 5 examples, please {task} for the question "
        f"asked. {rules} {FIRST}{end}"
    )


def few_shot_head(fmt: str, g: str, books: bool) -> str:
    """The opening of the release's few-shot prompt (task 3), up to the first demonstration."""
    ask = {
        "seq": f"simulate 30 samples from a group of {g} for the new question asked. " + SEQ_RULES,
        "logprobs": f'simulate an answer from a group of "{g}" for the question asked. ' + ONE_RULES,
        "verbalize": f'express the distribution of answers from a group of "{g}" for the question asked. '
        + DICT_RULES,
    }[fmt]
    data = "" if books else " in a section titled 'Data'"
    fields = (
        "`context`, `Book Title`, `Book Genre`, `Book Summary`, `question`"
        if books
        else "'context` and `question`"
    )
    return (
        "In this task you will receive information on the distribution of responses from a group of "
        f"{g}s to related{'' if books else ' survey'} questions. Given this data, your task is to simulate "
        f"an answer to a new question from the group of {g}s. First, I will provide the distribution of "
        f"responses from a group of {g}s to a series of questions{data}. Afterwards, I will provide "
        f"{'' if books else '5 '}example responses to the question to help you understand the formatting of "
        f"this task. After the examples, please {ask}{NO_DISTRIBUTION}\n\nGiven the fields {fields}, produce "
        "the fields `answer`. Your task will not have `context`.\n\n------\n\n"
    )


class Draw(str):
    """A demonstration answer the release sampled: ``k`` letters among ``letters``."""

    def __new__(cls, k: int, letters: str) -> Draw:
        obj = super().__new__(cls, "")
        obj.k, obj.letters = k, letters
        return obj


def answer(fmt: str, letters: list[str], pcts: list[int], key: str) -> list[str]:
    if fmt == "verbalize":
        return [
            "Answer: {"
            + ", ".join(key.format(x) + f": '{p}%'" for x, p in zip(letters, pcts, strict=True))
            + "}"
        ]
    return ["Answer: ", Draw(30 if fmt == "seq" else 1, "".join(letters))]


# -- the oracle ----------------------------------------------------------------------------------------------
@cache
def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _release_file(root: Path, dataset: str, fmt: str, steering: str) -> str:
    return (root / "inputs" / INPUTS[dataset] / FOLDERS[fmt] / f"prompt_{TASKS[steering]}.txt").read_text()


def oracle(
    root: Path, survey: Survey, item: Item, attribute: str, group: str, steering: str, fmt: str
) -> list:
    g = group
    examples = examples_for(survey, item.id, group) if steering == "few_shot" else ()
    out: list = []
    if survey.name == "opinionqa":
        data = _json(root / OQA100 / f"{attribute}_data.json")[item.id]
        keys = list(data[g])
        opts = "".join(f"{L[i]}. {o}\n" for i, o in enumerate(keys))
        if steering == "none":
            out += [intro(fmt, None), _release_file(root, "opinionqa", fmt, steering), "\nYour turn! "]
        elif steering == "persona":
            out += [intro(fmt, g), _release_file(root, "opinionqa", fmt, steering)]
            out.append(
                f'\nYour turn! Please answer this question for the group "{g}". As a reminder, this group is '
                "different than the group in the previous examples. The previous examples are just used to "
                "provide an example of formatting.\n"
            )
        if steering != "few_shot":
            return [*out, f"\nQuestion: {data['question_text']}?\n", opts, "Answer:"]
        out.append(few_shot_head(fmt, g, books=False))
        pool = _json(root / OQA500 / f"{attribute}_data.json")
        for ex in examples:
            counts = pool[ex.id][g]
            n = sum(counts.values())
            pcts = [int((c / n) * 100) for c in counts.values()]
            out.append(f"\nContext: Let the probability that a {g} responds to the following question with ")
            out += [f"{o} be {p}%, " for o, p in zip(counts, pcts, strict=True)]
            out.append(f"\nQuestion: {pool[ex.id]['question_text']}?\n")
            out += [f"{L[i]}. {o}. " for i, o in enumerate(counts)]
            out += [*answer(fmt, list(L[: len(counts)]), pcts, "'{}'"), "\n\n------ "]
        out += [SAME_GROUP.format(g=g), f"Question: {data['question_text']}?\n"]
        return [*out, *[f"{L[i]}. {o}. " for i, o in enumerate(keys)], "\nAnswer:"]
    if survey.name == "nyt_books":
        books = _json(root / "nytimes/data.json")

        def book(title: str) -> str:
            b = books[title]
            return f"\nBook Title: {title}\nBook Genre: {b['genre']}\nBook Summary: {b['summary']}"

        keys = list(books[item.id][g])
        if steering in TASKS:
            out += [
                intro(fmt, g if steering == "persona" else None),
                _release_file(root, "nyt_books", fmt, steering),
            ]
            who = f"is a {g}" if steering == "persona" else "are you"
            opts = "".join(f"{L[i]}. {o}\n" for i, o in enumerate(keys))
            return [*out, "\nYour turn!\n", book(item.id), BOOK_Q.format(who=who), opts, "Answer:"]
        out.append(few_shot_head(fmt, g, books=True))
        for ex in examples:
            mc, counts = books[ex.id]["MC_options"], books[ex.id][g]
            n = sum(counts.values())
            present = [i for i, o in enumerate(mc) if o in counts]
            pcts = [int((counts[mc[i]] / n) * 100) for i in present]
            out.append(f"\nContext: Let the probability that a {g} responds to the following question with ")
            out += [f"'{mc[i]}' be {p}%, " for i, p in zip(present, pcts, strict=True)]
            out += [".", book(ex.id), BOOK_Q.format(who=f"is a {g}")]
            out += [f"'{L[i]}'. {o}\n" for i, o in enumerate(mc)]
            out += [*answer(fmt, [L[i] for i in present], pcts, "{}"), "\n\n------ "]
        out += [SAME_GROUP.format(g=g), book(item.id), BOOK_Q.format(who=f"is a {g}")]
        return [*out, *[f"'{L[i]}'. {o}\n" for i, o in enumerate(keys)], "Answer:"]
    # GlobalOpinionQA: the released code names the country slot; the paper's prompts name the country
    options = ast.literal_eval(_json(root / "Global_Values/data/data.json")[item.id]["MC_options"])
    opts = "".join(f"'{L[i]}'. {o}\n" for i, o in enumerate(options))
    if steering == "none":
        return [
            intro(fmt, None),
            _release_file(root, "global_opinions", fmt, steering),
            f"\nQuestion: {item.id}?\n",
            opts,
            "Answer: ",
        ]
    if steering == "persona":
        out += [intro(fmt, g), _release_file(root, "global_opinions", fmt, steering), "\nYour turn!\n"]
        return [
            *out,
            f"\nHow would someone from {g} respond to the following question?",
            f"\nQuestion: {item.id}?\n",
            opts,
            "Answer: ",
        ]
    out.append(few_shot_head(fmt, g, books=False))
    for ex in examples:  # the released branch reads OpinionQA files; the question's own data instead
        pcts = [int(p * 100) for p in ex.probs]
        out.append(f"\nContext: Let the probability that a {g} responds to the following question with ")
        out += [f"'{o}' be {p}%, " for o, p in zip(ex.options, pcts, strict=True)]
        out += [f"\nQuestion: {ex.question}?\n", *[f"'{L[i]}'. {o}\n" for i, o in enumerate(ex.options)]]
        out += [*answer(fmt, list(L[: len(ex.options)]), pcts, "'{}'"), "\n\n------ "]
    return [*out, SAME_GROUP.format(g=g), f"Question: {item.id}?\n", opts, "Answer: "]


def pattern(parts: list) -> re.Pattern[str]:
    rx = []
    for p in parts:
        if isinstance(p, Draw):
            rx.append(f"(?:[{p.letters}] ){{{p.k - 1}}}[{p.letters}]")
        else:
            rx.append(re.escape(p))
    return re.compile("".join(rx), re.S)


# -- fixtures ------------------------------------------------------------------------------------------------
_SURVEYS: dict[str, Survey] = {}


def _survey(root: Path, name: str) -> Survey:
    if name not in _SURVEYS:
        _SURVEYS[name] = load_survey(name, root)
    return _SURVEYS[name]


def _case(root: Path, survey: Survey, omitted: bool = False) -> tuple[Item, str, str]:
    """The first (item, group) whose count table lists every option (or, ``omitted``, leaves one out) and
    whose question reads as in the release's table (two OpinionQA tables fill in a group name)."""
    for d in survey.distributions:
        item = survey.items[d.item_id]
        if survey.name == "opinionqa":
            table = _json(root / OQA100 / f"{d.attribute}_data.json")[item.id]
            shown, same_text = len(table[d.group]), table["question_text"] == item.question
        elif survey.name == "nyt_books":
            shown, same_text = len(_json(root / "nytimes/data.json")[item.id][d.group]), True
        else:
            shown, same_text = item.n_options, True
        if (
            same_text
            and (shown < item.n_options) == omitted
            and len(examples_for(survey, item.id, d.group)) == 5
        ):
            return item, d.attribute, d.group
    raise AssertionError(f"{survey.name}: no such item")


@pytest.fixture(scope="module")
def meister(release_dir: Path):
    return load_templates("meister2024", data_dir=release_dir)


# -- tests ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["logprobs", "seq", "verbalize"])
@pytest.mark.parametrize("steering", ["none", "persona", "few_shot"])
@pytest.mark.parametrize("dataset", ["opinionqa", "nyt_books", "global_opinions"])
def test_prompt_is_the_release_construction(
    release_dir: Path, meister, dataset: str, steering: str, fmt: str
) -> None:
    survey = _survey(release_dir, dataset)
    item, attribute, group = _case(release_dir, survey)
    examples = examples_for(survey, item.id, group) if steering == "few_shot" else ()
    named = steering != "none"
    probs = next(d.probs for d in survey.for_item(item.id) if d.group == group)
    prompt = render_prompt(
        item,
        attribute if named else None,
        group if named else None,
        examples,
        PromptSpec("benchmark", steering, fmt),
        meister,
        group_probs=probs if named else None,
    )
    assert [m.role for m in prompt.messages] == ["system", "user"]
    assert prompt.messages[0].content == "You are a helpful assistant."
    expected = pattern(oracle(release_dir, survey, item, attribute, group, steering, fmt))
    assert expected.fullmatch(prompt.messages[1].content), prompt.messages[1].content[-600:]
    # the options as shown, mapped back by label: OpinionQA's count tables list them alphabetically
    assert sorted(prompt.labels) == sorted(item.options)
    assert list(prompt.labels) == (sorted(item.options) if dataset == "opinionqa" else list(item.options))
    assert prompt.letters == tuple(L[: item.n_options]) and prompt.assistant_prefix == ""


@pytest.mark.parametrize("dataset", ["opinionqa", "nyt_books"])
def test_options_nobody_in_the_group_chose_are_left_out_as_in_the_release(
    release_dir: Path, meister, dataset: str
) -> None:
    survey = _survey(release_dir, dataset)
    item, attribute, group = _case(release_dir, survey, omitted=True)
    probs = next(d.probs for d in survey.for_item(item.id) if d.group == group)
    spec = PromptSpec("benchmark", "persona", "seq")
    prompt = render_prompt(item, attribute, group, (), spec, meister, group_probs=probs)
    expected = pattern(oracle(release_dir, survey, item, attribute, group, "persona", "seq"))
    assert expected.fullmatch(prompt.messages[1].content)
    assert len(prompt.labels) < item.n_options
    everything = render_prompt(item, attribute, group, (), spec, meister)
    assert len(everything.labels) == item.n_options


def test_release_files_are_read_at_run_time_and_digested(release_dir: Path, tmp_path: Path, meister) -> None:
    shutil.copytree(release_dir / "inputs", tmp_path / "inputs")
    same = load_templates("meister2024", data_dir=tmp_path)
    assert same.digest == meister.digest and len(same.digest) == 64
    demo = tmp_path / "inputs/nytimes/sequence/prompt_task1.txt"
    demo.write_text(demo.read_text() + "\nAn edited demonstration.\n")
    edited = load_templates("meister2024", data_dir=tmp_path)
    assert edited.digest != meister.digest
    survey = _survey(release_dir, "nyt_books")
    item, attribute, group = _case(release_dir, survey)
    prompt = render_prompt(item, attribute, group, (), PromptSpec("benchmark", "persona", "seq"), edited)
    assert "An edited demonstration." in prompt.messages[1].content


def test_a_missing_release_names_the_folder_and_the_download(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="distalign data download prompts") as err:
        load_templates("meister2024", data_dir=tmp_path)
    assert str(tmp_path / "inputs") in str(err.value)


def test_a_missing_file_is_named(release_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(release_dir / "inputs", tmp_path / "inputs")
    gone = tmp_path / "inputs/globalvalues/model_logprobs/prompt_task0.txt"
    gone.unlink()
    with pytest.raises(InputError, match="distalign data download") as err:
        load_templates("meister2024", data_dir=tmp_path)
    assert str(gone) in str(err.value)


def test_the_download_covers_what_the_preset_reads(release_dir: Path, tmp_path: Path, meister) -> None:
    """A data folder holding only what `distalign data download prompts` fetches loads the same preset."""
    for f in files_for("prompts"):
        assert sha256_of(release_dir / f.remote) == f.sha256
        (tmp_path / f.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(release_dir / f.remote, tmp_path / f.path)
    assert load_templates("meister2024", data_dir=tmp_path).digest == meister.digest


def test_other_protocols_and_datasets_are_refused(release_dir: Path, meister) -> None:
    item = Item("my_survey", "q1", "Is it?", ("Yes", "No"), (1.0, 2.0))
    with pytest.raises(InputError, match="opinionqa"):
        render_prompt(item, "SEX", "Female", (), PromptSpec("benchmark", "persona", "seq"), meister)
    survey = _survey(release_dir, "global_opinions")
    real = next(iter(survey.items.values()))
    with pytest.raises(InputError, match="benchmark protocol"):
        render_prompt(real, "country", "Japan", (), PromptSpec("supervision", "sd", "single"), meister)

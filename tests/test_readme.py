"""The README's two fresh-machine commands are the project's contract: CI must run the second one."""

from __future__ import annotations

import re

from tests.conftest import REPO


def _commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)][:2]


def test_readme_opens_with_the_two_commands() -> None:
    text = (REPO / "README.md").read_text()
    first_block = text.index("```bash")
    assert text[:first_block].strip().startswith("# distalign")
    run, test = _commands()
    assert "launch.py -m" in run and "scripts/setup.sh" in run
    assert "pytest" in test and "scripts/setup.sh" in test


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    _, test = _commands()
    assert f"TEST_COMMAND='{test}'" in ci

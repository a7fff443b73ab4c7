"""Secrets never reach a file: every known secret value is masked before a message is cut or formatted,
and a key pasted where the NAME of its variable belongs is refused before anything is written.

Masking first matters: cutting a provider's error (which may echo the key) to a length limit and masking
afterwards leaves the part of the key that straddles the cut in clear.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping

MASK = "***"
#: environment variables whose values are secrets by their name
_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|AUTH)$|_KEY_|_TOKEN_", re.I)
#: a value shorter than this is not masked (``MY_KEY=1`` would otherwise mask every "1")
_MIN_SECRET = 6
#: the name of an environment variable, as ``api_key_env`` expects
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_KEY_PREFIXES = ("sk-", "sk_", "hf_", "xai-", "gsk_", "AIza", "pk-", "ghp_", "github_pat_", "AKIA", "Bearer ")


def secret_values(environ: Mapping[str, str] | None = None, extra: Iterable[str | None] = ()) -> list[str]:
    """The values of every secret-named environment variable plus ``extra``, longest first (so that a key
    containing another is masked whole)."""
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if _SECRET_NAME.search(k) and v and len(v) >= _MIN_SECRET}
    values |= {v for v in extra if v and len(v) >= _MIN_SECRET}
    return sorted(values, key=len, reverse=True)


def mask(text: str, extra: Iterable[str | None] = (), environ: Mapping[str, str] | None = None) -> str:
    """``text`` with every occurrence of every secret value replaced by ``***``. Call it on the WHOLE text,
    before any cut."""
    for value in secret_values(environ, extra):
        if value in text:
            text = text.replace(value, MASK)
    return text


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(c / len(value) * math.log2(c / len(value)) for c in counts.values())


def looks_like_key(value: str) -> bool:
    """True for a value that is a credential rather than the name of an environment variable: a known key
    prefix, or a long high-entropy string that is not an env-var name."""
    value = value.strip()
    if ENV_NAME.match(value):
        return False
    if value.startswith(_KEY_PREFIXES):
        return True
    return len(value) >= 20 and _entropy(value) >= 3.5


def key_refusal(option: str) -> str:
    """The one-line message for a key pasted where its variable's name belongs (the value is not repeated)."""
    return (
        f"{option} must name an environment variable (e.g. OPENAI_API_KEY), but its value looks like the "
        "key itself; nothing was run or written. Treat that key as exposed (it may be in your shell "
        f"history): rotate it at the provider, export the new one and pass {option}=<VARIABLE_NAME>"
    )

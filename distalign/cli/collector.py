"""CPython's cyclic garbage collector, set for a command that runs once and exits.

A sweep or a ``distalign`` command imports about 4,000 modules: half a million objects that live until the
process ends. CPython 3.11's collector walks all of them at every full collection (about nine while the
modules load) and again while the interpreter shuts down; together that was about a quarter of a small
sweep's wall time (``benchmarks/command_latency.py`` measures it).
"""

from __future__ import annotations

import atexit
import gc

#: objects allocated between two young-generation collections (CPython's default is 700): fewer
#: collections while thousands of modules load; cyclic garbage still goes within 10,000 allocations
YOUNG_THRESHOLD = 10_000


def tune_for_a_command() -> None:
    """Collect less often, and at exit freeze what is left so that shutting down frees memory without
    walking it. Called first thing, the freeze is the first exit handler registered and so the last to run
    (``atexit`` is last in, first out): every other handler still runs with a working collector."""
    gc.set_threshold(YOUNG_THRESHOLD)
    atexit.register(gc.freeze)

"""distalign: measure and improve how well LLMs reproduce human answer distributions."""

import os as _os

# litellm fetches a price table from the internet at import unless told to use its bundled copy;
# sweeps must start offline and without a multi-second stall.
_os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

__version__ = "0.1.0"

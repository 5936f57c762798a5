"""`memalpha ...`: thin commands that parse, load config, call one library function, render.

Each module registers its commands on the one `app`; importing them here builds the CLI.
"""

import os

# our own bars say what is happening; Hugging Face's per-file loading bars would bury them
# (set HF_HUB_DISABLE_PROGRESS_BARS=0 to see them again)
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

from memalpha.cli import (  # noqa: E402, F401  (registers the commands)
    agent,
    data,
    evaluate,
    mcp,
    memory,
    quickstart,
    serve,
    train,
)
from memalpha.cli.common import app  # noqa: E402

__all__ = ["app"]

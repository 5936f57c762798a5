"""`memalpha ...`: thin commands that parse, load config, call one library function, render.

Each module registers its commands on the one `app`; importing them here builds the CLI.
"""

from memalpha.cli import agent, data, evaluate, memory, serve, train  # noqa: F401  (registers the commands)
from memalpha.cli.common import app

__all__ = ["app"]

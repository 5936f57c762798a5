"""`python -m memalpha.cli`: the same CLI as the `memalpha` console script."""

from memalpha.cli import app

app()

"""memalpha: LLM agents that learn, with RL, to build their own long-term memory (Mem-α).

Importing memalpha sets `OMP_WAIT_POLICY=PASSIVE` unless the environment already chooses: with
the default (active) policy, OpenMP threads spin while they wait, and when the cores are shared
(a reader beside the writer, a server, a test run) they burn ~4x the CPU time for the same work
(benchmarks/RESULTS.md). OpenMP reads it once, when torch loads, so every entry point (the CLI,
`python -m memalpha…`, the benchmarks) imports memalpha before torch.

It also sets `XLA_PYTHON_CLIENT_PREALLOCATE=false` unless set: bm25s imports JAX where JAX is
installed, and JAX then takes 75% of the GPU's memory at its first use. On an H200 with JAX in
the image, the paper configuration's first rollout ran out of memory with 32 GB held by PyTorch
and 105 GB by JAX (benchmarks/RESULTS.md, "The paper configuration on one GPU").
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

__version__ = "0.1.0"

__all__ = ["__version__"]

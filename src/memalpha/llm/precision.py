"""Which floating-point precision a model computes in, decided once per device, and on how
many CPU threads.

bf16 is what the published run used on GPUs, and on CPUs with native bf16 matrix units
(AMX-BF16, AVX512-BF16) it is ~1.5x faster than fp32 for generation and prefill here
(benchmarks/RESULTS.md, engines). Elsewhere it is emulated and slower, so `auto` picks it only
where the hardware has it. Old, new and reference log-probs of one update are all computed in
the same precision as the rollouts (see `memalpha.rl.update`).

The thread count is part of the numbers, not only the speed: oneDNN splits a bf16 matrix
product's reductions by thread, so greedy decoding under one thread and under two writes other
memories (the same warm start overwrote 25 changed facts under two threads and 23 under one;
benchmarks/RESULTS.md, "Groups of 8 at change chunks"). Runs therefore pin it and record it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import torch

DType = Literal["auto", "float32", "bfloat16", "float16"]


@lru_cache(maxsize=8)
def bf16_native(device: str) -> bool:
    """Whether `device` computes bf16 matrix products in hardware."""
    kind = device.split(":")[0]
    if kind == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if kind == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve_dtype(dtype: DType, device: str) -> str:
    """The concrete dtype name: `auto` is bfloat16 where `bf16_native`, else float32."""
    if dtype != "auto":
        return dtype
    return "bfloat16" if bf16_native(device) else "float32"


def pin_threads(threads: int | None) -> int:
    """Compute on `threads` CPU threads in this process (None: as found, i.e. OMP_NUM_THREADS
    or one per core); the count now in use. Call it before the first model runs: a later
    change is honoured by torch but not by a thread pool some library already sized."""
    if threads is not None and threads != torch.get_num_threads():
        torch.set_num_threads(threads)
    return torch.get_num_threads()

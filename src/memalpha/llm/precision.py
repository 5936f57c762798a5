"""Which floating-point precision a model computes in, decided once per device.

bf16 is what the published run used on GPUs, and on CPUs with native bf16 matrix units
(AMX-BF16, AVX512-BF16) it is ~1.5x faster than fp32 for generation and prefill here
(benchmarks/RESULTS.md, engines). Elsewhere it is emulated and slower, so `auto` picks it only
where the hardware has it. Old, new and reference log-probs of one update are all computed in
the same precision as the rollouts (see `memalpha.rl.update`).
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

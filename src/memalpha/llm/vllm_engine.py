"""vLLM in process as a rollout engine (`rollout.engine: vllm`; `pip install 'memalpha[vllm]'`).

Prompt ids in; sampled ids, their log-probs and a finish reason out, as `TransformersLLM`
gives them, so the trainer, readers and the writer cannot tell the engines apart. The trainer
keeps its own (transformers) copy of the policy for the update and, after every optimizer step,
puts the new weights into this engine in place (`reload`, well under a second for SmolLM2
here), so rollouts stay on-policy.

Log-probs are vLLM's `processed_logprobs`: of the distribution the token was drawn from,
after temperature and top-p, as memalpha's transformers engine records them. vLLM's kernels
differ from the trainer's forward pass, so the trainer recomputes the behaviour log-probs
itself with this engine (`benchmarks/engines.py` measures the agreement).

On CPU, vLLM runs one thread unless told which cores to bind (`VLLM_CPU_OMP_THREADS_BIND`),
and must run in this process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`) to reload weights from an
iterator; both are set here unless the environment chooses.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch

from memalpha.errors import BackendError, ConfigError
from memalpha.llm.local import ChatPrompts, stop_token_ids
from memalpha.llm.loops import trim_loop
from memalpha.llm.precision import resolve_dtype
from memalpha.llm.protocol import Generation, SamplingParams


class _ForwardingLib:
    """Stands in for llvmlite's `ffi.lib` while vLLM starts (see `_scan_safe`): forwards every
    attribute, and has a real `__dict__`."""

    def __init__(self, lib: object) -> None:
        self.__dict__["_lib"] = lib

    def __getattr__(self, name: str) -> object:
        return getattr(self.__dict__["_lib"], name)


@contextlib.contextmanager
def _scan_safe() -> Iterator[None]:
    """vLLM 0.32's CPU start-up reads `vars(x).get(...)` of every module attribute of the
    process; llvmlite's `ffi.lib` (loaded with numba, which bm25s imports when installed, and
    vLLM installs it) answers `__dict__` with a C function, and start-up crashes. The stand-in
    is there only while vLLM starts."""
    ffi = sys.modules.get("llvmlite.binding.ffi")
    lib = getattr(ffi, "lib", None)
    if lib is None:
        yield
        return
    ffi.lib = _ForwardingLib(lib)
    try:
        yield
    finally:
        ffi.lib = lib


def _environment(device: str) -> None:
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    if device == "cpu":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", f"0-{max(0, cores - 1)}")


class VllmEngine(ChatPrompts):
    """vLLM behind the `LLM` protocol, plus `generate_ids` and in-place `reload`.

    Args:
        folder: an HF model folder.
        device: 'cpu' or 'cuda'; dtype as `ModelConfig.dtype` ('auto': bf16 where native).
        max_model_len: prompt + response tokens per sequence.
        memory_utilization: the share of the device's memory vLLM reserves (weights and KV
            cache): of GPU memory on CUDA, of RAM on CPU.
    """

    def __init__(
        self,
        folder: Path,
        *,
        device: str = "cpu",
        dtype: str = "auto",
        max_model_len: int = 4096,
        memory_utilization: float = 0.2,
        name: str | None = None,
        chat_template_kwargs: dict | None = None,
    ) -> None:
        _environment(device)
        try:
            from vllm import LLM as VllmLLM
        except ImportError as exc:
            raise ConfigError(
                f"rollout.engine 'vllm' needs vLLM (pip install 'memalpha[vllm]'): {exc}"
            ) from None
        self.name = name or folder.name
        self.chat_template_kwargs = chat_template_kwargs or {}
        self.device = device
        with _scan_safe():
            self.llm = self._start(
                VllmLLM, folder, device, dtype, max_model_len, memory_utilization
            )
        self.tokenizer = self.llm.get_tokenizer()
        from transformers import GenerationConfig

        try:
            generation = GenerationConfig.from_pretrained(folder)
        except OSError:
            generation = GenerationConfig()
        self.stop_ids = stop_token_ids(generation, self.tokenizer)

    @staticmethod
    def _start(factory, folder, device, dtype, max_model_len, memory_utilization):
        return factory(
            model=str(folder),
            dtype=resolve_dtype(dtype, device),
            enforce_eager=True,
            max_model_len=max_model_len,
            logprobs_mode="processed_logprobs",
            seed=0,
            gpu_memory_utilization=memory_utilization,  # vLLM's name; RAM on its CPU backend
            # whole prefills only: vLLM 0.32 discards the tokens of a chunked prefill by
            # rewinding the request's generator, which a seeded request's CPU generator cannot
            # do (RuntimeError: CPU Generator does not use offset)
            enable_chunked_prefill=False,
            max_num_batched_tokens=max(max_model_len, 8192),
        )

    def __enter__(self) -> VllmEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.llm = None

    def generate_ids(
        self, prompt_ids: list[list[int]], sampling: SamplingParams
    ) -> list[Generation]:
        """One generation per prompt. Each prompt gets a seed of its own derived from
        `sampling.seed` (vLLM seeds per request: G identical prompts with one seed would
        sample G identical rollouts)."""
        if self.llm is None:
            raise BackendError(f"{self.name}: backend is closed")
        from vllm.inputs import TokensPrompt

        rows = [sampling.row(row) for row in range(len(prompt_ids))]
        params = [self._params(one, row) for row, one in enumerate(rows)]
        outputs = self.llm.generate(
            [TokensPrompt(prompt_token_ids=list(p)) for p in prompt_ids], params, use_tqdm=False
        )
        return [
            self._generation(out.outputs[0], prompt, one)
            for out, prompt, one in zip(outputs, prompt_ids, rows, strict=True)
        ]

    def _params(self, sampling: SamplingParams, row: int):
        """vLLM's sampling of one row (`sampling` already that row's: `SamplingParams.row`)."""
        from vllm import SamplingParams as VllmSampling

        seed = None
        if sampling.seed is not None:
            digest = hashlib.sha256(f"{sampling.seed}:row:{row}".encode()).digest()
            seed = int.from_bytes(digest[:4], "big")
        return VllmSampling(
            n=1,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=0,
            max_tokens=sampling.max_new_tokens,
            seed=seed,
            logprobs=0 if sampling.logprobs else None,
            stop=list(sampling.stop) or None,
            stop_token_ids=sorted(self.stop_ids),
            include_stop_str_in_output=True,
            skip_special_tokens=True,
        )

    def _generation(self, out, prompt: list[int], sampling: SamplingParams) -> Generation:
        """One output, cut back to the first copy of a loop where `sampling.loop_stop` finds
        one (vLLM decodes the loop to the budget; the cut is the transformers engine's)."""
        ids = list(out.token_ids)
        logprobs = None
        if sampling.logprobs and out.logprobs is not None:
            steps = zip(out.logprobs, ids, strict=True)
            logprobs = tuple(step[token].logprob for step, token in steps)
        reason = "length" if out.finish_reason == "length" else "stop"
        ids, logprobs, looped = trim_loop(ids, logprobs, sampling.loop_stop)
        return Generation(
            text=self.tokenizer.decode(ids, skip_special_tokens=True),
            token_ids=tuple(ids),
            logprobs=logprobs,
            finish_reason="loop" if looped else reason,
            prompt_tokens=len(prompt),
            prompt_ids=tuple(prompt),
        )

    def reload(self, weights: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Put new weights (HF checkpoint names, e.g. a trained model's `named_parameters`)
        into the engine in place."""
        if self.llm is None:
            raise BackendError(f"{self.name}: backend is closed")
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(weights)})

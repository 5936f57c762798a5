"""LLM backends behind one small protocol, and tool-call text formats; nothing of memory."""

from memalpha.llm.batching import by_length, length_batches
from memalpha.llm.formats import FORMATS, FunctionCall, ParsedOutput, ToolCallFormat
from memalpha.llm.loops import LoopStop, loop_cut, trim_loop
from memalpha.llm.memo import GreedyMemo
from memalpha.llm.protocol import LLM, Generation, Message, SamplingParams
from memalpha.llm.registry import ModelConfig, Threads, make_llm, resolve_folder

__all__ = [
    "FORMATS",
    "LLM",
    "FunctionCall",
    "Generation",
    "GreedyMemo",
    "LoopStop",
    "Message",
    "ModelConfig",
    "ParsedOutput",
    "SamplingParams",
    "ToolCallFormat",
    "Threads",
    "by_length",
    "length_batches",
    "loop_cut",
    "make_llm",
    "trim_loop",
    "TransformersLLM",
    "VllmEngine",
    "bf16_native",
    "pin_threads",
    "plain_weights",
    "resolve_dtype",
    "resolve_folder",
]

_LOCAL = {"TransformersLLM", "plain_weights"}  # need torch: imported on first use only
_PRECISION = {"bf16_native", "pin_threads", "resolve_dtype"}


def __getattr__(name: str):
    """`TransformersLLM`, `plain_weights` and the precision helpers load torch; importing
    `memalpha.llm` must not (the server with a rule or served writer never needs it)."""
    if name in _LOCAL:
        from memalpha.llm import local

        return getattr(local, name)
    if name == "VllmEngine":  # needs vLLM (memalpha[vllm] / memalpha[vllm-cpu])
        from memalpha.llm import vllm_engine

        return vllm_engine.VllmEngine
    if name in _PRECISION:
        from memalpha.llm import precision

        return getattr(precision, name)
    raise AttributeError(f"module 'memalpha.llm' has no attribute {name!r}")

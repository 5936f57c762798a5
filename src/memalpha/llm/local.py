"""Local transformers backend (CPU or GPU): an HF model folder or a GGUF file, batched
generation with left padding, exact sampled ids and their log-probabilities.

A GGUF file is de-quantised by transformers on every load (~10 s for SmolLM2 on 2 cores, with
the file parsed once: `gguf_parsed_once`), so the first load saves it as an ordinary HF folder
in the cache directory; later loads take well under a second.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
    TemperatureLogitsWarper,
    TopPLogitsWarper,
)

from memalpha.errors import BackendError, ConfigError
from memalpha.llm.batching import by_length
from memalpha.llm.loops import LoopStop, loop_cut, loops_at_end
from memalpha.llm.precision import resolve_dtype
from memalpha.llm.protocol import Generation, Message, SamplingParams, answer_begun

log = logging.getLogger(__name__)


def cached_hf_folder(path: Path, gguf_file: str, cache_dir: Path) -> Path:
    """Convert `path/gguf_file` to an HF folder under `cache_dir` once; return the folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = path / gguf_file
    if not source.is_file():
        raise ConfigError(f"no GGUF file at '{source}'")
    stat = source.stat()
    key = hashlib.sha1(
        f"v2:{source.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()
    ).hexdigest()
    folder = cache_dir / f"{source.stem}-{key[:12]}"
    if (folder / "config.json").is_file():
        return folder
    log.info("converting %s to an HF folder in %s (once)", source, folder)
    with gguf_parsed_once():
        tokenizer = AutoTokenizer.from_pretrained(path, gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(path, gguf_file=gguf_file)
    plain_weights(model)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # A temporary folder of this process's own, as two runs started side by side each convert.
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f"{folder.name}.", suffix=".tmp"))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    land_folder(tmp, folder)
    return folder


_GGUF_PATCH = threading.Lock()


@contextlib.contextmanager
def gguf_parsed_once():
    """Within the block, one parse of each GGUF file and one tensor-name map per architecture.

    Why: transformers (5.x) parses the whole file once for the tokenizer, once for the config
    and once for the weights (a 49K-token vocabulary is ~6 s a parse on 2 cores), and rebuilds
    gguf's tensor-name map for every module it maps (~400 builds, ~8 s); together most of a
    SmolLM2 conversion. Both are pure functions of their arguments, so the block memoises
    them on the `gguf` module that transformers imports them from at call time, and restores
    the originals on the way out (one block at a time across threads)."""
    import gguf

    with _GGUF_PATCH:
        reader, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
        readers: dict[str, Any] = {}

        def read_once(path, mode="r"):
            key = f"{Path(path).resolve()}:{mode}"
            if key not in readers:
                readers[key] = reader(path, mode)
            return readers[key]

        gguf.GGUFReader = read_once
        gguf.get_tensor_name_map = functools.lru_cache(maxsize=None)(name_map)
        try:
            yield
        finally:
            gguf.GGUFReader, gguf.get_tensor_name_map = reader, name_map


def land_folder(tmp: Path, folder: Path) -> None:
    """Rename the finished `tmp` to `folder` (atomic: a killed conversion never leaves a half
    folder in use); where another run landed the same conversion first, keep its folder and
    drop `tmp`.

    Raises:
        OSError: `folder` could not be written and holds no finished conversion either.
    """
    try:
        tmp.rename(folder)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (folder / "config.json").is_file():
            raise


def plain_weights(model) -> None:
    """Mark a GGUF-loaded (de-quantised) model as an ordinary float model, so that it saves,
    reloads and trains as one (otherwise transformers refuses to serialise it)."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


class ChatPrompts:
    """Chat messages to the exact prompt ids a token-level engine is given, for engines with a
    `tokenizer`, `chat_template_kwargs` and `generate_ids` (transformers, vLLM)."""

    tokenizer: Any
    chat_template_kwargs: dict

    def render(self, messages: list[Message]) -> str:
        """The chat-templated prompt text, ending with the assistant turn's opening, or, when
        the last message is the assistant's, with that message's text left open to continue
        (an answer begun for the model)."""
        begun = answer_begun(messages)
        return self.tokenizer.apply_chat_template(
            messages,
            add_generation_prompt=not begun,
            continue_final_message=begun,
            tokenize=False,
            **self.chat_template_kwargs,
        )

    def prompt_ids(self, messages: list[Message]) -> list[int]:
        return self.tokenizer(self.render(messages), add_special_tokens=False)["input_ids"]

    def generate(self, prompts: list[list[Message]], sampling: SamplingParams) -> list[Generation]:
        return self.generate_ids([self.prompt_ids(p) for p in prompts], sampling)

    def generate_ids(
        self, prompt_ids: list[list[int]], sampling: SamplingParams
    ) -> list[Generation]:
        raise NotImplementedError


class TransformersLLM(ChatPrompts):
    """A causal LM from transformers behind the `LLM` protocol.

    Args:
        folder: an HF model folder (see `cached_hf_folder` for GGUF files).
        device: 'cpu', 'cuda', ...
        dtype: weights' dtype; 'auto' is bfloat16 where the device computes it natively
            (`memalpha.llm.precision`), else float32.
        batch_size: prompts per forward pass.
        chat_template_kwargs: e.g. {"enable_thinking": False} for Qwen3 (as published).
        shared_prefix_min: a batch whose prompts all begin with at least this many equal
            tokens computes those once, for all its rows (`shared_prefix`); 0 never does.

    `compute_dtype` (None: the weights' own) makes generation run under autocast, as the
    trainer's policy does to generate in bf16 from fp32 master weights.
    """

    def __init__(
        self,
        folder: Path,
        *,
        device: str = "cpu",
        dtype: str = "auto",
        batch_size: int = 8,
        name: str | None = None,
        chat_template_kwargs: dict | None = None,
        shared_prefix_min: int = 32,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name = name or folder.name
        self.shared_prefix_min = shared_prefix_min
        self.chat_template_kwargs = chat_template_kwargs or {}
        self.device = device
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.dtype = resolve_dtype(dtype, device)  # type: ignore[arg-type]
        self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, self.dtype))
        self.model.to(device).eval()
        self.compute_dtype: torch.dtype | None = None
        self.stop_ids = stop_token_ids(self.model.generation_config, self.tokenizer)

    def __enter__(self) -> TransformersLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.model = None

    def generate_ids(
        self, prompt_ids: list[list[int]], sampling: SamplingParams
    ) -> list[Generation]:
        """Token ids in, generations out: what a token-level rollout server (verl's) is asked.
        More prompts than `batch_size` are batched by length (`length_batches`), so that a short
        prompt is not padded to a long one's length; the generations come back in prompt order."""
        if self.model is None:
            raise BackendError(f"{self.name}: backend is closed")
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        return by_length(
            [len(p) for p in prompt_ids],
            self.batch_size,
            lambda rows: self._batch([prompt_ids[i] for i in rows], sampling.subset(rows)),
        )

    def _compute(self):
        if self.compute_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.split(":")[0], dtype=self.compute_dtype)

    def _prefilled(self, prefix: list[int], rows: int) -> Any:
        """The KV cache of `prefix`, computed once and repeated for `rows` rows."""
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        with self._compute():
            self.model(input_ids=torch.tensor([prefix], device=self.device), cache=cache)
        cache.batch_repeat_interleave(rows)
        return cache

    @torch.no_grad()
    def _batch(self, prompt_ids: list[list[int]], sampling: SamplingParams) -> list[Generation]:
        """One padded `generate` call. Each row is [shared prefix | pad… | own tail]: the tokens
        every prompt begins with are computed once (`_prefilled`), the tails are left-padded
        after them, and positions count only unpadded tokens, as with plain left padding (with
        no shared prefix, the layout is plain left padding)."""
        pad = self.tokenizer.pad_token_id
        shared = shared_prefix(prompt_ids, self.shared_prefix_min)
        prefix, tails = prompt_ids[0][:shared], [p[shared:] for p in prompt_ids]
        tail_width = max(len(t) for t in tails)
        width = shared + tail_width
        enc = {
            "input_ids": torch.tensor([prefix + [pad] * (tail_width - len(t)) + t for t in tails]),
            "attention_mask": torch.tensor(
                [[1] * shared + [0] * (tail_width - len(t)) + [1] * len(t) for t in tails]
            ),
        }
        enc = {k: v.to(self.device) for k, v in enc.items()}
        if shared:
            enc["cache"] = self._prefilled(prefix, len(prompt_ids))
        recorder = SampledLogprobs() if sampling.logprobs else None
        criteria: list[StoppingCriteria] = []
        if sampling.stop:
            criteria.append(StopOnText(self.tokenizer, sampling.stop, width))
        if sampling.loop_stop is not None:
            criteria.append(StopOnLoop(sampling.loop_stop, width))
        with self._compute():
            result = self.model.generate(
                **enc,
                **sampling_kwargs(sampling, recorder),
                stopping_criteria=StoppingCriteriaList(criteria),
                max_new_tokens=sampling.max_new_tokens,
                eos_token_id=sorted(self.stop_ids),
                pad_token_id=pad,
                return_dict_in_generate=True,
            )
        new = result.sequences[:, enc["input_ids"].shape[1] :]  # (B, T)
        logprobs = recorder.finish(new) if recorder is not None else None
        return [
            self._generation(
                new[b].tolist(),
                None if b in sampling.greedy_rows else logprobs,
                b,
                prompt_ids[b],
                sampling,
            )
            for b in range(new.shape[0])
        ]

    def _generation(
        self,
        ids: list[int],
        logprobs: torch.Tensor | None,
        row: int,
        prompt_ids: list[int],
        sampling: SamplingParams,
    ) -> Generation:
        """One row cut where it stopped: after its first stop token (kept: it was sampled and
        is trained on), after the token that completed a stop string, or after the first copy
        of a loop; what follows is padding, or the loop's repeats, and is dropped."""
        end, reason = len(ids), "length"
        for i, token in enumerate(ids):
            if token in self.stop_ids:
                end, reason = i + 1, "stop"
                break
        cut = stop_string_end(self.tokenizer, ids[:end], sampling.stop)
        if cut is not None:
            end, reason = cut, "stop"
        cut = loop_cut(ids[:end], sampling.loop_stop)
        if cut is not None:
            end, reason = cut, "loop"
        ids = ids[:end]
        return Generation(
            text=self.tokenizer.decode(ids, skip_special_tokens=True),
            token_ids=tuple(ids),
            logprobs=tuple(logprobs[row, :end].tolist()) if logprobs is not None else None,
            finish_reason=reason,
            prompt_tokens=len(prompt_ids),
            prompt_ids=tuple(prompt_ids),
        )


def shared_prefix(prompt_ids: list[list[int]], minimum: int) -> int:
    """How many leading tokens a batch computes once for all its rows: the prompts' longest
    common prefix, less one token (each row must feed the model at least one token of its
    own), or 0 when that is under `minimum` (an extra forward pass for a few tokens is not
    worth it; 0 turns sharing off) or the batch is one prompt.

    Prompts of one system prompt share it (the reader's ~90 tokens; the writer's whole
    system prompt), questions to one memory share the memory as far as its order agrees."""
    if len(prompt_ids) < 2 or minimum <= 0:
        return 0
    first, n = prompt_ids[0], min(len(p) for p in prompt_ids) - 1
    for i in range(n):
        if any(p[i] != first[i] for p in prompt_ids):
            n = i
            break
    return n if n >= minimum else 0


def stop_token_ids(generation_config, tokenizer) -> set[int]:
    """Every id that ends a response: the tokenizer's EOS and all of the model's generation
    EOS ids (Qwen3 lists <|im_end|> and <|endoftext|>, which is also its pad token)."""
    ids = generation_config.eos_token_id
    ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
    return {*ids, tokenizer.eos_token_id} - {None}


def stop_string_end(tokenizer, ids: list[int], stop_strings: tuple[str, ...]) -> int | None:
    """The length of the shortest prefix of `ids` whose text holds a stop string, or None.
    Prefix texts only grow, so a binary search over prefix lengths finds it."""
    if not stop_strings:
        return None

    def holds(n: int) -> bool:
        text = tokenizer.decode(ids[:n], skip_special_tokens=False)
        return any(s in text for s in stop_strings)

    if not holds(len(ids)):
        return None
    lo, hi = 1, len(ids)
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if holds(mid) else (mid + 1, hi)
    return lo


class StopOnText(StoppingCriteria):
    """Ends a row once its generated text holds a stop string. Decodes only each row's last
    few tokens per step (transformers' own StopStringCriteria needs a tokenizer whose vocabulary
    it can map to strings, which not every tokenizer allows)."""

    def __init__(self, tokenizer, stop_strings: tuple[str, ...], prompt_width: int) -> None:
        self.tokenizer, self.stop_strings, self.start = tokenizer, stop_strings, prompt_width
        self.window = 8 + max(len(s) for s in stop_strings)  # tokens: ≥ 1 character each

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        tails = input_ids[:, max(self.start, input_ids.shape[1] - self.window) :].tolist()
        texts = self.tokenizer.batch_decode(tails, skip_special_tokens=False)
        done = [any(s in text for s in self.stop_strings) for text in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class StopOnLoop(StoppingCriteria):
    """Ends a row once its generated tokens end in a loop (`memalpha.llm.loops`), which saves
    decoding the loop to the budget; `_generation` then cuts the row back to where the loop
    began. Looks every `every` steps (a check costs ~max_span small comparisons): the cut is the
    same whenever the loop is seen, only up to `every` - 1 more tokens are decoded."""

    def __init__(self, stop: LoopStop, prompt_width: int, every: int = 8) -> None:
        self.stop, self.start, self.every = stop, prompt_width, every

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        steps = input_ids.shape[1] - self.start
        if steps % self.every:
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        done = loops_at_end(input_ids[:, self.start :].cpu().numpy(), self.stop)
        return torch.from_numpy(done).to(input_ids.device)


def sampling_kwargs(sampling: SamplingParams, recorder: SampledLogprobs | None) -> dict:
    """`generate` arguments for `sampling`. With a recorder or greedy rows, temperature and
    top-p are applied by our own processor list (transformers' own warpers, in its order),
    then the greedy rows are made one-hot on their argmax, then the recorder, last, sees the
    scores each token is drawn from; transformers then adds no warper of its own. Top-k is off
    (0), whatever the model's generation config says."""
    if sampling.temperature == 0:
        return {
            "do_sample": False,
            "temperature": None,
            "top_p": None,
            "top_k": None,
            "logits_processor": LogitsProcessorList([recorder] if recorder is not None else []),
        }
    if recorder is None and not sampling.greedy_rows:
        return {
            "do_sample": True,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "top_k": 0,
        }
    processors: list[LogitsProcessor] = []
    if sampling.temperature != 1.0:
        processors.append(TemperatureLogitsWarper(sampling.temperature))
    if sampling.top_p < 1.0:
        processors.append(TopPLogitsWarper(top_p=sampling.top_p))
    if sampling.greedy_rows:
        processors.append(GreedyRows(sampling.greedy_rows))
    if recorder is not None:
        processors.append(recorder)
    return {
        "do_sample": True,
        "temperature": 1.0,
        "top_p": 1.0,
        "top_k": 0,
        "logits_processor": LogitsProcessorList(processors),
    }


class GreedyRows(LogitsProcessor):
    """Leaves only the argmax of the given rows, so that sampling picks it: those rows decode
    greedily in a batch that samples the others (one generate call instead of two; on a CPU
    each call costs a fixed ~35 ms per decoding step whatever its rows)."""

    def __init__(self, rows: tuple[int, ...]) -> None:
        self.rows = list(rows)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        chosen = scores[self.rows]
        top = chosen.argmax(-1, keepdim=True)
        scores[self.rows] = torch.full_like(chosen, float("-inf")).scatter(
            -1, top, chosen.gather(-1, top)
        )
        return scores


class SampledLogprobs(LogitsProcessor):
    """Records the log-probability of each sampled token under the processed distribution it
    was drawn from, keeping one step's (B, V) scores at a time instead of every step's (~80 GB
    for Qwen3-4B at batch 64 x 2048 tokens). Called once per step, last in the processor list:
    it gathers the previous step's log-prob of the token that step appended, then holds this
    step's distribution until the next call (or `finish`)."""

    def __init__(self) -> None:
        self.gathered: list[torch.Tensor] = []  # (B,) per completed step
        self.pending: torch.Tensor | None = None  # (B, V) log-probs of the current step

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.pending is not None:
            self.gathered.append(self.pending.gather(-1, input_ids[:, -1:]).squeeze(-1))
        self.pending = scores.float().log_softmax(-1)
        return scores

    def finish(self, new: torch.Tensor) -> torch.Tensor:
        """(B, T) log-probs of the generated ids `new` (T = the steps generation kept)."""
        steps = new.shape[1]
        if len(self.gathered) < steps and self.pending is not None:
            last = new[:, len(self.gathered) : len(self.gathered) + 1]
            self.gathered.append(self.pending.gather(-1, last).squeeze(-1))
        self.pending = None
        if not self.gathered:
            return torch.zeros((new.shape[0], 0))
        return torch.stack(self.gathered[:steps], dim=1)

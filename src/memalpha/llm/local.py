"""Local transformers backend (CPU or GPU): an HF model folder or a GGUF file, batched
generation with left padding, exact sampled ids and their log-probabilities.

A GGUF file is de-quantised by transformers on every load (~20 s for SmolLM2 on 2 cores), so
the first load saves it as an ordinary HF folder in the cache directory; later loads take
well under a second.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch

from memalpha.errors import BackendError, ConfigError
from memalpha.llm.protocol import Generation, Message, SamplingParams

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
    tokenizer = AutoTokenizer.from_pretrained(path, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(path, gguf_file=gguf_file)
    plain_weights(model)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(folder.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(folder)  # atomic: a killed conversion never leaves a half folder in use
    return folder


def plain_weights(model) -> None:
    """Mark a GGUF-loaded (de-quantised) model as an ordinary float model, so that it saves,
    reloads and trains as one (otherwise transformers refuses to serialise it)."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


class TransformersLLM:
    """A causal LM from transformers behind the `LLM` protocol.

    Args:
        folder: an HF model folder (see `cached_hf_folder` for GGUF files).
        device: 'cpu', 'cuda', ... ; dtype: 'float32' on CPU, 'bfloat16' on GPU.
        batch_size: prompts per forward pass.
        chat_template_kwargs: e.g. {"enable_thinking": False} for Qwen3 (as published).
    """

    def __init__(
        self,
        folder: Path,
        *,
        device: str = "cpu",
        dtype: str = "float32",
        batch_size: int = 8,
        name: str | None = None,
        chat_template_kwargs: dict | None = None,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.name = name or folder.name
        self.chat_template_kwargs = chat_template_kwargs or {}
        self.device = device
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype))
        self.model.to(device).eval()

    def __enter__(self) -> TransformersLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.model = None

    def render(self, messages: list[Message]) -> str:
        """The chat-templated prompt text, ending with the assistant turn's opening."""
        return self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False, **self.chat_template_kwargs
        )

    def generate(self, prompts: list[list[Message]], sampling: SamplingParams) -> list[Generation]:
        texts = [self.render(p) for p in prompts]
        ids = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        return self.generate_ids(ids, sampling)

    def generate_ids(
        self, prompt_ids: list[list[int]], sampling: SamplingParams
    ) -> list[Generation]:
        """Token ids in, generations out: what a token-level rollout server (verl's) is asked."""
        if self.model is None:
            raise BackendError(f"{self.name}: backend is closed")
        if sampling.seed is not None:
            torch.manual_seed(sampling.seed)
        out: list[Generation] = []
        for i in range(0, len(prompt_ids), self.batch_size):
            out += self._batch(prompt_ids[i : i + self.batch_size], sampling)
        return out

    @torch.no_grad()
    def _batch(self, prompt_ids: list[list[int]], sampling: SamplingParams) -> list[Generation]:
        pad, width = self.tokenizer.pad_token_id, max(len(p) for p in prompt_ids)
        enc = {  # left padding, as the tokenizer is configured
            "input_ids": torch.tensor([[pad] * (width - len(p)) + p for p in prompt_ids]),
            "attention_mask": torch.tensor(
                [[0] * (width - len(p)) + [1] * len(p) for p in prompt_ids]
            ),
        }
        enc = {k: v.to(self.device) for k, v in enc.items()}
        greedy = sampling.temperature == 0
        result = self.model.generate(
            **enc,
            max_new_tokens=sampling.max_new_tokens,
            do_sample=not greedy,
            temperature=None if greedy else sampling.temperature,
            top_p=None if greedy else sampling.top_p,
            top_k=None,
            pad_token_id=pad,
            return_dict_in_generate=True,
            output_scores=sampling.logprobs,
        )
        new = result.sequences[:, enc["input_ids"].shape[1] :]  # (B, T)
        logprobs = None
        if sampling.logprobs:
            # scores are the processed logits (temperature/top-p applied): the sampling policy
            scores = torch.stack(result.scores, dim=1).float().log_softmax(-1)  # (B, T, V)
            logprobs = scores.gather(-1, new.unsqueeze(-1)).squeeze(-1)  # (B, T)
        eos = self.tokenizer.eos_token_id
        gens = []
        for b in range(new.shape[0]):
            ids = new[b].tolist()
            stop = ids.index(eos) + 1 if eos in ids else len(ids)  # keep EOS, drop padding
            ids = ids[:stop]
            gens.append(
                Generation(
                    text=self.tokenizer.decode(ids, skip_special_tokens=True),
                    token_ids=tuple(ids),
                    logprobs=tuple(logprobs[b, :stop].tolist()) if logprobs is not None else None,
                    finish_reason="stop" if ids and ids[-1] == eos else "length",
                    prompt_tokens=len(prompt_ids[b]),
                    prompt_ids=tuple(prompt_ids[b]),
                )
            )
        return gens

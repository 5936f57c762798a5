"""The trainable policy: the local transformers backend whose weights the trainer updates in
place, so rollouts are always on-policy, plus the one function that scores responses.

Prompts are tokenised exactly as the backend tokenised them for generation (chat template, no
added special tokens); responses are the sampled ids themselves, EOS included, never
re-tokenised text (DESIGN §4).
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import torch

from memalpha.agent import WriterConfig, save_writer_config
from memalpha.errors import ConfigError
from memalpha.llm import (
    Message,
    ModelConfig,
    TransformersLLM,
    bf16_native,
    plain_weights,
    resolve_folder,
)
from memalpha.rl.config import LoraConfig


class Policy:
    """A `TransformersLLM` (for rollouts) whose model is trained (optionally through LoRA).

    Weights are `policy.dtype`, float32 for `auto` (master weights for the optimizer). With
    `bf16`, everything the policy computes, rollouts and the old, new and reference log-probs
    of the update, runs under one bf16 autocast (`autocast`), so the PPO ratio of an unchanged
    policy is exactly 1 and clipping does not fire on precision noise.
    """

    def __init__(
        self,
        cfg: ModelConfig,
        lora: LoraConfig | None = None,
        folder: Path | None = None,
        *,
        bf16: bool = False,
    ):
        self.cfg = cfg
        self.folder = folder or resolve_folder(cfg)
        self.llm = TransformersLLM(
            self.folder,
            device=cfg.device,
            dtype="float32" if cfg.dtype == "auto" else cfg.dtype,
            batch_size=cfg.batch_size,
            chat_template_kwargs=cfg.chat_template_kwargs,
            name=cfg.model,
            shared_prefix_min=cfg.shared_prefix_min,
        )
        self.bf16 = bf16
        self.llm.compute_dtype = torch.bfloat16 if bf16 else None
        self.frozen: set[str] = set()  # parameters stored in bf16 (see `freeze_below`)
        self.first_trained: int | None = None  # the layers below it are frozen (`freeze_below`)
        plain_weights(self.llm.model)  # caches converted before quantizer-free saving
        self.lora = lora if lora is not None and lora.enabled else None
        if self.lora is not None:
            from peft import LoraConfig as PeftLora
            from peft import get_peft_model

            self.llm.model = get_peft_model(
                self.llm.model,
                PeftLora(
                    r=self.lora.r,
                    lora_alpha=self.lora.alpha,
                    lora_dropout=self.lora.dropout,
                    target_modules=list(self.lora.target_modules),
                ),
            )

    def train_top_layers(self, top_layers: int | None) -> None:
        """Apply a run's `train_layers` (None: train every weight). The SFT and the GRPO run
        both call this, so a warm start and the run after it can freeze alike.

        Raises:
            ConfigError: with LoRA (its adapters sit in every layer), or no decoder stack.
        """
        if top_layers is None:
            return
        if self.lora is not None:
            raise ConfigError("train_layers and lora.enabled exclude each other")
        self.freeze_below(top_layers)

    def freeze_below(self, top_layers: int) -> None:
        """Train only the top `top_layers` decoder layers and the final norm. Under bf16 the
        frozen weights are stored in bf16: autocast casts only weights that require grad
        once per context and re-casts the others on every forward pass, which made each
        generation step ~1.5x slower here (benchmarks/RESULTS.md). The values are the ones
        autocast would have computed with; the reference model gets the same (`reference`).

        Raises:
            ConfigError: the model has no `model.layers` stack (not a decoder-only LM).
        """
        base = getattr(self.model, "model", None)
        layers = getattr(base, "layers", None)
        if layers is None:
            raise ConfigError(f"{self.cfg.model}: train_layers needs a decoder with model.layers")
        for p in self.model.parameters():
            p.requires_grad_(False)
        for module in [*layers[-top_layers:], getattr(base, "norm", None)]:
            if module is not None:
                for p in module.parameters():
                    p.requires_grad_(True)
        self.first_trained = max(0, len(layers) - top_layers)
        if self.bf16:
            self.frozen = {n for n, p in self.model.named_parameters() if not p.requires_grad}
            _to_bf16(self.model, self.frozen)

    @property
    def model(self) -> torch.nn.Module:
        return self.llm.model

    def autocast(self):
        """The precision context of every forward pass of this policy (see the class doc)."""
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.split(":")[0], dtype=torch.bfloat16)

    @property
    def tokenizer(self):
        return self.llm.tokenizer

    @property
    def device(self) -> str:
        return self.llm.device

    def prompt_ids(self, messages: list[Message]) -> list[int]:
        """The ids the backend fed the model for this prompt."""
        return self.llm.prompt_ids(messages)

    def response_ids(self, text: str) -> list[int]:
        """A response written elsewhere (a teacher's) as the ids this policy would have
        generated for it: its tokens and the end-of-sequence token that stops it."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return [*ids, self.tokenizer.eos_token_id]

    def prompt_tokens(self, messages: list[Message]) -> int:
        """A whole chat-templated prompt's length in this policy's tokens (the published
        chunk-prompt cap counts these: `memory.view.max_prompt_tokens` under the trainer)."""
        return len(self.prompt_ids(messages))

    def batch(
        self, prompts: list[list[int]], responses: list[list[int]]
    ) -> dict[str, torch.Tensor]:
        """`pad_batch` with this policy's pad token, on its device."""
        return pad_batch(prompts, responses, self.tokenizer.pad_token_id, self.device)

    def reference(self) -> torch.nn.Module | None:
        """A frozen copy of the *starting* weights for the KL term, loaded from the configured
        model (so a resumed run keeps the same reference). None under LoRA: the model with its
        adapters disabled is the reference."""
        if self.lora is not None:
            return None
        from transformers import AutoModelForCausalLM

        ref = AutoModelForCausalLM.from_pretrained(
            resolve_folder(self.cfg), dtype=getattr(torch, self.llm.dtype)
        )
        ref.to(self.device).eval()
        for p in ref.parameters():
            p.requires_grad_(False)
        _to_bf16(ref, self.frozen)  # the policy's own frozen weights, exactly
        return ref

    def save(self, folder: Path, writer: WriterConfig | None = None) -> None:
        """An HF folder any backend can load (LoRA adapters merged into a copy), with the
        writer config it was trained for (`writer.json`), which loaders use by default."""
        model = self.model
        if self.lora is not None:
            model = copy.deepcopy(model).merge_and_unload()
        model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        if writer is not None:
            save_writer_config(folder, writer)

    def save_adapter(self, folder: Path) -> None:
        self.model.save_pretrained(folder)

    def load_adapter(self, folder: Path) -> None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(self.model, load_file(folder / "adapter_model.safetensors"))

    def close(self) -> None:
        self.llm.close()


def _to_bf16(model: torch.nn.Module, names: set[str]) -> None:
    for name, param in model.named_parameters():
        if name in names:
            param.data = param.data.to(torch.bfloat16)


def uses_bf16(setting: bool | str, device: str) -> bool:
    """`ppo.autocast_bf16` on `device`: auto is bf16 where the device has it natively."""
    return bf16_native(device) if setting == "auto" else bool(setting)


def pad_batch(
    prompts: list[list[int]], responses: list[list[int]], pad_id: int, device: str
) -> dict[str, torch.Tensor]:
    """[pad…prompt | response…pad]: every response starts at the same column P, so only the
    last R+1 positions need logits."""
    P = max(len(p) for p in prompts)
    R = max(len(r) for r in responses)
    B = len(prompts)
    ids = torch.full((B, P + R), pad_id, dtype=torch.long)
    attn = torch.zeros((B, P + R), dtype=torch.long)
    mask = torch.zeros((B, R), dtype=torch.float32)
    for b, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        ids[b, P - len(p) : P] = torch.tensor(p)
        ids[b, P : P + len(r)] = torch.tensor(r)
        attn[b, P - len(p) : P + len(r)] = 1
        mask[b, : len(r)] = 1
    position_ids = (attn.cumsum(-1) - 1).clamp(min=0)  # as generate() computes them
    return {
        "input_ids": ids.to(device),
        "attention_mask": attn.to(device),
        "position_ids": position_ids.to(device),
        "response_mask": mask.to(device),
    }


def response_logprobs(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], temperature: float = 1.0
) -> torch.Tensor:
    """(B, R) log-probabilities of the response tokens under `model` at `temperature`."""
    R = batch["response_mask"].shape[1]
    logits = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        position_ids=batch["position_ids"],
        logits_to_keep=R + 1,
        use_cache=False,  # a scoring pass: no KV cache to build (and none for `Trunk` to see)
    ).logits[:, :R]  # (B, R, V): position P−1+j predicts response token j
    return _logprobs(logits, batch, temperature)


def _logprobs(
    logits: torch.Tensor, batch: dict[str, torch.Tensor], temperature: float
) -> torch.Tensor:
    R = batch["response_mask"].shape[1]
    logits = logits.float()
    if temperature > 0 and temperature != 1.0:
        logits = logits / temperature
    targets = batch["input_ids"][:, -R:]  # (B, R)
    return logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


class Trunk:
    """What the policy's first trained layer was called with in one forward pass: its input
    (the output of the frozen layers below it) and the mask, rotary embeddings and positions
    every layer gets. The reference shares those frozen layers exactly (`Policy.reference`),
    so its log-probs need only its own upper layers on this input (`upper_logprobs`): the
    CPU recipe's reference pass ran all 30 layers of which 20 repeat the policy's."""

    def __init__(self, first: int) -> None:
        self.first = first  # the index of the first trained layer
        self.hidden: torch.Tensor | None = None
        self.kwargs: dict = {}

    @classmethod
    @contextlib.contextmanager
    def of(cls, policy: Policy):
        """Captures the trunk of the forward passes inside (the first only); None when the
        policy trains every layer or adapters (nothing is shared with the reference)."""
        if policy.first_trained is None or policy.lora is not None:
            yield None
            return
        trunk = cls(policy.first_trained)

        def hook(module, args, kwargs):
            if trunk.hidden is None:  # gradient checkpointing calls the layer again
                trunk.hidden = (args[0] if args else kwargs["hidden_states"]).detach()
                trunk.kwargs = {k: v for k, v in kwargs.items() if k != "hidden_states"}

        layer = policy.model.model.layers[trunk.first]
        handle = layer.register_forward_pre_hook(hook, with_kwargs=True)
        try:
            yield trunk
        finally:
            handle.remove()

    def upper_logprobs(
        self, model: torch.nn.Module, batch: dict[str, torch.Tensor], temperature: float
    ) -> torch.Tensor:
        """(B, R) response log-probs of `model` (the reference) from this trunk: its layers
        from `first` up, its final norm and head, as its own forward pass would compute."""
        R = batch["response_mask"].shape[1]
        hidden = self.hidden
        for layer in model.model.layers[self.first :]:
            out = layer(hidden, **self.kwargs)
            hidden = out[0] if isinstance(out, tuple) else out
        logits = model.lm_head(model.model.norm(hidden[:, -(R + 1) :]))[:, :R]
        return _logprobs(logits, batch, temperature)

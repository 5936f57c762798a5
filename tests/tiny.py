"""A tiny randomly initialised causal LM, built from a local config, on a trivially learnable
memory task — fast enough to run the whole GRPO loop (rollouts, reward, update, checkpoints)
in seconds on a CPU.

The tokenizer is word-level with a 16-token vocabulary in which some tokens are whole Hermes
tool calls (`<tool_call>{… "content": "The code word is alpha."}</tool_call>`). A random policy
therefore writes valid calls some of the time, and the reward separates good from bad memories:
storing the right word answers the question (r1), a duplicate insert fails (r2). The prompt is
encoded as mostly <unk>, which is fine: the task is the same for every prompt.
"""

from __future__ import annotations

import json

import torch
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from memalpha.data import QA, Competency, Instance

WORDS = ["alpha", "beta", "gamma", "delta"]
FILLERS = ["hmm", "ok", "well", "so", "right", "yes", "now", "then"]


def _hermes(name: str, args: dict) -> str:
    """One whole Hermes tool call as text (one token of the tiny vocabulary)."""
    payload = json.dumps({"name": name, "arguments": args})
    return f"<tool_call>\n{payload}\n</tool_call>\n"


def call_token(word: str) -> str:
    args = {"memory_type": "semantic_memory", "content": f"The code word is {word}."}
    return _hermes("new_memory_insert", args)


def update_token(word: str) -> str:
    """A whole Hermes call that rewrites the first semantic entry (`s1`) with `word`."""
    args = {
        "memory_type": "semantic_memory",
        "memory_id": "s1",
        "new_content": f"The code word is {word}.",
    }
    return _hermes("memory_update", args)


def build_tiny_model(folder, seed: int = 0, extra_calls: tuple[str, ...] = ()):
    """Save a 2-layer Llama with the word-level tokenizer to `folder`; return the folder.
    `extra_calls` adds whole-call tokens (`update_token`) after the insert calls."""
    calls = [call_token(w) for w in WORDS] + list(extra_calls)
    vocab = ["<pad>", "<unk>", "<eos>"] + calls + FILLERS
    tok = Tokenizer(models.WordLevel({t: i for i, t in enumerate(vocab)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if extra_calls:  # text that spells a call encodes as its token (what SFT transcripts need)
        tok.add_tokens([AddedToken(t, normalized=False) for t in calls])
    tok.decoder = decoders.Fuse()  # call tokens carry their own newlines
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>"
    )
    fast.chat_template = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}"
    )
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=2,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = 2
    model.generation_config.pad_token_id = 0
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def code_word_instance() -> Instance:
    return Instance(
        id="tiny-code-word",
        data_source="tiny",
        competency=Competency.ACCURATE_RETRIEVAL,
        metric="containment",
        chunks=["The code word is alpha.", "Nothing else happened today."],
        questions=[QA(id="q1", question="What is the code word?", answers=["alpha"])],
    )


def tiny_config(model, data, out_dir, **overrides) -> dict:
    """A TrainConfig dict for the tiny task (dotted keys in `overrides` replace values)."""
    cfg = {
        "out_dir": str(out_dir),
        "seed": 0,
        "policy": {"model": str(model), "batch_size": 16},
        "data": {"train_files": [str(data)], "val_files": [str(data)]},
        "rollout": {
            "instances_per_step": 1,
            "group_size": 8,
            "temperature": 1.0,
            "max_new_tokens": 3,
        },
        "optim": {"lr": 0.02, "warmup_ratio": 0.0},
        "ppo": {"kl_coef": 0.0, "micro_batch_size": 8},
        "schedule": {"steps": 4, "val_every": 2, "save_every": 2, "keep_last": 1},
    }
    for key, value in overrides.items():
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return cfg

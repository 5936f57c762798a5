#!/usr/bin/env bash
# Train the memalpha writer with verl 0.9's V1 trainer on a Ray cluster (docs/verl.md).
#
# Everything site-specific comes from the environment; nothing is downloaded.
#   MODEL            HF folder of the policy (e.g. /models/Qwen3-4B)              required
#   MEMALPHA_CONFIG  memalpha train config: data, memory, prompt, reader, judge, reward
#                    (default configs/train/paper-qwen3-4b.yaml; point its reader/judge
#                    base_url at your Qwen3-32B vLLM server). Read once, on this machine.
#   DATA_DIR         where train.parquet / val.parquet are written (default data/verl)
#   CKPT_DIR         verl checkpoints (default runs/verl-qwen3-4b)
#   NNODES, GPUS_PER_NODE   cluster size (published: 4 × 8 H100)
# Extra arguments are passed to verl as further Hydra overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${MODEL:?set MODEL to the policy's HF folder}"
MEMALPHA_CONFIG="${MEMALPHA_CONFIG:-configs/train/paper-qwen3-4b.yaml}"
DATA_DIR="${DATA_DIR:-data/verl}"
CKPT_DIR="${CKPT_DIR:-runs/verl-qwen3-4b}"

memalpha data verl --config "$MEMALPHA_CONFIG" --out-dir "$DATA_DIR"

mapfile -t OVERRIDES < <(grep -v '^\s*#' configs/verl/paper-qwen3-4b.overrides | grep -v '^\s*$')
python -m memalpha.rl.verl \
  memalpha.config_path="$MEMALPHA_CONFIG" \
  "${OVERRIDES[@]}" \
  actor_rollout_ref.model.path="$MODEL" \
  data.train_files="$DATA_DIR/train.parquet" \
  data.val_files="$DATA_DIR/val.parquet" \
  trainer.default_local_dir="$CKPT_DIR" \
  trainer.nnodes="${NNODES:-4}" \
  trainer.n_gpus_per_node="${GPUS_PER_NODE:-8}" \
  trainer.experiment_name="$(basename "$CKPT_DIR")" \
  "$@"

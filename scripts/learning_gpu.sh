#!/usr/bin/env bash
# Issue 25's experiment on one CUDA GPU, at the scale the 2-core CPU runs could not afford:
#   1. the ids-after warm start on the selective teacher   configs/sft/gpu-select-idafter.yaml
#   2. GRPO, branch groups of 16 at change chunks, keep at 0.25, 32 a step, 16 steps, seeds 0 1 2
#                                                          configs/train/gpu-select-sparse-wide.yaml
#   3. the length study at 1x, 4x, 16x (the seeds, their warm start, the selective teacher, the
#      rule writer), answered by Qwen2.5-Coder-0.5B         configs/eval/gpu-select-length.yaml
#   4. the issue's comparisons: `memalpha report` at 1x and 16x (the GRPO seeds pooled, against
#      the warm start and the rule writer, paired by instance) and benchmarks/length_ratio.py (16x
#      over 1x, with its interval)
# Every stage resumes: run it again after a kill. Results under runs/gpu-select/.
#
#   DEVICE=cuda   (default) or cpu
#   MODEL=...     the writer before its warm start (default: the packaged SmolLM2-135M; a larger
#                 one from a local folder, e.g. /models/Qwen2.5-1.5B-Instruct)
#   ROOT=...      where the runs go (default runs/gpu-select; runs/gpu-select-smoke with SMOKE)
#   SMOKE=1       the same chain at toy size (one instance a source, one GRPO step of 2 groups of
#                 2, scales 1x and 2x): checks the wiring on a CPU with DEVICE=cpu
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE="${DEVICE:-cuda}"
MODEL="${MODEL:-smollm2-135m-instruct}"
SEEDS=(0 1 2)   # configs/eval/gpu-select-length.yaml names these three
ROOT="${ROOT:-runs/gpu-select}"
STEP=16         # schedule.steps of the train config
LONG=16         # the longest scale of the eval config
SFT=() TRAIN=() EVAL=()
if [[ "${SMOKE:-0}" == 1 ]]; then
  ROOT="${ROOT/%gpu-select/gpu-select-smoke}" STEP=1 LONG=2
  SFT=(--set epochs=1 --set examples=12)
  for i in 0 1 2; do SFT+=(--set "data.train.$i.instances=1"); done
  TRAIN=(--set schedule.steps=1 --set schedule.save_every=1 --set rollout.instances_per_step=2
         --set rollout.group_size=2 --set policy.batch_size=8 --set ppo.micro_batch_size=2)
  for i in 0 1 2 3; do TRAIN+=(--set "data.train.$i.instances=1"); done
  EVAL=(--set "scales=[$LONG, 1]")
  for i in 0 1 2; do EVAL+=(--set "datasets.$i.instances=1"); done
fi
CKPT="checkpoints/step_$(printf %06d "$STEP")/policy"

if [[ ! -f "$ROOT/sft/sft.json" ]]; then   # a finished warm start is kept
  memalpha sft --config configs/sft/gpu-select-idafter.yaml --out "$ROOT/sft" \
    --set policy.model="$MODEL" --set policy.device="$DEVICE" "${SFT[@]}"
fi
for seed in "${SEEDS[@]}"; do
  memalpha train --config configs/train/gpu-select-sparse-wide.yaml --set seed="$seed" \
    --set out_dir="$ROOT/grpo-s$seed" --set policy.model="$ROOT/sft/policy" \
    --set policy.device="$DEVICE" "${TRAIN[@]}"
done

EVAL+=(--set out_dir="$ROOT/eval-length" --set reader.model.device="$DEVICE"
       --set methods.2.policy.model="$ROOT/sft/policy" --set methods.2.policy.device="$DEVICE")
for seed in "${SEEDS[@]}"; do
  m=$((3 + seed))
  EVAL+=(--set "methods.$m.policy.model=$ROOT/grpo-s$seed/$CKPT" --set "methods.$m.policy.device=$DEVICE")
done
memalpha eval --config configs/eval/gpu-select-length.yaml "${EVAL[@]}"

RUN="$ROOT/eval-length"
memalpha report "$RUN" --scale 1 | tee "$RUN/report-1x.md"   # grpo-seeds: the config's pool of the seeds
memalpha report "$RUN" --scale "$LONG" | tee "$RUN/report-${LONG}x.md"
python benchmarks/length_ratio.py --scale "$LONG" --out "$RUN/length_ratio.json" \
  $(printf -- "--method $RUN/summary.json:grpo-s%s " "${SEEDS[@]}")

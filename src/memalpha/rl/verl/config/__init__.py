"""Hydra config of `python -m memalpha.rl.verl` (memalpha_ppo.yaml)."""

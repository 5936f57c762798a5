"""Training on clusters with verl 0.9: a memalpha agent loop, a reward function and a dataset
writer that reuse the agent, memory, reader and reward code of the local trainer.

The verl-free parts (`episode`, `reward_fn`, `dataset`) import without verl; only
`memalpha.rl.verl.agent_loop` needs it (`pip install 'memalpha[verl]'`). How the published
sample shape — one sample per (trajectory, chunk) — maps onto verl is explained in
docs/verl.md and in `episode.pick_chunk`.
"""

from memalpha.rl.verl.dataset import verl_rows, write_verl_parquet
from memalpha.rl.verl.episode import (
    EpisodeRecord,
    Writer,
    from_record,
    pick_chunk,
    to_record,
)
from memalpha.rl.verl.reward_fn import compute_score

__all__ = [
    "EpisodeRecord",
    "Writer",
    "compute_score",
    "from_record",
    "pick_chunk",
    "to_record",
    "verl_rows",
    "write_verl_parquet",
]

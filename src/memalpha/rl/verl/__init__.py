"""Training on clusters with verl 0.9's V1 trainer: a memalpha agent loop that returns one
sample per chunk, a reward function and a trainer that give each chunk sample the local
trainer's reward and GRPO advantage, a launcher (`python -m memalpha.rl.verl`) and a dataset
writer, all reusing the agent, memory, reader and reward code of the local trainer.

The verl-free parts (`episode`, `reward_fn`, `samples`, `shipped`, `dataset`) import without
verl; `agent_loop`, `trainer` and `launch` need it (`pip install 'memalpha[verl]'`). How the
published sample shape maps onto verl is explained in docs/verl.md.
"""

from memalpha.rl.verl.dataset import verl_rows, write_verl_parquet
from memalpha.rl.verl.episode import EpisodeRecord, Writer, from_record, to_record
from memalpha.rl.verl.reward_fn import compute_score
from memalpha.rl.verl.samples import ChunkAdvantages, SampleKey, chunk_advantages
from memalpha.rl.verl.shipped import config_from_json, config_json

__all__ = [
    "ChunkAdvantages",
    "EpisodeRecord",
    "SampleKey",
    "Writer",
    "chunk_advantages",
    "compute_score",
    "config_from_json",
    "config_json",
    "from_record",
    "to_record",
    "verl_rows",
    "write_verl_parquet",
]

"""`memalpha plot RUN_DIR`: training curves as one PNG (reward terms, QA, memory size,
validation), drawn from metrics.jsonl so it works on a live, finished or resumed run."""

from __future__ import annotations

from pathlib import Path

from memalpha.errors import DataError
from memalpha.rl.trainer import METRICS, read_metrics

PANELS = [  # (title, train keys, val keys)
    (
        "reward terms (train)",
        [  # branch_*: a branch-group run's chunk aim, greedy and sampled, if any
            "reward",
            "r1_qa",
            "r2_calls",
            "r3_compression",
            "r4_validity",
            "r5_aim",
            "branch_greedy_r5",
            "branch_sampled_r5",
        ],
        ["r5_aim"],
    ),
    ("QA score r1", ["r1_qa", "anchor_r1"], ["r1_qa"]),  # anchor: greedy rollouts, if any
    ("memory size (tokens)", ["memory_tokens"], ["memory_tokens"]),
    (  # branches_cut: the share of a branch-group run's group responses cut short
        "tool calls",
        ["call_success", "truncated", "looped", "branches_cut"],
        ["call_success"],
    ),
    (
        "update",
        [
            "kl",
            "clip_fraction",
            "groups_with_variance",
            "instances_with_qa_variance",
            "samples_above_anchor",
            "branches_above_greedy",
        ],
        [],
    ),
    ("seconds per step", ["time_generation", "time_update"], []),
]


def plot_run(run_dir: Path, out: Path | None = None) -> Path:
    """Draw the curves of a run to `out` (default RUN_DIR/curves.png).

    Raises:
        DataError: the directory has no metrics.jsonl records.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(run_dir)
    if not records:
        raise DataError(f"{run_dir} has no {METRICS} records to plot")
    train = [r for r in records if r["kind"] == "train"]
    val = [r for r in records if r["kind"] == "val"]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8))
    for ax, (title, tkeys, vkeys) in zip(axes.flat, PANELS, strict=True):
        for key in tkeys:
            pts = [(r["step"], r[key]) for r in train if key in r]
            if pts:
                ax.plot(*zip(*pts, strict=True), label=f"train {key}", lw=1.2)
        for key in vkeys:
            pts = [(r["step"], r[key]) for r in val if key in r]
            if pts:
                ax.plot(*zip(*pts, strict=True), "o--", label=f"val {key}", lw=1.5)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.suptitle(str(run_dir))
    fig.tight_layout()
    out = out or Path(run_dir) / "curves.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out

"""The learning curve of a training run: held-out delay per scenario against decisions trained, as a PNG.

Drawn from the run folder's ``evaluations.jsonl`` (one line per evaluation: the warm start's at 0 decisions, the
periodic ones, the final one), so it shows whether a run was still improving when its budget ran out.
"""

from __future__ import annotations

import json
from pathlib import Path

from controller.errors import InputError


def read_evaluations(path: Path) -> list[dict]:
    """The evaluation records of a run, in the order written.

    :param path: a run folder's ``evaluations.jsonl``.
    :raises InputError: naming the file and line when a line is not an evaluation record.
    """
    records = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            float(record["timesteps"]), float(record["delay"])
            [float(v["delay"]) for v in dict(record["per_scenario"]).values()]
        except (ValueError, TypeError, KeyError):
            raise InputError(f"{path}:{number}: not an evaluation record "
                             f"(needs timesteps, delay and per_scenario delays)") from None
        records.append(record)
    return records


def plot_learning_curve(records: list[dict], path: Path, title: str) -> Path:
    """Write the curve: one line per scenario and their mean (delay, seconds per scheduled vehicle) against the
    decisions trained when each evaluation was made; the final policy is marked, and so is the warm start (in
    words only, off the scale, when two or more evaluations after it exist).

    :param records: evaluation records as :func:`read_evaluations` returns them (at least one).
    :param path: PNG file to write.
    :param title: the plot's title (the run's network and folder, say).
    :returns: ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = sorted(records, key=lambda r: (r["timesteps"], bool(r.get("final"))))
    trained = [r for r in records if not r.get("warm_start")]
    if len(trained) >= 2:  # the warm start is often far above: leave it off the scale, so later steps can be read
        warm = [r for r in records if r.get("warm_start")]
        records = trained
    else:
        warm = []
    xs = [r["timesteps"] / 1e6 for r in records]
    scenarios = list(dict.fromkeys(s for r in records for s in r["per_scenario"]))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for s in scenarios:
        points = [(x, r["per_scenario"][s]["delay"]) for x, r in zip(xs, records) if s in r["per_scenario"]]
        ax.plot(*zip(*points), marker=".", linewidth=1, label=s)
    ax.plot(xs, [r["delay"] for r in records], color="black", linewidth=2, marker="o", label="mean")
    for x, r in zip(xs, records):
        if r.get("warm_start") or r.get("final"):
            label = "warm start" if r.get("warm_start") else "final"
            ax.annotate(f"{label} {r['delay']:.1f} s", (x, r["delay"]), textcoords="offset points",
                        xytext=(4, 6), fontsize=8)
    if warm:
        low, high = ax.get_ylim()
        ax.set_ylim(low, high + 0.1 * (high - low))  # room for the line of text
        per_scenario = ", ".join(f"{s} {v['delay']:.1f}" for s, v in warm[-1]["per_scenario"].items())
        ax.text(0.01, 0.98, f"warm start (0 decisions): {per_scenario} s, mean {warm[-1]['delay']:.1f} s",
                transform=ax.transAxes, va="top", fontsize=8)
    ax.set_xlabel("decisions trained (millions)")
    ax.set_ylabel("held-out delay per scheduled vehicle (s)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)

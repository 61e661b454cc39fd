"""Controllers side by side on the same scenarios and seeds: runs in parallel processes, a table, a plot."""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import statistics
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from controller.errors import InputError
from envs.runner import (check_controller, check_input_lag, check_lights, policy_file_for, run_episode,
                         uses_learned_policy)
from envs.simulation import intersections_of
from networks.catalog import NetworkSpec

#: columns of the on-screen table: (record key, header, format)
TABLE_COLUMNS = [("delay", "delay s", "{:.1f}"), ("travel_time", "travel s", "{:.1f}"),
                 ("waiting_time", "waiting s", "{:.1f}"), ("stops", "stops", "{:.2f}"),
                 ("throughput", "arrived", "{:.0f}"), ("undeparted", "never in", "{:.0f}"),
                 ("teleports", "teleports", "{:.0f}"), ("violations", "faults", "{:.0f}"),
                 ("bus_delay", "bus delay s", "{:.1f}"), ("emergency_delay", "emergency delay s", "{:.1f}"),
                 ("pedestrian_delay", "pedestrian delay s", "{:.1f}")]


#: where a run's decisions are made: ``core`` (the core steps SUMO directly) or ``virtual`` (the whole live loop:
#: SUMO <-> virtual Modbus controllers <-> the daemon, in lock step; :mod:`hw.sil`)
THROUGH = ("core", "virtual")


def _one(args: tuple) -> dict:
    network, scenario, controller, seed, policy_file, through, input_lag_s, by_light = args
    if through == "virtual":
        from training.loop_runs import loop_record

        return loop_record(network, scenario, controller, seed, policy_file)
    return run_episode(network, scenario, controller, seed, policy_file=policy_file, input_lag_s=input_lag_s,
                       by_light=by_light).record()


def evaluate(network: NetworkSpec, scenarios: list[str], controllers: list[str], seeds: list[int],
             jobs: int | None = None, progress: bool = True, policy_file: Path | None = None,
             through: str = "core", input_lag_s: int = 0, by_light: bool = False) -> list[dict]:
    """Run every controller × scenario × seed; return one record per run (see RunResult.record).

    :param network: the network.
    :param scenarios: scenario names.
    :param controllers: controller names.
    :param seeds: SUMO seeds, the same for every controller.
    :param jobs: parallel processes (default: the number of CPU cores, at most the number of runs).
    :param progress: show a progress bar on stderr.
    :param policy_file: the trained policy ``rl`` runs (default: the network folder's ``rl-policy.npz``).
    :param through: ``core`` or ``virtual`` (see :data:`THROUGH`).
    :param input_lag_s: core runs: whole seconds between a detector reading and the controllers acting on it
        (the loop in lock step has 1 of its own: ``virtual`` takes no other).
    :param by_light: core runs: add each light's share of the time loss to the records (``delay_by_light``).
    """
    if through not in THROUGH:
        raise InputError(f"unknown --through {through!r}; choose from: {', '.join(THROUGH)}")
    check_input_lag(controllers, input_lag_s)
    if input_lag_s and through == "virtual":
        raise InputError("--input-lag is for core runs: the loop's lag is its own (1 s in lock step)")
    if by_light and through == "virtual":
        raise InputError("--by-light is for core runs (--through core)")
    for c in controllers:
        check_controller(c)
        check_lights(network, c)
        if uses_learned_policy(c):
            policy_file = policy_file_for(network, policy_file)
    if through == "virtual":
        from training.loop_runs import check_loop

        check_loop(network, controllers)
    for s in scenarios:
        network.scenario(s)
    intersections_of(network)  # a net that cannot be controlled is refused before any run starts
    tasks = [(network, s, c, seed, policy_file, through, input_lag_s, by_light)
             for s in scenarios for c in controllers for seed in seeds]
    return run_parallel(_one, tasks, jobs, progress)


def run_parallel(fn, tasks: list, jobs: int | None = None, progress: bool = True, desc: str = "runs") -> list:
    """``fn(task)`` for every task, in parallel processes; the results in task order.

    :param fn: a module-level function (it is pickled into fresh processes).
    :param tasks: its arguments, one per run.
    :param jobs: parallel processes (default: the number of CPU cores, at most the number of tasks).
    :param progress: show a progress bar on stderr.
    :param desc: the progress bar's label.
    """
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(tasks)))
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), desc=desc, unit="run", disable=not progress, leave=False)
    results: list = [None] * len(tasks)
    try:
        # every run in a fresh process (spawn, one task per process), even with one job: libsumo holds one
        # simulation per process, and a simulation started in a process that ran one before can differ from a
        # fresh one (measured: RESCO cologne1, whose demand is trips routed at departure, alternates between
        # two results on consecutive libsumo runs in one process), so a run's result would depend on what ran
        # before it in its worker
        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"), max_tasks_per_child=1) as pool:
            futures = {pool.submit(fn, t): k for k, t in enumerate(tasks)}
            for f in as_completed(futures):
                results[futures[f]] = f.result()
                bar.update()
    finally:
        bar.close()
    return results


def summarise(records: list[dict]) -> list[dict]:
    """Per scenario and controller: mean and sample standard deviation of every table column."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        groups.setdefault((r["scenario"], r["controller"]), []).append(r)
    rows = []
    for (scenario, controller), rs in groups.items():
        row = {"scenario": scenario, "controller": controller, "runs": len(rs)}
        for key, _, _ in TABLE_COLUMNS:
            values = [float(r[key]) for r in rs if r.get(key) is not None]  # None: no such vehicles
            row[key] = statistics.fmean(values) if values else math.nan
            row[key + "_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
        rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    """A plain-text table: one line per scenario × controller, delay as mean ± sd."""
    headers = ["scenario", "controller", "runs"] + [h for _, h, _ in TABLE_COLUMNS]
    lines = []
    for row in rows:
        cells = [row["scenario"], row["controller"], str(row["runs"])]
        for key, _, fmt in TABLE_COLUMNS:
            cell = fmt.format(row[key]) if not math.isnan(row[key]) else "-"
            if key == "delay" and not math.isnan(row[key]):
                cell += " ± " + fmt.format(row[key + "_sd"])
            cells.append(cell)
        lines.append(cells)
    widths = [max(len(h), *(len(c[i]) for c in lines)) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)), "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
            for cells in lines]
    return "\n".join(out)


def plot_delay(rows: list[dict], path: Path, title: str) -> Path:
    """Bar chart of mean delay per controller (error bars: standard deviation over seeds), one group per scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    controllers = list(dict.fromkeys(r["controller"] for r in rows))
    width = 0.8 / max(len(controllers), 1)
    fig, ax = plt.subplots(figsize=(min(14, max(6, 1.2 * len(scenarios) * len(controllers))), 4.5))
    for k, c in enumerate(controllers):
        xs, ys, es = [], [], []
        for j, s in enumerate(scenarios):
            for r in rows:
                if r["scenario"] == s and r["controller"] == c:
                    xs.append(j + k * width)
                    ys.append(r["delay"])
                    es.append(r["delay_sd"])
        bars = ax.bar(xs, ys, width, yerr=es, capsize=3, label=c)
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
    ax.set_xticks([j + width * (len(controllers) - 1) / 2 for j in range(len(scenarios))], scenarios)
    ax.set_ylabel("mean delay per scheduled vehicle (s)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

"""The what-if: the recorded signal timing and an adaptive controller on the same reconstructed demand and seeds,
delay by the project's metric, and how well the simulated detector counts match the recorded ones.

**The recorded timing runs through the core.** :class:`RecordedPolicy` asks, every second, for the phase
combination the field was serving or changing to at that moment of the log; the phase machine times the change
with the field's own yellow and red clearance (the scenario's override file), and the safety monitor judges
every state, as for any controller. The alternative, a static SUMO program replaying the log's states, would
bypass the core. Through the core the replay cannot emit a conflict or cut a clearance, and where it cannot
follow the log it says so: every interval rounds up to the 1 s step (the log's 1.5 s red clearance runs 2 s,
so each change is 0.5 s longer), no green ends before its minimum (4-5 s) and a change the log made during
another change waits. The report puts recorded and replayed green times per phase side by side, with the
deferred requests and any safety fault.

**What the comparison can say.** Both runs see the same rebuilt demand and seeds. With the default demand
(Poisson arrivals at each bin's recorded rate) the recorded greens, which answered the vehicles of that day,
meet other vehicles: replayed, the recorded timing is a plan fixed in advance that cannot answer a simulated
queue, while the adaptive controller reads the simulated detectors, so the difference overstates the saving.
With the day's own vehicles (``--arrivals recorded``, :mod:`networks.whatif_arrivals`) that bias is gone; on
the atspm sample actuated control then gives 19.2 s against 18.7 s for the recorded timing, where the Poisson
demand said 19.4 s against 28.2 s (README, "What-if in SUMO").

**Counts** are compared per approach and 15-minute bin: the loops of the core's detector set at the position
of the recorded counting function (advance loop for ``advance``, stop-bar loop otherwise) on the lanes each
phase serves, against the recorded counts, as GEH of hourly flows (mean over the seeds).
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

import numpy as np

from controller.errors import InputError
from controller.intersection import Intersection
from controller.policies.base import Interval, Policy, SignalView
from controller.policies.registry import make_policy
from envs.runner import LEARNED, LIGHT_OVERRIDE, RunResult, check_controller, run_episode
from envs.simulation import SignalSimulation
from envs.sumo_programs import SUMO_REFERENCE_CONTROLLERS
from networks.calibrate import GEH_OK, geh
from networks.whatif import LEFT_OF
from networks.whatif_scenario import WhatIfScenario
from networks.whatif_timing import RecordedPlan
from training.evaluate import format_table, run_parallel, summarise

#: the name of the recorded timing in tables and records
RECORDED = "recorded"


class RecordedPolicy(Policy):
    """Asks for the phase combination the log shows served (or being changed to) at the simulation time.

    :param plan: the recorded timing, times in seconds from the simulation's start; its combos are the light's
        phase indices.
    """

    name = RECORDED

    def __init__(self, plan: RecordedPlan) -> None:
        self.plan = plan
        self._starts = np.array([g.change_s for g in plan.greens], dtype=float)
        self._combos = [g.combo for g in plan.greens]

    def decide(self, view: SignalView) -> int:
        # the state decided now shows from time_s to time_s + 1 s: a change the log began within that second's
        # first half starts now, one in its second half at the next decision (to the nearest second)
        k = int(np.searchsorted(self._starts, view.readings.time_s + 0.5, side="right")) - 1
        if k < 0:
            return self._combos[0] if self._combos else view.phase
        return self._combos[k]


def _count_detectors(inter: Intersection, lanes: dict[int, set[str]], kinds: dict[int, str]) -> dict[int, list[int]]:
    """Phase -> indices of the core's loops that count it (its lanes, the recorded function's position)."""
    return {phase: [k for k, d in enumerate(inter.detectors) if d.lane in lanes.get(phase, ()) and d.kind == kind]
            for phase, kind in kinds.items()}


def _run_one(task: tuple) -> dict:
    """One run: (network, tl, controller, seed, plan, lanes, kinds, n_bins, bin_s, policy_file) -> record."""
    network, tl, controller, seed, plan, lanes, kinds, n_bins, bin_s, policy_file = task
    scenario = network.scenario()
    if controller in SUMO_REFERENCE_CONTROLLERS or controller == LEARNED:
        record = run_episode(network, scenario.name, controller, seed, policy_file=policy_file).record()
        return {**record, "sim_counts": None, "greens": None}
    from envs.simulation import intersections_of

    start = time.perf_counter()
    policies = {}
    for inter in intersections_of(network):  # other lights of a given net keep their own program, through the core
        if inter.id == tl:
            policies[inter.id] = RecordedPolicy(plan) if controller == RECORDED else make_policy(controller)
        else:
            policies[inter.id] = make_policy("fixed")
    sim = SignalSimulation(network, scenario, seed, policies=policies)
    try:
        k = next(i for i, inter in enumerate(sim.intersections) if inter.id == tl)
        counting = _count_detectors(sim.intersections[k], lanes, kinds)
        counts = {phase: np.zeros(n_bins) for phase in counting}
        machine = sim.controllers[k].machine
        greens: dict[int, list[float]] = {}
        green_phase, green_start = None, 0.0
        while not sim.done:
            t = sim.time_s
            sim.advance()
            b = int(t // bin_s)
            if b < n_bins:
                got = sim.readings[k].count
                for phase, idx in counting.items():
                    if idx:
                        counts[phase][b] += float(got[idx].sum())
            now = (machine.phase if machine.interval is Interval.GREEN else None)
            if now != green_phase:
                if green_phase is not None:
                    greens.setdefault(green_phase, []).append(sim.time_s - green_start)
                green_phase, green_start = now, sim.time_s
        metrics = sim.close().to_dict()
        stats = [c.machine.stats for c in sim.controllers]
        mstats = {"requests": sum(s.requests for s in stats), "deferred": sum(s.deferred for s in stats),
                  "max_outs": sum(s.max_outs for s in stats)}
        record = RunResult(controller, network.name, scenario.name, seed, metrics, sim.violations(), mstats,
                           time.perf_counter() - start).record()
    finally:
        sim.cleanup()
    return {**record, "sim_counts": {p: c.tolist() for p, c in counts.items()},
            "greens": {str(p): v for p, v in greens.items()}}


def _approach_groups(scenario: WhatIfScenario) -> dict[int, list[int]]:
    """Through phase -> the counted phases of its approach (the through phase and its left phase)."""
    out: dict[int, list[int]] = {}
    for phase in scenario.counts.counts:
        through = LEFT_OF.get(phase, phase)
        out.setdefault(through, []).append(phase)
    return {k: sorted(v) for k, v in sorted(out.items())}


def count_match(scenario: WhatIfScenario, records: list[dict]) -> list[dict]:
    """Per controller and approach: recorded and simulated flows (veh/h, mean over bins; simulated also over
    seeds), the GEH per bin of the seed-mean flow, its maximum and the share of bins below 5.

    :param scenario: the what-if scenario (recorded counts).
    :param records: run records of :func:`run_whatif` (with ``sim_counts``).
    """
    scale = 3600.0 / scenario.counts.bin_s
    rows = []
    for controller in dict.fromkeys(r["controller"] for r in records):
        runs = [r for r in records if r["controller"] == controller and r.get("sim_counts")]
        if not runs:
            continue
        for through, phases in _approach_groups(scenario).items():
            recorded = sum(scenario.counts.counts[p] for p in phases) * scale
            sims = [sum(np.asarray(r["sim_counts"][p]) for p in phases) * scale for r in runs]
            simulated = np.mean(sims, axis=0)
            gehs = [geh(float(m), float(c)) for m, c in zip(simulated, recorded)]
            rows.append({"controller": controller, "approach": through, "phases": phases,
                         "recorded_vph": float(np.mean(recorded)), "simulated_vph": float(np.mean(simulated)),
                         "geh_per_bin": gehs, "geh_max": max(gehs),
                         "geh_below_5": sum(g < GEH_OK for g in gehs) / len(gehs)})
    return rows


def timing_match(scenario: WhatIfScenario, records: list[dict]) -> list[dict]:
    """Per program phase: recorded greens (count, mean s) against the recorded timing replayed through the
    core (greens per run, mean s; mean over seeds).

    :param scenario: the what-if scenario (recorded plan).
    :param records: run records with ``greens``.
    """
    runs = [r for r in records if r["controller"] == RECORDED and r.get("greens") is not None]
    recorded = scenario.plan.durations_by_combo()
    rows = []
    for k, combo in enumerate(scenario.combos):
        rec = recorded.get(k, [])
        rep = [r["greens"].get(str(k), []) for r in runs]
        rows.append({"phase": "+".join(map(str, combo)), "recorded_greens": len(rec),
                     "recorded_mean_s": statistics.fmean(rec) if rec else None,
                     "replayed_greens": statistics.fmean(len(x) for x in rep) if rep else None,
                     "replayed_mean_s": statistics.fmean(v for x in rep for v in x) if any(rep) else None})
    return rows


def check_whatif_controller(controller: str, policy_file: Path | None = None) -> str:
    """Return ``controller`` if the what-if can run it against the recorded timing, else raise a one-line error.

    :param controller: a controller name.
    :param policy_file: the policy file (needed by ``rl``).
    """
    if controller == RECORDED:
        raise InputError(f"--controller {RECORDED!r} is the recorded timing itself; choose an adaptive controller")
    check_controller(controller)
    if LIGHT_OVERRIDE in controller:
        raise InputError(f"--controller {controller!r}: a what-if runs one light; per-light controllers "
                         f"({LIGHT_OVERRIDE}LIGHT=CONTROLLER) are for simulate and evaluate")
    if controller == LEARNED and policy_file is None:
        raise InputError("--controller rl needs --policy FILE: a policy trained for this intersection's layout")
    return controller


def run_whatif(scenario: WhatIfScenario, controller: str = "actuated", seeds: list[int] | None = None,
               jobs: int | None = None, progress: bool = True, policy_file: Path | None = None) -> dict:
    """Simulate the recorded timing and ``controller`` on the scenario's demand with the same seeds.

    :param scenario: from :func:`networks.whatif_scenario.build_whatif`.
    :param controller: the adaptive controller (a name ``ondaverde simulate --controller`` accepts).
    :param seeds: SUMO seeds (default 0, 1, 2).
    :param jobs: parallel processes.
    :param progress: progress bar on stderr.
    :param policy_file: the policy file for ``rl``.
    :returns: JSON-ready result: runs, summary rows, count match (GEH), timing match, plan notes.
    :raises InputError: an unknown controller, no seeds.
    """
    check_whatif_controller(controller, policy_file)
    seeds = [0, 1, 2] if seeds is None else list(seeds)
    if not seeds:
        raise InputError("--seeds: give at least one seed")
    if not scenario.plan.greens:
        raise InputError(f"signal {scenario.signal}: no served green in the window; nothing to replay")
    lanes = scenario.phase_lanes()
    kinds = {p: ("advance" if fn == "advance" else "stopbar") for p, (fn, _) in scenario.counts.sources.items()}
    tasks = [(scenario.network, scenario.tl, c, seed, scenario.plan, lanes, kinds, scenario.counts.n_bins,
              scenario.counts.bin_s, policy_file) for c in (RECORDED, controller) for seed in seeds]
    records = run_parallel(_run_one, tasks, jobs, progress, desc="what-if runs")
    summary = summarise(records)
    plan = scenario.plan
    return {
        "signal": scenario.signal,
        "network": "generic" if scenario.generic else str(scenario.network.net_file),
        "demand": scenario.demand,
        "folder": str(scenario.network.folder),
        "window": {"begin_epoch_s": scenario.counts.begin_s, "bins": scenario.counts.n_bins,
                   "bin_s": scenario.counts.bin_s},
        "phases": ["+".join(map(str, c)) for c in scenario.combos],
        "counting": {str(p): {"function": fn, "channels": list(ch)} for p, (fn, ch) in scenario.counts.sources.items()},
        "controllers": [RECORDED, controller],
        "seeds": seeds,
        "summary": summary,
        "count_match": count_match(scenario, records),
        "timing_match": timing_match(scenario, records),
        "recorded_plan": {"served_greens": len(plan.greens), "approximated": plan.approximated,
                          "not_representable": plan.unrepresentable, "missing_yellows": plan.missing_yellows,
                          "yellow_s": plan.yellow_s, "red_clearance_s": plan.red_clearance_s,
                          "clearances_clamped": list(scenario.clamped)},
        "runs": records,
    }


def format_whatif(result: dict) -> str:
    """The what-if as text: delay table, count match per approach, recorded vs replayed greens, notes."""
    demand = ("demand: one vehicle per recorded actuation" if result.get("demand") == "recorded"
              else "demand: Poisson flows at each bin's recorded count")
    lines = [f"What-if for signal {result['signal']} ({result['network']} geometry; {demand}; "
             f"{result['window']['bins']} bins of {result['window']['bin_s'] / 60:g} min; "
             f"phases {', '.join(result['phases'])}; seeds {','.join(map(str, result['seeds']))})", "",
             format_table(result["summary"]), ""]
    delays = {r["controller"]: r["delay"] for r in result["summary"]}
    rec, ada = delays.get(RECORDED), delays.get(result["controllers"][1])
    if rec and ada is not None and not math.isnan(rec) and not math.isnan(ada):
        lines.append(f"{result['controllers'][1]} vs recorded timing: {ada:.1f} s vs {rec:.1f} s mean delay per "
                     f"scheduled vehicle ({100 * (ada - rec) / rec:+.0f} %)")
        lines.append("")
    lines.append("counts per approach (veh/h, mean over bins; simulated: mean over seeds), GEH per 15-min bin:")
    for r in result["count_match"]:
        lines.append(f"  {r['controller']:<10} phase {r['approach']} (counted {'+'.join(map(str, r['phases']))}): "
                     f"recorded {r['recorded_vph']:.0f}, simulated {r['simulated_vph']:.0f}, max GEH "
                     f"{r['geh_max']:.1f}, GEH < 5 in {100 * r['geh_below_5']:.0f} % of bins")
    lines.append("recorded timing replayed through the core (greens, mean green s):")
    for r in result["timing_match"]:
        rec_mean = "-" if r["recorded_mean_s"] is None else f"{r['recorded_mean_s']:.1f}"
        rep_mean = "-" if r["replayed_mean_s"] is None else f"{r['replayed_mean_s']:.1f}"
        rep_n = "-" if r["replayed_greens"] is None else f"{r['replayed_greens']:.0f}"
        lines.append(f"  phase {r['phase']:<6} recorded {r['recorded_greens']} greens, {rec_mean} s; "
                     f"replayed {rep_n} greens, {rep_mean} s")
    p = result["recorded_plan"]
    lines.append(f"log timing: {p['served_greens']} served greens, {p['approximated']} mapped to a larger phase, "
                 f"{p['not_representable']} not representable, {p['missing_yellows']} missing yellow events; "
                 f"yellow {fmt_phases(p['yellow_s'])}, red clearance {fmt_phases(p['red_clearance_s'])}")
    if p["clearances_clamped"]:
        lines.append("recorded clearances outside MUTCD's ranges, run clamped: " + "; ".join(p["clearances_clamped"]))
    if result.get("demand") == "recorded":
        lines.append("Caveats: one vehicle per recorded actuation (advance detectors where the phase has them), "
                     "turning shares assumed; a phase counted only at the stop bar replays the recorded service, "
                     "which favours the recorded timing.")
    else:
        lines.append("Caveats: demand is rebuilt from counts with assumed turning shares and random (Poisson) "
                     "arrivals. The recorded timing answered the real arrivals of that day, not the simulated ones: "
                     "replayed, it acts as a plan fixed in advance, which favours a controller that reads the "
                     "simulated detectors (--arrivals recorded replays the day's vehicles instead).")
    return "\n".join(lines)


def fmt_phases(values: dict) -> str:
    """``{2: 4.0, 6: 4.0}`` -> ``ø2 4.0 s, ø6 4.0 s``."""
    return ", ".join(f"ø{k} {v:.1f} s" for k, v in values.items()) or "none recorded"



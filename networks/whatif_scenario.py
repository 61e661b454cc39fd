"""Build the what-if scenario of one recorded signal: network, NEMA program, field clearances, demand and the
recorded timing, as a network folder the evaluation harness runs like any other.

The folder holds the net (generic or a copy of the given one with the NEMA program written in), the demand
``whatif.rou.xml`` (flows from the counts, or the recorded arrivals), an intersection override file ``whatif.timing.json`` and ``network.yaml``. The override
gives every link the field's own clearances (median recorded yellow and red clearance of the phases that serve
it, clamped into MUTCD's ranges, instead of the formulas' values from an invented geometry) and every program phase a minimum green of at
most 5 s (never below the core's 4 s floor, and no longer than the shortest recorded green of that phase) and a
maximum green no shorter than the longest recorded one, so the recorded timing fits and both the recorded
and the adaptive run use the same limits.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from controller.errors import InputError
from controller.timing import MIN_GREEN_FLOOR_S, RED_CLEARANCE_MAX_S, YELLOW_MAX_S, YELLOW_MIN_S
from networks.catalog import NetworkSpec, ScenarioSpec
from networks.derive import DEFAULT_MAX_GREEN_S, DEFAULT_MIN_GREEN_S, derive_intersections
from networks.whatif import (GENERIC_TL, LEFT_OF, Movement, build_generic_network, generic_approaches,
                             light_movements, load_mapping, phase_combos, program_states, write_nema_program)
from networks.whatif_arrivals import recorded_arrivals, write_arrivals
from networks.whatif_demand import (BIN_S, Flow, PhaseCounts, counted_window, flows_from_counts, phase_counts,
                                    write_flows)
from networks.whatif_timing import RecordedPlan, green_phases, recorded_plan

#: scenario name inside the what-if network folder
SCENARIO = "whatif"
#: maximum green above the longest recorded green, s: the replay decides on whole seconds and starts a phase
#: set at once where the log's rings may start it a second apart
MAX_GREEN_MARGIN_S = 3.0


@dataclass(frozen=True)
class WhatIfScenario:
    """Everything the what-if runs need.

    :param network: the network folder as a :class:`NetworkSpec` (one scenario, :data:`SCENARIO`).
    :param tl: the light's id in the net.
    :param signal: the log's signal id.
    :param combos: NEMA phase combination of each program phase.
    :param movements: the light's movements.
    :param counts: recorded counts per phase and bin.
    :param flows: the demand written.
    :param plan: the recorded timing.
    :param generic: True for the generic geometry, False for a given network.
    :param approaches: through phase -> incoming edge.
    :param demand: ``counts`` (Poisson flows at each bin's recorded rate) or ``recorded`` (one vehicle per
        recorded actuation, :mod:`networks.whatif_arrivals`).
    :param vehicles: vehicles of the ``recorded`` demand (0 for flows).
    :param clamped: recorded clearances outside MUTCD's ranges (yellow 3-6 s, red clearance at most 6 s) that
        the model clamped into them, e.g. ``"yellow ø4 2.5 s -> 3 s"``.
    """

    network: NetworkSpec
    tl: str
    signal: str
    combos: tuple[tuple[int, ...], ...]
    movements: tuple[Movement, ...]
    counts: PhaseCounts
    flows: tuple[Flow, ...]
    plan: RecordedPlan
    generic: bool
    approaches: dict[int, str]
    clamped: tuple[str, ...] = ()
    demand: str = "counts"
    vehicles: int = 0

    @property
    def horizon_s(self) -> float:
        """Simulated seconds (the counted bins)."""
        return self.counts.n_bins * self.counts.bin_s

    def phase_lanes(self) -> dict[int, set[str]]:
        """Counting phase -> incoming lanes it serves: a lane with a through or right turn belongs to its
        through phase, a lane with only left turns to the left phase (or the through phase without one)."""
        lanes: dict[str, set[tuple[str, int, int | None]]] = {}
        for m in self.movements:
            lanes.setdefault(m.from_lane, set()).add((m.turn, m.phase, m.left_phase))
        out: dict[int, set[str]] = {}
        for lane, uses in lanes.items():
            if any(turn != "left" for turn, _, _ in uses):
                phase = next(p for turn, p, _ in uses if turn != "left")
            else:
                turn, p, left = next(iter(uses))
                phase = left if left is not None and left in self.counts.counts else p
            out.setdefault(phase, set()).add(lane)
        return out


def _detectors_by_phase(channels: Sequence) -> dict[int, list[tuple[int, str]]]:
    out: dict[int, list[tuple[int, str]]] = {}
    for ch in channels:
        out.setdefault(int(ch.phase), []).append((int(ch.channel), str(ch.function)))
    return out


def field_clearances(plan: RecordedPlan) -> tuple[dict[int, float], dict[int, float], list[str]]:
    """The log's yellow and red clearance per phase, clamped into MUTCD's ranges (yellow 3-6 s, red clearance
    0-6 s; standards.md §C): the adaptive controller runs with them too, and a log can be wrong.

    :param plan: the recorded timing.
    :returns: yellow per phase (s), red clearance per phase (s), a note per clamped value.
    """
    notes = []
    yellow, red = {}, {}
    for p, v in plan.yellow_s.items():
        yellow[p] = min(max(v, YELLOW_MIN_S), YELLOW_MAX_S)
        if yellow[p] != v:
            notes.append(f"yellow ø{p} {v:g} s -> {yellow[p]:g} s")
    for p, v in plan.red_clearance_s.items():
        red[p] = min(max(v, 0.0), RED_CLEARANCE_MAX_S)
        if red[p] != v:
            notes.append(f"red clearance ø{p} {v:g} s -> {red[p]:g} s")
    return yellow, red, notes


def _timing_overrides(tl: str, combos: Sequence[tuple[int, ...]], movements: Sequence[Movement],
                      plan: RecordedPlan) -> dict:
    field_yellow, field_red, _ = field_clearances(plan)
    links: dict[str, dict[str, float]] = {}
    for m in movements:
        phases = [m.phase] + ([m.left_phase] if m.left_phase is not None else [])
        yellow = [field_yellow[p] for p in phases if p in field_yellow]
        red = [field_red[p] for p in phases if p in field_red]
        entry = links.setdefault(str(m.link_index), {})
        if yellow:
            entry["yellow_s"] = max([entry.get("yellow_s", 0.0), *yellow])
        if red:
            entry["red_clearance_s"] = max([entry.get("red_clearance_s", 0.0), *red])
    durations = plan.durations_by_combo()
    phases: dict[str, dict] = {}
    for k, combo in enumerate(combos):
        recorded = durations.get(k, [])
        shortest = min(recorded, default=DEFAULT_MIN_GREEN_S)
        min_green = max(MIN_GREEN_FLOOR_S, min(DEFAULT_MIN_GREEN_S, math.floor(shortest)))
        max_green = max(DEFAULT_MAX_GREEN_S, math.ceil(max(recorded, default=0.0)) + MAX_GREEN_MARGIN_S)
        phases[str(k + 1)] = {"name": "NEMA " + "+".join(map(str, combo)), "min_green_s": float(min_green),
                              "max_green_s": float(max_green)}
    return {tl: {"phases": phases, "links": {k: v for k, v in links.items() if v}}}


#: demand modes of :func:`build_whatif`
DEMANDS = ("counts", "recorded")


def build_whatif(time_s, code, param, channels: Sequence, signal: str, out_dir: Path, net: Path | None = None,
                 mapping: Path | None = None, hours: float | None = None, bin_s: float = BIN_S,
                 demand: str = "counts") -> WhatIfScenario:
    """Build the what-if scenario of one signal of a log into ``out_dir``.

    :param time_s: the signal's event times, epoch seconds (e.g. ``EventTable.time_s``).
    :param code: event codes.
    :param param: event parameters.
    :param channels: the signal's detector channels (``hw.replay.detector_config.DetectorChannel``: phase,
        channel, function).
    :param signal: the signal id (names things, nothing else).
    :param out_dir: folder to write (created).
    :param net: a given SUMO net (None: the generic geometry).
    :param mapping: with ``net``: the detector mapping (see :mod:`networks.whatif`).
    :param hours: simulate at most this many hours from the first whole bin (None: every whole bin).
    :param bin_s: count bin, seconds.
    :param demand: ``counts`` (flows per bin, the default) or ``recorded`` (one vehicle per recorded actuation).
    :raises InputError: no detector channel, no phase events, no counts, a bad net or mapping.
    """
    if demand not in DEMANDS:
        raise InputError(f"unknown demand {demand!r}; choose from: {', '.join(DEMANDS)}")
    if not channels:
        raise InputError(f"signal {signal}: the detector configuration has no channel for it")
    if (net is None) != (mapping is None):
        raise InputError("--net and --mapping go together: the mapping names the approach edge of each phase")
    out_dir = Path(out_dir).expanduser().resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    detectors = _detectors_by_phase(channels)
    seen_green = green_phases(code, param)
    if not seen_green:
        raise InputError(f"signal {signal}: the log has no begin-green events (code 1): no timing to replay")
    begin, n_bins = counted_window(time_s, bin_s, hours)
    # phases in use: with detectors or shown green; phases 9-16 (overlaps of some vendors) are outside the model
    phases = sorted(p for p in set(detectors) | seen_green if 1 <= p <= 8)
    dropped = sorted(set(detectors) - set(phases))
    if dropped:
        raise InputError(f"signal {signal}: detector channels on phase {dropped[0]}: the what-if knows NEMA phases 1-8")
    combos = phase_combos(phases)
    plan = recorded_plan(time_s, code, param, combos, begin, begin + n_bins * bin_s)
    if net is None:
        approaches_geo = generic_approaches(detectors, seen_green & set(range(1, 9)), plan.yellow_s)
        base, approaches = build_generic_network(approaches_geo, out_dir)
        tl_hint: str | None = GENERIC_TL
    else:
        base = Path(net).expanduser()
        if not base.is_file():
            raise InputError(f"{base}: network file not found")
        tl_hint, approaches = load_mapping(Path(mapping))
        for left, through in LEFT_OF.items():
            if left in phases and through not in approaches:
                raise InputError(f"{mapping}: phase {left} (a left turn) needs its approach, phase {through}, mapped")
    tl, n_links, movements = light_movements(base, approaches, phases, tl_hint)
    states = program_states(movements, n_links, combos)
    net_file = write_nema_program(base, out_dir / "whatif.net.xml", tl, states, combos)
    counts = phase_counts(time_s, code, param, detectors, begin, n_bins, bin_s)
    routes = out_dir / "whatif.rou.xml"
    flows: list[Flow] = []
    vehicles = 0
    if demand == "counts":
        flows = flows_from_counts(counts, movements)
        write_flows(flows, routes)
    else:
        arrivals = recorded_arrivals(time_s, code, param, detectors, movements, begin, begin + n_bins * bin_s)
        write_arrivals(arrivals, net_file, routes)
        vehicles = len(arrivals)
    override = out_dir / "whatif.timing.json"
    override.write_text(json.dumps(_timing_overrides(tl, combos, movements, plan), indent=1) + "\n", encoding="utf-8")
    derive_intersections(net_file, override)  # refuse a program or override the core would refuse, now
    end = n_bins * bin_s
    (out_dir / "network.yaml").write_text(
        f"name: whatif-{signal}\nnet: {net_file.name}\nintersections: {override.name}\ndefault_scenario: {SCENARIO}\n"
        f"scenarios:\n  {SCENARIO}:\n    routes: [{routes.name}]\n    begin: 0\n    end: {end:g}\n"
        f"    description: \"signal {signal}: {n_bins} bins of recorded counts from epoch {begin:.0f} s\"\n",
        encoding="utf-8")
    scenario = ScenarioSpec(SCENARIO, (routes,), 0.0, end, f"signal {signal}")
    network = NetworkSpec(f"whatif-{signal}", out_dir, net_file, {SCENARIO: scenario}, SCENARIO, override)
    return WhatIfScenario(network, tl, str(signal), tuple(combos), tuple(movements), counts, tuple(flows), plan,
                          net is None, dict(approaches), tuple(field_clearances(plan)[2]), demand, vehicles)

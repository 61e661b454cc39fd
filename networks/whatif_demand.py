"""What-if demand: recorded detector counts per approach and 15-minute bin, turned into SUMO flows.

**Counts.** A detector-on event (code 82, parameter = channel) is one vehicle. Per NEMA phase the counting
function is, in this order of preference, ``stop_bar_count`` (lane-by-lane counting loops), ``advance``,
``presence`` (a long stop-bar loop may hold several vehicles per actuation, so it undercounts), then
``yellow_red``; the phase's count is the sum over its channels of that function. A bin counts when the log
covers it to within :data:`EDGE_TOLERANCE_S` at either end.

**Flows.** Per approach and bin, vehicles/hour = count x 3600 / bin length. A protected-left phase with counts
gives the left turns; the through phase's count gives through + right, of which :data:`RIGHT_SHARE` turn right.
An approach without left counts sends :data:`LEFT_SHARE` of its count left. These two shares are planning
assumptions, not measurements (no turning-movement counts are in a detector log). A movement the network does
not have gives its share to the others. Arrivals are Poisson (SUMO ``period="exp(rate)"``), so each seed draws
its own arrivals around the recorded rates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from controller.errors import InputError
from networks.whatif import LEFT_OF, Movement

#: bin length of the recorded counts, s (ATSPM's 15-minute bins)
BIN_S = 900.0
#: a bin at the start or end of the log counts when the log covers it but for this many seconds
EDGE_TOLERANCE_S = 60.0
#: counting functions, most trusted first
COUNT_FUNCTIONS = ("stop_bar_count", "advance", "presence", "yellow_red")
#: share of an approach's through-phase count turning right (assumed)
RIGHT_SHARE = 0.15
#: share of an approach's count turning left when it has no left-phase counts (assumed)
LEFT_SHARE = 0.15
#: Indiana event code: detector on
DETECTOR_ON = 82


@dataclass(frozen=True)
class PhaseCounts:
    """Recorded vehicle counts per NEMA phase and bin.

    :param begin_s: start of the first bin, epoch seconds of the log's clock.
    :param bin_s: bin length, seconds.
    :param counts: phase -> vehicles per bin.
    :param sources: phase -> (function counted, its channels).
    """

    begin_s: float
    bin_s: float
    counts: dict[int, np.ndarray]
    sources: dict[int, tuple[str, tuple[int, ...]]] = field(default_factory=dict)

    @property
    def n_bins(self) -> int:
        """Number of bins."""
        return len(next(iter(self.counts.values()))) if self.counts else 0

    @property
    def end_s(self) -> float:
        """End of the last bin, epoch seconds."""
        return self.begin_s + self.n_bins * self.bin_s


def counted_window(time_s: np.ndarray, bin_s: float = BIN_S, hours: float | None = None) -> tuple[float, int]:
    """The bins a log covers: start (epoch s) of the first and how many.

    :param time_s: event times, epoch seconds.
    :param bin_s: bin length, seconds.
    :param hours: keep at most this many hours from the first bin (None: all).
    :raises InputError: the log covers no whole bin.
    """
    if len(time_s) == 0:
        raise InputError("the log has no events")
    first, last = float(np.min(time_s)), float(np.max(time_s))
    begin = math.floor(first / bin_s) * bin_s
    if first - begin > EDGE_TOLERANCE_S:
        begin += bin_s
    end = math.ceil(last / bin_s) * bin_s
    if end - last > EDGE_TOLERANCE_S:
        end -= bin_s
    n = int(round((end - begin) / bin_s))
    if hours is not None:
        n = min(n, int(math.floor(hours * 3600.0 / bin_s + 1e-9)))
    if n <= 0:
        raise InputError(f"the log covers no whole {bin_s / 60:g}-minute bin "
                         f"({(last - first) / 60:.1f} minutes of events)" if hours is None or hours > 0
                         else "--hours must be positive")
    return begin, n


def phase_counts(time_s: np.ndarray, code: np.ndarray, param: np.ndarray,
                 detectors: Mapping[int, Sequence[tuple[int, str]]], begin_s: float, n_bins: int,
                 bin_s: float = BIN_S) -> PhaseCounts:
    """Count detector-on events per phase and bin with each phase's counting function.

    :param time_s: event times, epoch seconds (one signal's events).
    :param code: event codes.
    :param param: event parameters.
    :param detectors: phase -> its detectors as ``(channel, function)``.
    :param begin_s: first bin start, epoch seconds.
    :param n_bins: number of bins.
    :param bin_s: bin length, seconds.
    """
    on = np.asarray(code) == DETECTOR_ON
    t = np.asarray(time_s, dtype=float)[on]
    ch = np.asarray(param)[on]
    k = np.floor((t - begin_s) / bin_s).astype(np.int64)
    inside = (k >= 0) & (k < n_bins)
    k, ch = k[inside], ch[inside]
    counts: dict[int, np.ndarray] = {}
    sources: dict[int, tuple[str, tuple[int, ...]]] = {}
    for phase, dets in sorted(detectors.items()):
        for function in COUNT_FUNCTIONS:
            channels = tuple(sorted(c for c, f in dets if f == function))
            if channels:
                sel = np.isin(ch, channels)
                counts[phase] = np.bincount(k[sel], minlength=n_bins).astype(float)[:n_bins]
                sources[phase] = (function, channels)
                break
    return PhaseCounts(begin_s, bin_s, counts, sources)


@dataclass(frozen=True)
class Flow:
    """One SUMO flow: a movement's demand in one bin.

    :param from_edge: incoming edge.
    :param to_edge: outgoing edge.
    :param turn: ``left``, ``through`` or ``right``.
    :param phase: the approach's through phase.
    :param begin_s: simulation time the bin starts, seconds.
    :param end_s: simulation time it ends, seconds.
    :param vph: vehicles per hour.
    """

    from_edge: str
    to_edge: str
    turn: str
    phase: int
    begin_s: float
    end_s: float
    vph: float


def approach_demand(counts: PhaseCounts, approach_phase: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(left, through + right) vehicles/hour per bin of one approach from its phases' counts; a part is None
    when no detector counts it (see the module docstring)."""
    scale = 3600.0 / counts.bin_s
    left_phase = next((l for l, t in LEFT_OF.items() if t == approach_phase), None)
    through = counts.counts.get(approach_phase)
    left = counts.counts.get(left_phase) if left_phase is not None else None
    return (None if left is None else left * scale), (None if through is None else through * scale)


def flows_from_counts(counts: PhaseCounts, movements: Sequence[Movement]) -> list[Flow]:
    """SUMO flows reproducing the recorded counts, per approach, movement and bin.

    >>> import numpy as np
    >>> c = PhaseCounts(0.0, 900.0, {2: np.array([100.0]), 5: np.array([20.0])})
    >>> moves = [Movement(0, "W_in", "S_out", "right", 2), Movement(1, "W_in", "E_out", "through", 2),
    ...          Movement(2, "W_in", "N_out", "left", 2, 5)]
    >>> [(f.turn, round(f.vph)) for f in flows_from_counts(c, moves)]
    [('left', 80), ('right', 60), ('through', 340)]

    :param counts: recorded counts per phase.
    :param movements: the light's movements (several lanes of one movement count once).
    """
    by_approach: dict[int, dict[str, set[tuple[str, str]]]] = {}
    for m in movements:
        by_approach.setdefault(m.phase, {}).setdefault(m.turn, set()).add((m.from_edge, m.to_edge))
    flows: list[Flow] = []
    for phase, turns in sorted(by_approach.items()):
        left_vph, through_vph = approach_demand(counts, phase)
        n = counts.n_bins
        if left_vph is None and through_vph is None:
            continue
        if through_vph is None:
            through_vph = np.zeros(n)
        if left_vph is None:
            shares = {"left": LEFT_SHARE, "right": RIGHT_SHARE, "through": 1.0 - LEFT_SHARE - RIGHT_SHARE}
            parts = {"left": through_vph, "through": through_vph, "right": through_vph}
            present = sum(shares[t] for t in turns)
            parts = {t: parts[t] * shares[t] / present for t in turns} if present else {}
        else:
            shares = {"right": RIGHT_SHARE, "through": 1.0 - RIGHT_SHARE}
            tr = [t for t in ("right", "through") if t in turns]
            total = sum(shares[t] for t in tr)
            parts = {t: through_vph * shares[t] / total for t in tr}
            if "left" in turns:
                parts["left"] = left_vph
            elif tr:  # no left movement on the net: the counted lefts go straight on
                parts = {t: v + left_vph * shares[t] / total for t, v in parts.items()}
        for turn, vph in sorted(parts.items()):
            pairs = sorted(turns[turn])
            for b in range(n):
                for from_edge, to_edge in pairs:
                    rate = float(vph[b]) / len(pairs)
                    if rate > 0:
                        flows.append(Flow(from_edge, to_edge, turn, phase, b * counts.bin_s, (b + 1) * counts.bin_s,
                                          rate))
    return flows


def write_flows(flows: Sequence[Flow], path: Path) -> Path:
    """Write the flows as a SUMO route file, sorted by begin (Poisson arrivals, best lane, max speed).

    :param flows: from :func:`flows_from_counts`.
    :param path: the route file.
    :raises InputError: no flow at all (no counting detector saw a vehicle).
    """
    if not flows:
        raise InputError("no recorded counts to build demand from: no counting detector of the configuration "
                         "saw a vehicle in the window")
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             "<!-- what-if demand from recorded detector counts; written by networks/whatif_demand.py -->",
             "<routes>"]
    for k, f in enumerate(sorted(flows, key=lambda f: (f.begin_s, f.phase, f.turn, f.to_edge))):
        ident = quoteattr(f"p{f.phase}.{f.turn}.{f.to_edge}.{int(f.begin_s)}")
        lines.append(f'    <flow id={ident} begin="{f.begin_s:g}" end="{f.end_s:g}" from={quoteattr(f.from_edge)} '
                     f'to={quoteattr(f.to_edge)} period="exp({f.vph / 3600.0:.6f})" departLane="best" '
                     f'departSpeed="max"/>')
    lines.append("</routes>")
    path = Path(path)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path

"""What preemption and transit priority changed, run against run: every emergency vehicle's delay with and without
preemption on the same seed, overall delay, and each bus type's delay with and without priority."""

from __future__ import annotations

import statistics

from envs.runner import LIGHT_OVERRIDE, has_mode


def _without(controller: str, mode: str) -> str:
    """``controller`` without ``mode`` (its per-light overrides kept: ``rl+tsp@O=maxpressure`` -> ``rl@O=maxpressure``)."""
    head, sep, overrides = controller.partition(LIGHT_OVERRIDE)
    base, *modes = head.split("+")
    return "+".join([base] + [m for m in modes if m != mode]) + sep + overrides


#: the modes that preempt: roadside receivers, and receivers with route-aware (GPS) calls
PREEMPT_MODES = ("preempt", "preempt-gps")


def comparisons(records: list[dict], mode: str) -> list[tuple[str, str]]:
    """(controller with ``mode``, the same controller without it) pairs present in ``records``; ``preempt`` stands
    for either way of calling preempts (:data:`PREEMPT_MODES`)."""
    names = list(dict.fromkeys(r["controller"] for r in records))
    modes = PREEMPT_MODES if mode == "preempt" else (mode,)
    return [(c, _without(c, m)) for c in names for m in modes
            if has_mode(c, m) and _without(c, m) in names]


def _by_run(records: list[dict]) -> dict[tuple[str, str, int], dict]:
    return {(r["scenario"], r["controller"], r["seed"]): r for r in records}


def preemption_rows(records: list[dict]) -> list[dict]:
    """One row per emergency vehicle and seed: its delay through the signals it passed (time loss from each
    receiver's reach through the junction) with and without preemption and the reduction (%), and its whole-trip
    delay (``timeLoss + departDelay``) both ways."""
    runs, rows = _by_run(records), []
    for with_mode, without in comparisons(records, "preempt"):
        for (scenario, controller, seed), r in runs.items():
            if controller != with_mode or (scenario, without, seed) not in runs:
                continue
            other = runs[(scenario, without, seed)]
            base = other.get("emergency_intersection_delay") or {}
            trips, base_trips = r.get("emergency_vehicles") or {}, other.get("emergency_vehicles") or {}
            for vid, delay in (r.get("emergency_intersection_delay") or {}).items():
                if vid in base:
                    before = base[vid]
                    rows.append({"scenario": scenario, "controller": with_mode, "seed": seed, "vehicle": vid,
                                 "delay_without": before, "delay_with": delay,
                                 "reduction_pct": 100.0 * (before - delay) / before if before > 0 else float("nan"),
                                 "trip_without": base_trips.get(vid), "trip_with": trips.get(vid)})
    return rows


def passage_rows(records: list[dict]) -> list[dict]:
    """One row per emergency vehicle's passage through a signal, paired with the same vehicle's same passage (its
    *n*-th through that signal) on the same seed without preemption: time loss and control delay both ways (s), and
    whether it arrived on red (or yellow) without preemption (:class:`envs.priority_vehicles.SumoPriorityVehicles`). Runs without per-passage records are skipped."""
    runs, rows = _by_run(records), []
    for with_mode, without in comparisons(records, "preempt"):
        for (scenario, controller, seed), r in runs.items():
            if controller != with_mode or (scenario, without, seed) not in runs:
                continue
            base = _keyed_passages(runs[(scenario, without, seed)].get("emergency_passages") or [])
            for key, (loss, control, red) in _keyed_passages(r.get("emergency_passages") or []).items():
                if key not in base:
                    continue
                b_loss, b_control, b_red = base[key]
                rows.append({"scenario": scenario, "controller": with_mode, "seed": seed, "vehicle": key[0],
                             "signal": key[1], "delay_without": b_loss, "delay_with": loss,
                             "control_without": b_control, "control_with": control, "red_without": bool(b_red)})
    return rows


def _keyed_passages(passages: list) -> dict[tuple[str, str, int], tuple[float, float, bool]]:
    """(vehicle, signal, n-th passage of the vehicle through that signal) -> (time loss, control delay, met red)."""
    out, seen = {}, {}
    for vid, signal, loss, control, *red in passages:
        n = seen[vid, signal] = seen.get((vid, signal), -1) + 1
        out[vid, signal, n] = (loss, control, bool(red and red[0]))
    return out


def halved(without: float, with_: float) -> bool:
    """True when ``with_`` is at least 50 % lower than ``without`` (both 0 counts: nothing was left to save).

    >>> halved(40.0, 20.0), halved(6.0, 5.0), halved(0.0, 0.0)
    (True, False, True)
    """
    return with_ <= 0.5 * without


def must_show_lines(records: list[dict]) -> list[str]:
    """The issue-6 check read off the runs, for each controller with preemption beside its base: passages (and
    vehicles) at least 50 % lower with preemption, as worded (time loss through each signal, every passage) and as
    the proposed restatement (control delay of the passages that arrived on red without preemption), and the
    overall delay change (within 5 %)."""
    out = []
    runs = _by_run(records)
    all_passes, all_vehicles = passage_rows(records), preemption_rows(records)
    pairs_of = comparisons(records, "preempt")
    for with_mode, without in pairs_of:
        tag = f"{with_mode}: " if len(pairs_of) > 1 else ""
        passes = [p for p in all_passes if p["controller"] == with_mode]
        if passes:
            met = sum(halved(p["delay_without"], p["delay_with"]) for p in passes)
            out.append(f"{tag}check (as worded): {met} of {len(passes)} passages through a signal have their time "
                       f"loss at least 50 % lower with preemption")
            red = [p for p in passes if p["red_without"]]
            met_red = sum(halved(p["control_without"], p["control_with"]) for p in red)
            out.append(f"{tag}check (proposed: control delay of the passages that arrived on red without preemption): "
                       f"{met_red} of {len(red)} at least 50 % lower; {len(passes) - len(red)} passages arrived on "
                       f"green without it (their time loss "
                       f"{_span([p['delay_without'] for p in passes if not p['red_without']])} s)")
            worse = [p["delay_with"] - p["delay_without"] for p in passes if p["delay_with"] > p["delay_without"] + 2.0]
            out.append(f"  passages that lost over 2 s more with preemption than without: {len(worse)}"
                       + (f" (up to +{max(worse):.1f} s)" if worse else ""))
        vehicles = [v for v in all_vehicles if v["controller"] == with_mode]
        if vehicles:
            met = sum(halved(v["delay_without"], v["delay_with"]) for v in vehicles)
            out.append(f"{tag}check (per vehicle, summed over its signals): {met} of {len(vehicles)} at least 50 % "
                       f"lower")
        pairs = [(runs[(s, without, seed)]["delay"], r["delay"]) for (s, c, seed), r in runs.items()
                 if c == with_mode and (s, without, seed) in runs]
        if pairs:
            base, new = statistics.fmean(a for a, _ in pairs), statistics.fmean(b for _, b in pairs)
            change = 100 * (new - base) / base
            out.append(f"check: overall delay {without} -> {with_mode} {change:+.1f} % "
                       f"({'within' if abs(change) <= 5 else 'NOT within'} 5 %, {len(pairs)} seeds)")
    return out


def _span(values: list[float]) -> str:
    return f"{min(values):.1f}-{max(values):.1f}" if values else "-"


def format_report(records: list[dict]) -> str:
    """Text tables of :func:`preemption_rows`, overall delay change, and bus delay per type with and without TSP
    ('' when no controller with ``+preempt`` or ``+tsp`` ran beside its base)."""
    runs, out = _by_run(records), []
    rows = preemption_rows(records)
    if rows:
        out.append("emergency vehicles, delay through the signals s without -> with preemption (same seed); "
                   "whole trip in brackets:")
        for row in rows:
            trip = (f"({row['trip_without']:.1f} -> {row['trip_with']:.1f})"
                    if row["trip_without"] is not None and row["trip_with"] is not None else "")
            out.append(f"  {row['scenario']:<9} {row['controller']:<22} seed {row['seed']:<3} {row['vehicle']:<24} "
                       f"{row['delay_without']:6.1f} -> {row['delay_with']:6.1f}  {row['reduction_pct']:6.1f} % lower  "
                       f"{trip}")
        for controller in dict.fromkeys(r["controller"] for r in rows):  # one summary per way of preempting
            reductions = [r["reduction_pct"] for r in rows if r["controller"] == controller]
            met = sum(x >= 50 for x in reductions)
            out.append(f"  {controller}: {met} of {len(reductions)} vehicles at least 50 % lower; smallest reduction "
                       f"{min(reductions):.1f} %, median {statistics.median(reductions):.1f} %")
    passes = passage_rows(records)
    short = [p for p in passes if not halved(p["delay_without"], p["delay_with"])]
    if short:
        out.append(f"emergency passages through a signal NOT at least 50 % lower ({len(short)} of {len(passes)}): "
                   "time loss s without -> with preemption (control delay in brackets); * arrived on red without:")
        for p in short:
            out.append(f"  {p['scenario']:<9} seed {p['seed']:<3} {p['vehicle']:<24} {p['signal']:<8} "
                       f"{'*' if p['red_without'] else ' '} {p['delay_without']:6.1f} -> {p['delay_with']:6.1f}  "
                       f"({p['control_without']:.1f} -> {p['control_with']:.1f})")
    for mode in ("preempt", "tsp"):
        for with_mode, without in comparisons(records, mode):
            pairs = [(runs[(s, without, seed)], r) for (s, c, seed), r in runs.items()
                     if c == with_mode and (s, without, seed) in runs]
            if not pairs:
                continue
            base = statistics.fmean(a["delay"] for a, _ in pairs)
            new = statistics.fmean(b["delay"] for _, b in pairs)
            out.append(f"overall delay {without} -> {with_mode}: {base:.1f} -> {new:.1f} s "
                       f"({100 * (new - base) / base:+.1f} %, {len(pairs)} runs)")
            if mode == "tsp":
                types = sorted({t for a, b in pairs for t in (a.get("bus_delay_by_type") or {})})
                for t in types:
                    before = [a["bus_delay_by_type"][t] for a, b in pairs if t in (a.get("bus_delay_by_type") or {})]
                    after = [b["bus_delay_by_type"][t] for a, b in pairs if t in (b.get("bus_delay_by_type") or {})]
                    if before and after:
                        x, y = statistics.fmean(before), statistics.fmean(after)
                        out.append(f"  bus type {t:<14} delay {x:.1f} -> {y:.1f} s ({100 * (y - x) / x:+.1f} %)")
    out += must_show_lines(records)
    return "\n".join(out)

"""What preemption and transit priority changed, run against run: every emergency vehicle's delay with and without
preemption on the same seed, overall delay, and each bus type's delay with and without priority."""

from __future__ import annotations

import statistics


def _without(controller: str, mode: str) -> str:
    base, *modes = controller.split("+")
    return "+".join([base] + [m for m in modes if m != mode])


def comparisons(records: list[dict], mode: str) -> list[tuple[str, str]]:
    """(controller with ``mode``, the same controller without it) pairs present in ``records``."""
    names = list(dict.fromkeys(r["controller"] for r in records))
    return [(c, _without(c, mode)) for c in names if mode in c.split("+")[1:] and _without(c, mode) in names]


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
        reductions = [r["reduction_pct"] for r in rows]
        met = sum(x >= 50 for x in reductions)
        out.append(f"  {met} of {len(rows)} vehicles at least 50 % lower; smallest reduction "
                   f"{min(reductions):.1f} %, median {statistics.median(reductions):.1f} %")
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
    return "\n".join(out)

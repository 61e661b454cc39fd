"""The daemon configuration's ``preemption`` and ``transit_priority`` settings of one intersection, checked with every
problem listed (the style of :mod:`hw.daemon_config`).

Example (phases and preempt numbers 1-based, as on the wire)::

    preemption:                  # true for the defaults: one preempt per approach phase, preempt k dwelling in phase k
      min_green_s: 2             # defaults for every plan below: delay_s, min_green_s, min_walk_s, min_dwell_s,
      max_presence_s: 180        #   max_presence_s
      plans:                     # optional: the preempt inputs, each with its own phases
        - {number: 1, dwell_phase: 2, track_phase: 4, track_green_s: 6, exit_phase: 2}
    transit_priority:            # true for the defaults
      max_extension_s: 10
      lockout_s: 60
      condition: always          # always | late
      late_threshold_s: 60
      early_green: true
"""

from __future__ import annotations

from controller.intersection import Intersection
from controller.preemption import PreemptPlan, approach_phases
from controller.transit_priority import CONDITIONS, TransitSettings

#: seconds settings shared by every plan of an intersection
_PLAN_SECONDS = ("delay_s", "min_green_s", "min_walk_s", "min_dwell_s", "max_presence_s")
_PREEMPTION = set(_PLAN_SECONDS) | {"plans"}
_PLAN = set(_PLAN_SECONDS) | {"number", "dwell_phase", "track_phase", "track_green_s", "exit_phase", "priority"}
_TRANSIT = {"max_extension_s", "lockout_s", "condition", "late_threshold_s", "early_green"}
#: preempt inputs a Modbus cabinet has (coils and discrete inputs 1-8)
MAX_PREEMPTS = 8


def _seconds(value, path: str, problems: list[str], high: float = 3600.0) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high:
        problems.append(f"{path}: {value!r} is not a number of seconds in 0..{high:g}")
        return None
    return float(value)


def parse_preemption(data, where: str, intersection: Intersection | None,
                     problems: list[str]) -> tuple[PreemptPlan, ...] | None:
    """The preempt plans of ``where`` (``true``, a mapping, or absent/``false`` for none).

    :param data: the YAML value.
    :param where: the field path for messages (``intersections[0].preemption``).
    :param intersection: the intersection (to check phase numbers and derive the default plans), or None when it
        is unknown (its problem is reported elsewhere).
    :param problems: where problems are appended.
    """
    if data is None or data is False:
        return None
    if data is True:
        data = {}
    if not isinstance(data, dict):
        problems.append(f"{where}: true, or a mapping of preemption settings")
        return None
    for key in sorted(set(data) - _PREEMPTION):
        problems.append(f"{where}.{key}: unknown setting (known: {', '.join(sorted(_PREEMPTION))})")
    common = {}
    for key in _PLAN_SECONDS:
        if key in data:
            value = _seconds(data[key], f"{where}.{key}", problems)
            if value is not None:
                common[key] = value
    n = len(intersection.phases) if intersection is not None else None

    def phase(value, path: str, optional: bool) -> int | None:
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= (n or 255):
            problems.append(f"{path}: {value!r} is not a phase number in 1..{n or 255}")
            return None
        return value - 1

    plans_data = data.get("plans")
    if plans_data is None:
        if intersection is None:
            return None
        phases = sorted(set(approach_phases(intersection).values()))[:MAX_PREEMPTS]
        return tuple(PreemptPlan(number=k + 1, dwell_phase=k, **common) for k in phases)
    if not isinstance(plans_data, list) or not plans_data:
        problems.append(f"{where}.plans: a list of at least one preempt plan")
        return None
    plans, seen = [], set()
    for k, item in enumerate(plans_data):
        path = f"{where}.plans[{k}]"
        if not isinstance(item, dict):
            problems.append(f"{path}: a mapping is expected")
            continue
        for key in sorted(set(item) - _PLAN):
            problems.append(f"{path}.{key}: unknown setting (known: {', '.join(sorted(_PLAN))})")
        number = item.get("number")
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_PREEMPTS:
            problems.append(f"{path}.number: {number!r} is not a preempt number in 1..{MAX_PREEMPTS}")
            number = None
        elif number in seen:
            problems.append(f"{path}.number: preempt {number} is listed twice")
        seen.add(number)
        dwell = phase(item.get("dwell_phase"), f"{path}.dwell_phase", optional=False)
        track = phase(item.get("track_phase"), f"{path}.track_phase", optional=True)
        exit_phase = phase(item.get("exit_phase"), f"{path}.exit_phase", optional=True)
        values = dict(common)
        for key in _PLAN_SECONDS + ("track_green_s",):
            if key in item:
                values[key] = _seconds(item[key], f"{path}.{key}", problems)
        priority = item.get("priority")
        if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
            problems.append(f"{path}.priority: {priority!r} is not a whole number")
            priority = None
        if number is not None and dwell is not None and None not in values.values():
            plans.append(PreemptPlan(number=number, dwell_phase=dwell, priority=priority, track_phase=track,
                                     exit_phase=exit_phase, **values))
    return tuple(plans)


def parse_transit(data, where: str, problems: list[str]) -> TransitSettings | None:
    """The transit priority settings of ``where`` (``true``, a mapping, or absent/``false`` for none)."""
    if data is None or data is False:
        return None
    if data is True:
        return TransitSettings()
    if not isinstance(data, dict):
        problems.append(f"{where}: true, or a mapping of transit priority settings")
        return None
    for key in sorted(set(data) - _TRANSIT):
        problems.append(f"{where}.{key}: unknown setting (known: {', '.join(sorted(_TRANSIT))})")
    values: dict = {}
    for key in ("max_extension_s", "lockout_s", "late_threshold_s"):
        if key in data:
            values[key] = _seconds(data[key], f"{where}.{key}", problems)
    if "condition" in data:
        if data["condition"] not in CONDITIONS:
            problems.append(f"{where}.condition: {data['condition']!r} is not one of {', '.join(CONDITIONS)}")
        values["condition"] = data["condition"]
    if "early_green" in data:
        if not isinstance(data["early_green"], bool):
            problems.append(f"{where}.early_green: {data['early_green']!r} is not true or false")
        values["early_green"] = data["early_green"]
    if any(p.startswith(where) for p in problems):
        return None
    return TransitSettings(**values)

"""What the core derives from a network, told to its user: phases no detector watches (a one-line note) and the
per-light layout ``ondaverde networks show`` prints."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from controller.intersection import Intersection
from controller.policies.base import undetected_phases as undetected_mask
from networks.declared_detectors import read_declared


def undetected_phases(intersections: Sequence[Intersection]) -> list[tuple[str, int, str]]:
    """Phases with vehicle movements that no approach detector (loop or radar zone) watches: ``(light id, phase
    number, phase name)``. Only a network's own detectors leave such phases (the automatic set watches every
    approach lane); actuated and max-pressure recall them (the major phase to its maximum green, another to its
    minimum), a learned policy sees nothing of them.

    :param intersections: derived intersections.
    """
    return [(inter.id, phase.number, phase.name) for inter in intersections
            for phase, blind in zip(inter.phases, undetected_mask(inter)) if blind]


def undetected_note(intersections: Sequence[Intersection]) -> str | None:
    """One line for the user about :func:`undetected_phases`, or None when every vehicle phase is watched."""
    missing = undetected_phases(intersections)
    if not missing:
        return None
    tl, number, name = missing[0]
    lights = len({m[0] for m in missing})
    first = f"light {tl!r} phase {number}{f' {name!r}' if name else ''}"
    return (f"note: {len(missing)} phase(s) at {lights} light(s) have no detector (first: {first}): actuated and "
            f"max-pressure recall them (the major phase to its maximum green); rl cannot see their demand")


def format_layout(intersections: Sequence[Intersection], additional_files: Iterable[Path] = ()) -> str:
    """Per light, its phases (timings, in seconds) and its detectors by kind, and whether they are the network's own
    (declared in ``additional_files``) or placed automatically: what ``ondaverde networks show`` prints.

    :param intersections: derived intersections.
    :param additional_files: the network's additional files (to tell its own detectors from automatic ones).
    """
    declared = {d.id for d in read_declared(additional_files)}
    undetected = {(tl, number) for tl, number, _ in undetected_phases(intersections)}
    lines = []
    for inter in intersections:
        vehicle = sum(1 for l in inter.links if l.kind == "vehicle" and l.from_lane)
        crosswalks = sum(1 for l in inter.links if l.kind == "pedestrian")
        kinds = {}
        for d in inter.detectors:
            kinds[d.kind] = kinds.get(d.kind, 0) + 1
        own = bool(inter.detectors) and all(d.id.split("__", 2)[-1] in declared for d in inter.detectors)
        counted = ", ".join(f"{kinds[k]} {k}" for k in ("stopbar", "advance", "radar", "exit") if k in kinds)
        lines.append(f"light {inter.id}: {len(inter.phases)} phases, {vehicle} vehicle links, {crosswalks} crosswalks; "
                     f"detectors ({'the network' + chr(39) + 's own' if own else 'automatic'}): {counted or 'none'}")
        for k, phase in enumerate(inter.phases):
            name = f" {phase.name!r}" if phase.name else ""
            major = ", major" if k == inter.major_phase else ""
            blind = ", NO DETECTOR" if (inter.id, phase.number) in undetected else ""
            lines.append(f"  phase {phase.number}{name}: {phase.state}, min green {phase.min_green_s:g}, "
                         f"max green {phase.max_green_s:g}, program green {phase.program_green_s:g}{major}{blind}")
    return "\n".join(lines)

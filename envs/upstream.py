"""The road upstream of a signal's approach lanes in a running SUMO: the lanes that feed them through junctions
without signals, within a reach along the road (SUMO splits a road at every lane-count change, so a short approach
lane often has its vehicles' last metres on the lane before it)."""

from __future__ import annotations

from collections.abc import Callable, Container


def feeding_lanes(lane_api) -> dict[str, list[str]]:
    """Lane -> the lanes with a connection into it (internal junction lanes left out).

    :param lane_api: libsumo's or a TraCI connection's ``lane`` domain.
    """
    feeding: dict[str, list[str]] = {}
    for lane in lane_api.getIDList():
        if lane.startswith(":"):
            continue
        for link in lane_api.getLinks(lane):
            feeding.setdefault(link[0], []).append(lane)
    return feeding


def lanes_upstream(feeding: dict[str, list[str]], lane: str, reach_m: float, length_m: Callable[[str], float],
                   stop: Container[str] = ()) -> list[tuple[str, float]]:
    """The lanes upstream of ``lane`` that begin less than ``reach_m`` metres before its stop line, each with the
    metres of reach left at its downstream end; the walk ends at a lane in ``stop`` (the approach of another
    signal: the road beyond it is that signal's).

    :param feeding: :func:`feeding_lanes`.
    :param lane: the approach lane.
    :param reach_m: metres along the road from the stop line of ``lane``.
    :param length_m: lane id -> its length, metres.
    :param stop: lanes where the walk ends (not included).
    """
    found: list[tuple[str, float]] = []
    frontier = [(lane, reach_m - length_m(lane))]
    seen = {lane}
    while frontier:
        here, left = frontier.pop()
        if left <= 0:
            continue
        for up in feeding.get(here, ()):
            if up in stop or up in seen:
                continue
            seen.add(up)
            found.append((up, left))
            frontier.append((up, left - length_m(up)))
    return found

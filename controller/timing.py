"""Clearance and pedestrian interval formulas (ITE, MUTCD), each constant named with its source.

>>> round(yellow_change_s(50 / 3.6), 1)
3.3
>>> round(red_clearance_s(24.0, 72 / 3.6), 1)
1.5
>>> round(pedestrian_clearance_s(20.0), 1)
18.7
"""

from __future__ import annotations

import math

#: Perception-reaction time (s), ITE kinematic formula; confirmed by NCHRP 03-95 (Report 731).
PERCEPTION_REACTION_S = 1.0
#: Comfortable deceleration (m/s², = 10 ft/s²), ITE kinematic formula.
DECELERATION_MPS2 = 3.05
#: Gravity (m/s²).
GRAVITY_MPS2 = 9.81
#: Design vehicle length L (m, ≈ 20 ft) for red clearance (W + L) / v.
VEHICLE_LENGTH_M = 6.0
#: Pedestrian clearance walking speed (m/s, = 3.5 ft/s), MUTCD 2009 §4E.06.
PED_CLEARANCE_SPEED_MPS = 1.07
#: Walk interval (s), MUTCD 2009 §4E.06 (may drop to 4 s where conditions allow).
WALK_S = 7.0
#: MUTCD yellow range guidance (s).
YELLOW_MIN_S = 3.0
YELLOW_MAX_S = 6.0
#: MUTCD: red clearance should not exceed 6 s.
RED_CLEARANCE_MAX_S = 6.0
#: Hard floors the core never goes below, whatever a config says (standards.md §C).
MIN_GREEN_FLOOR_S = 4.0
WALK_FLOOR_S = 4.0


def yellow_change_s(speed_mps: float, grade: float = 0.0) -> float:
    """Yellow change interval Y = t + v / (2a + 2gG), clamped to MUTCD's 3–6 s.

    :param speed_mps: approach speed (85th percentile or posted limit), metres per second.
    :param grade: approach grade as a decimal fraction, downgrade negative (e.g. -0.03).
    :return: yellow duration in seconds.
    """
    denominator = 2 * DECELERATION_MPS2 + 2 * GRAVITY_MPS2 * grade
    if denominator <= 0:
        raise ValueError(f"grade {grade} too steep for the ITE yellow formula")
    y = PERCEPTION_REACTION_S + max(speed_mps, 0.0) / denominator
    return min(max(y, YELLOW_MIN_S), YELLOW_MAX_S)


def red_clearance_s(clearance_distance_m: float, speed_mps: float) -> float:
    """All-red interval R = (W + L) / v, capped at MUTCD's 6 s.

    :param clearance_distance_m: W, stop line to the far-side clearance point, metres.
    :param speed_mps: approach speed, metres per second (a floor of 1 m/s avoids division by zero).
    :return: red clearance in seconds.
    """
    return min((max(clearance_distance_m, 0.0) + VEHICLE_LENGTH_M) / max(speed_mps, 1.0), RED_CLEARANCE_MAX_S)


def pedestrian_clearance_s(crossing_length_m: float) -> float:
    """Flashing DON'T WALK interval: crossing length / 1.07 m/s.

    :param crossing_length_m: curb-to-curb crossing length, metres.
    :return: pedestrian clearance in seconds.
    """
    return max(crossing_length_m, 0.0) / PED_CLEARANCE_SPEED_MPS


def ceil_to_step(duration_s: float, step_s: float) -> float:
    """Round a protected interval *up* to whole decision steps: clearances are never shortened by rounding.

    :param duration_s: interval length, seconds.
    :param step_s: decision/simulation step, seconds.
    """
    n = math.ceil(round(duration_s / step_s, 6))
    return n * step_s


def max_greens_s(phases, step_s: float) -> list[float]:
    """Per phase, the longest green the phase machine runs, seconds: its max green rounded up to whole steps, never
    below its min green rounded up (what policies and guards compare the green's elapsed time with).

    :param phases: the intersection's phases (``min_green_s``, ``max_green_s``).
    :param step_s: decision/simulation step, seconds.
    """
    return [max(ceil_to_step(p.max_green_s, step_s), ceil_to_step(p.min_green_s, step_s)) for p in phases]

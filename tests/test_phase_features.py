"""The phase-feature layouts: what the v2 additions (time since a phase was served, longest queue), the v3
additions (what a change would start and stop) and the v4 additions (max-pressure's pressures and choice) report."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from controller.errors import InputError
from controller.phase_features import (CHANGE_FEATURES, JAM_SPACING_M, LAYOUT_V1, LAYOUT_V2, LAYOUT_V3, LAYOUT_V4,
                                       LAYOUTS, PRESSURE_SCALE_VEH, RED_ELAPSED_SCALE_S, FeatureLayout,
                                       PhaseFeatures)
from controller.policies.base import DetectorReadings
from controller.testing import looped_intersection, two_phase_intersection


def _readings(inter, t: float, halting: dict[str, float] | None = None) -> DetectorReadings:
    n = len(inter.detectors)
    h = np.zeros(n)
    for k, d in enumerate(inter.detectors):
        h[k] = (halting or {}).get(d.id, 0.0)
    return DetectorReadings(float(t), h > 0, h.copy(), h, np.zeros(n), -np.ones(n))


def _col(x: np.ndarray, slot: int, feature: str) -> float:
    return float(x[LAYOUT_V2.column(slot, feature)])


def test_time_since_a_phase_was_served_counts_from_its_last_green_or_clearance_and_restarts_with_reset():
    inter = two_phase_intersection()
    f = PhaseFeatures(inter, LAYOUT_V2)
    x = f(0, None, True, 0.0, False, _readings(inter, 1000.0), 5.0)
    assert _col(x, 0, "red_elapsed") == 0 and _col(x, 1, "red_elapsed") == 0  # no history yet: nothing waited
    x = f(0, None, True, 60.0, True, _readings(inter, 1060.0), 5.0)
    assert _col(x, 0, "red_elapsed") == 0
    assert _col(x, 1, "red_elapsed") == pytest.approx(60 / RED_ELAPSED_SCALE_S)
    x = f(0, 1, False, 0.0, True, _readings(inter, 1065.0), 5.0)  # phase 0 clearing towards 1: still phase 0's
    assert _col(x, 0, "red_elapsed") == 0
    x = f(1, None, True, 10.0, True, _readings(inter, 1080.0), 5.0)
    assert _col(x, 0, "red_elapsed") == pytest.approx(15 / RED_ELAPSED_SCALE_S)
    assert _col(x, 1, "red_elapsed") == 0
    x = f(1, None, True, 40.0, True, _readings(inter, 1500.0), 5.0)
    assert _col(x, 0, "red_elapsed") == 1.0  # clipped
    # slots beyond the light's phases stay 0
    assert all(_col(x, s, "red_elapsed") == 0 for s in range(2, 8))
    f.reset()
    x = f(1, None, True, 0.0, False, _readings(inter, 20.0), 5.0)  # a new run, its clock starting earlier
    assert _col(x, 0, "red_elapsed") == 0 and _col(x, 1, "red_elapsed") == 0


def test_the_longest_queue_is_not_diluted_by_the_phases_other_lanes():
    inter = two_phase_intersection()
    f = PhaseFeatures(inter, LAYOUT_V2)
    capacity = 100.0 / JAM_SPACING_M
    x = f(0, None, True, 0.0, False, _readings(inter, 0.0, {"rad0": 0.8 * capacity}), 5.0)
    assert _col(x, 0, "queue_max") == pytest.approx(0.8)
    assert _col(x, 0, "queue") == pytest.approx(0.4)  # the mean over the phase's two zones
    assert _col(x, 1, "queue_max") == 0


def test_a_zone_every_phase_serves_tells_no_phase_apart_and_is_left_out_of_the_longest_queue():
    inter = two_phase_intersection()
    # radar zone rad0 also watches link 2 (east-west): a lane both phases serve, like a roundabout's ring
    dets = tuple(dataclasses.replace(d, links=(0, 2)) if d.id == "rad0" else d for d in inter.detectors)
    inter = dataclasses.replace(inter, detectors=dets)
    f = PhaseFeatures(inter, LAYOUT_V2)
    capacity = 100.0 / JAM_SPACING_M
    x = f(0, None, True, 0.0, False, _readings(inter, 0.0, {"rad0": capacity, "rad1": 0.5 * capacity}), 5.0)
    assert _col(x, 0, "queue_max") == pytest.approx(0.5)
    assert _col(x, 1, "queue_max") == 0
    assert _col(x, 1, "queue") > 0  # the mean still sees it


def test_v1_vectors_are_the_first_columns_of_each_v2_slot():
    inter = two_phase_intersection()
    v1, v2 = PhaseFeatures(inter, LAYOUT_V1), PhaseFeatures(inter, LAYOUT_V2)
    rng = np.random.default_rng(0)
    for t in range(0, 300, 5):
        r = _readings(inter, t, {d.id: float(rng.integers(0, 8)) for d in inter.detectors})
        phase = (t // 40) % 2
        a, b = v1(phase, None, True, t % 40, t % 40 >= 5, r, 5.0), v2(phase, None, True, t % 40, t % 40 >= 5, r, 5.0)
        assert len(a) == LAYOUT_V1.size and len(b) == LAYOUT_V2.size
        head = len(LAYOUT_V1.head)
        assert np.array_equal(a[:head], b[:head])
        n1 = len(LAYOUT_V1.phase_features)
        slots2 = b[head:].reshape(8, -1)
        assert np.array_equal(a[head:].reshape(8, -1), slots2[:, :n1])


def test_an_unknown_layout_is_refused_in_one_line():
    with pytest.raises(InputError, match="unknown feature layout"):
        PhaseFeatures(two_phase_intersection(), FeatureLayout("phase-features-v9", ("valid",)))
    assert set(LAYOUTS) == {"phase-features-v1", "phase-features-v2", "phase-features-v3",
                            "phase-features-v4"}


def _occupancies(inter, values: dict[str, float]) -> DetectorReadings:
    occ = np.array([values.get(d.id, 0.0) for d in inter.detectors])
    n = len(occ)
    return DetectorReadings(0.0, occ > 0, np.zeros(n), np.zeros(n), occ, -np.ones(n))


def _v3(x: np.ndarray, slot: int, feature: str) -> float:
    return float(x[LAYOUT_V3.column(slot, feature)])


def test_v3_sees_at_a_ring_what_a_change_would_start_and_stop_which_the_phase_means_dilute():
    """A roundabout entry (link 0, phase 0), the ring (link 1, green in both) and the next entry (link 2, phase 1):
    from phase 0, a change to phase 1 starts link 2 and stops link 0; the busy ring lane is in neither."""
    ring = looped_intersection("ring", ("GGr", "rGG"), ((True, True, False), (True, True, True), (False, True, True)))
    f = PhaseFeatures(ring, LAYOUT_V3)
    x = f(0, None, True, 10.0, True, _occupancies(ring, {"sb0": 0.3, "sb1": 1.0, "sb2": 0.6}), 5.0)
    assert _v3(x, 1, "occupancy_started") == pytest.approx(0.6)
    assert _v3(x, 1, "occupancy_stopped") == pytest.approx(0.3)
    assert _v3(x, 1, "stopbar_occupancy") == pytest.approx(0.8)  # v2's mean over the phase's lanes, ring included
    assert all(_v3(x, 0, name) == 0 for name in CHANGE_FEATURES)  # the current phase: no change
    x = f(1, None, True, 10.0, True, _occupancies(ring, {"sb0": 0.3, "sb1": 1.0, "sb2": 0.6}), 5.0)  # seen from 1
    assert _v3(x, 0, "occupancy_started") == pytest.approx(0.3)
    assert _v3(x, 0, "occupancy_stopped") == pytest.approx(0.6)
    assert all(_v3(x, 1, name) == 0 for name in CHANGE_FEATURES)


def test_v3_counts_a_left_gaining_or_losing_its_arrow_as_started_or_stopped():
    """Link 1 is a left turn, permissive in phase 0 and protected in phase 1 (link 0, the through, is red there)."""
    left = looped_intersection("left", ("Gg", "rG"), ((True, True), (True, True)))
    f = PhaseFeatures(left, LAYOUT_V3)
    x = f(0, None, True, 10.0, True, _occupancies(left, {"sb0": 0.2, "sb1": 0.9}), 5.0)
    assert _v3(x, 1, "occupancy_started") == pytest.approx(0.9)  # the arrow protects it
    assert _v3(x, 1, "occupancy_stopped") == pytest.approx(0.2)
    x = f(1, None, True, 10.0, True, _occupancies(left, {"sb0": 0.2, "sb1": 0.9}), 5.0)
    assert _v3(x, 0, "occupancy_started") == pytest.approx(0.2)
    assert _v3(x, 0, "occupancy_stopped") == pytest.approx(0.9)  # it must yield again


def test_v3_radar_queues_and_the_v2_columns_it_extends():
    inter = two_phase_intersection()
    capacity = 100.0 / JAM_SPACING_M
    r = _readings(inter, 0.0, {"rad2": 0.5 * capacity, "rad0": 0.2 * capacity})
    x3 = PhaseFeatures(inter, LAYOUT_V3)(0, None, True, 10.0, True, r, 5.0)
    assert _v3(x3, 1, "queue_started") == pytest.approx(0.25)  # mean over links 2-3's zones
    assert _v3(x3, 1, "queue_stopped") == pytest.approx(0.1)
    x2 = PhaseFeatures(inter, LAYOUT_V2)(0, None, True, 10.0, True, r, 5.0)
    head, n2 = len(LAYOUT_V2.head), len(LAYOUT_V2.phase_features)
    assert len(x3) == LAYOUT_V3.size and np.array_equal(x3[:head], x2[:head])
    assert np.array_equal(x3[head:].reshape(8, -1)[:, :n2], x2[head:].reshape(8, -1))


def _counts(inter, t: float, counts: dict[str, float], occupied: tuple[str, ...] = ()) -> DetectorReadings:
    """Vehicles in radar and exit zones (``count``; halted too), and stop-bar loops ``occupied`` now."""
    c = np.array([counts.get(d.id, 0.0) for d in inter.detectors])
    occ = np.array([d.id in occupied for d in inter.detectors])
    n = len(c)
    return DetectorReadings(float(t), occ, c.copy(), c, occ.astype(float), -np.ones(n))


def _v4(x: np.ndarray, slot: int, feature: str) -> float:
    return float(x[LAYOUT_V4.column(slot, feature)])


def test_v4_reports_each_phases_pressure_and_what_max_pressure_would_ask_for():
    """Phase 1 (links 2-3): 12 + 4 vehicles in its radar zones, 2 on link 2's exit: pressure 14. Phase 0: none
    waiting, 30 on link 0's exit: pressure -30."""
    inter = two_phase_intersection()
    f = PhaseFeatures(inter, LAYOUT_V4)
    counts = {"rad2": 12, "rad3": 4, "exit2": 2, "exit0": 30}
    x = f(0, None, True, 3.0, False, _counts(inter, 100.0, counts), 5.0)  # min green still running
    assert _v4(x, 1, "pressure") == pytest.approx(0.5 + 14 / (2 * PRESSURE_SCALE_VEH))
    assert _v4(x, 0, "pressure") == pytest.approx(0.5 - 30 / (2 * PRESSURE_SCALE_VEH))
    assert (_v4(x, 0, "maxpressure_choice"), _v4(x, 1, "maxpressure_choice")) == (1.0, 0.0)  # min green first
    x = f(0, None, True, 8.0, True, _counts(inter, 105.0, counts, occupied=("sb0",)), 5.0)
    assert _v4(x, 0, "maxpressure_choice") == 1.0  # a queue still crossing the stop bar the change would stop
    x = f(0, None, True, 13.0, True, _counts(inter, 110.0, counts), 5.0)
    assert (_v4(x, 0, "maxpressure_choice"), _v4(x, 1, "maxpressure_choice")) == (0.0, 1.0)
    x = f(0, 1, False, 0.0, True, _counts(inter, 115.0, counts), 5.0)  # changing: max-pressure follows the change
    assert _v4(x, 1, "maxpressure_choice") == 1.0
    assert all(_v4(x, s, "pressure") == 0 and _v4(x, s, "maxpressure_choice") == 0 for s in range(2, 8))


def test_v4_extends_v2_and_its_max_pressure_starts_afresh_with_reset():
    inter = two_phase_intersection()
    f = PhaseFeatures(inter, LAYOUT_V4)
    r = _counts(inter, 0.0, {"rad2": 3, "sb1": 1}, occupied=("sb2",))
    x4 = f(0, None, True, 10.0, True, r, 5.0)
    x2 = PhaseFeatures(inter, LAYOUT_V2)(0, None, True, 10.0, True, r, 5.0)
    head, n2 = len(LAYOUT_V2.head), len(LAYOUT_V2.phase_features)
    assert len(x4) == LAYOUT_V4.size and np.array_equal(x4[:head], x2[:head])
    assert np.array_equal(x4[head:].reshape(8, -1)[:, :n2], x2[head:].reshape(8, -1))
    # a vehicle standing on phase 1's stop bar for max-pressure's longest wait forces phase 1 despite the pressures
    inter = two_phase_intersection(max_green_s=300.0)
    f = PhaseFeatures(inter, LAYOUT_V4)
    chosen = []
    for t in range(0, 121, 5):
        x = f(0, None, True, 10.0 + t, True, _counts(inter, float(t), {"rad0": 30, "rad2": 1}, ("sb0", "sb2")), 5.0)
        chosen.append(int(_v4(x, 1, "maxpressure_choice")))
    assert chosen == [0] * 24 + [1]  # held for phase 0's pressure and its discharge, until the wait reached 120 s
    f.reset()  # a new run: nothing has waited yet
    x = f(0, None, True, 10.0, True, _counts(inter, 200.0, {"rad0": 30, "rad2": 1}, ("sb0", "sb2")), 5.0)
    assert _v4(x, 0, "maxpressure_choice") == 1.0

"""The phase-feature layouts: what the v2 additions (time since a phase was served, longest queue) report."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from controller.errors import InputError
from controller.phase_features import (JAM_SPACING_M, LAYOUT_V1, LAYOUT_V2, LAYOUTS, RED_ELAPSED_SCALE_S,
                                       FeatureLayout, PhaseFeatures)
from controller.policies.base import DetectorReadings
from controller.testing import two_phase_intersection


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
    assert set(LAYOUTS) == {"phase-features-v1", "phase-features-v2"}

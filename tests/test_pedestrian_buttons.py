"""Pedestrian push buttons in SUMO: persons waiting at a signalised crosswalk call its phase (``+ped``)."""

from __future__ import annotations

import pytest

from controller.errors import InputError
from envs.runner import run_episode
from networks.catalog import load_network

pytestmark = pytest.mark.sumo


def test_push_buttons_shorten_the_pedestrians_wait_on_miraflores_at_night():
    """At night the side streets' phases come up rarely; without buttons a crosswalk walks only when its phase is
    green for vehicles anyway. With them, waiting persons call their phase: they lose less time, at no fault."""
    spec = load_network("miraflores").with_horizon(None, load_network("miraflores").scenario("night").begin_s + 1800,
                                                    only=["night"])
    without = run_episode(spec, "night", "actuated", 900001).record()
    pressed = run_episode(spec, "night", "actuated+ped", 900001).record()
    assert "pedestrian_presses" not in without and pressed["pedestrian_presses"] > 100
    assert pressed["pedestrians"] == without["pedestrians"] > 50
    assert pressed["pedestrian_delay"] < 0.9 * without["pedestrian_delay"], (pressed["pedestrian_delay"],
                                                                               without["pedestrian_delay"])
    assert pressed["violations"] == without["violations"] == 0


def test_push_buttons_are_refused_through_the_virtual_controllers_in_one_line():
    from training.loop_runs import check_loop

    with pytest.raises(InputError, match="no pedestrian push-button inputs"):
        check_loop(load_network("single"), ["actuated+ped"])

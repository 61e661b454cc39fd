"""Per-light controllers (``rl@O=maxpressure``): an overridden light runs its own core controller, the others the
named one; a light or controller that does not fit is refused in one line."""

from __future__ import annotations

import pytest

from controller.errors import InputError
from envs.runner import check_controller, check_lights, run_episode, split_controller, split_overrides
from networks.catalog import load_network
from tests.test_cli import assert_one_line_error, ondaverde

GRID_LIGHTS = ["A0", "A1", "A2", "B0", "B1", "B2", "C0", "C1", "C2"]


def test_the_name_splits_into_controller_modes_and_overrides():
    assert split_overrides("rl+ped@O=maxpressure@J3=actuated") == ("rl+ped", {"O": "maxpressure", "J3": "actuated"})
    assert split_controller("actuated+preempt+tsp@O=maxpressure") == ("actuated", "receivers", True)
    assert split_overrides("actuated") == ("actuated", {})


@pytest.mark.parametrize("name, needle", [
    ("actuated@O", "is not LIGHT=CONTROLLER"),
    ("actuated@=maxpressure", "is not LIGHT=CONTROLLER"),
    ("actuated@O=telepathy", "is not LIGHT=CONTROLLER"),
    ("actuated@O=actuated+preempt", "is not LIGHT=CONTROLLER"),  # modes apply at every light, before the first @
    ("actuated@O=sumo-actuated", "is not LIGHT=CONTROLLER"),
    ("actuated@O=fixed@O=maxpressure", "a light is given twice"),
    ("sumo-delay-based@O=fixed", "runs inside SUMO"),
])
def test_overrides_that_do_not_fit_are_refused(name, needle):
    with pytest.raises(InputError, match=needle):
        check_controller(name)


def test_a_light_the_network_does_not_have_is_named():
    with pytest.raises(InputError, match="no traffic light 'Z9'.*A0, A1"):
        check_lights(load_network("grid"), "actuated@Z9=fixed")
    assert_one_line_error(ondaverde("evaluate", "--network", "grid", "--controllers", "actuated,actuated@Z9=fixed",
                                    "--end", "60"), "Z9", "grid")


def test_an_overridden_light_runs_the_other_controller():
    """On the one-light network the override replaces the controller entirely: the same run as the other controller
    to the last digit. On the grid, half the lights under each controller gives a run unlike either."""
    single = load_network("single").with_horizon(None, 900)
    fixed = run_episode(single, "base", "fixed", 0).metrics["delay"]
    actuated = run_episode(single, "base", "actuated", 0).metrics["delay"]
    assert fixed != actuated
    assert run_episode(single, "base", "fixed@C=actuated", 0).metrics["delay"] == actuated
    grid = load_network("grid").with_horizon(None, 900)
    mixed = "fixed" + "".join(f"@{light}=maxpressure" for light in GRID_LIGHTS[::2])
    every = "fixed" + "".join(f"@{light}=maxpressure" for light in GRID_LIGHTS)
    delays = {name: run_episode(grid, "base", name, 0).metrics["delay"]
              for name in ("fixed", "maxpressure", mixed, every)}
    assert delays[every] == delays["maxpressure"]
    assert delays[mixed] not in (delays["fixed"], delays["maxpressure"])


def test_the_priority_report_pairs_runs_with_the_same_overrides():
    from training.priority_report import comparisons

    records = [{"controller": c} for c in ("rl@O=maxpressure", "rl+tsp@O=maxpressure", "rl+preempt-gps@O=maxpressure",
                                           "rl+tsp", "rl")]
    assert comparisons(records, "tsp") == [("rl+tsp@O=maxpressure", "rl@O=maxpressure"), ("rl+tsp", "rl")]
    assert comparisons(records, "preempt") == [("rl+preempt-gps@O=maxpressure", "rl@O=maxpressure")]

"""Pedestrian push buttons in SUMO: persons waiting at a signalised crosswalk call its phase (``+ped``)."""

from __future__ import annotations

import pytest

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


def test_push_buttons_work_through_the_virtual_controllers_and_the_daemon():
    """The cabinets register the waiting persons' calls and report them (Modbus input register ``ped_calls``); the
    daemon's core mirrors them, so its phase timing and log show the walks the cabinets time."""
    from training.evaluate import evaluate

    base = load_network("miraflores")
    spec = base.with_horizon(None, base.scenario("night").begin_s + 900, only=["night"])
    without, pressed = evaluate(spec, ["night"], ["actuated", "actuated+ped"], [900001], progress=False,
                                through="virtual")
    assert pressed["pedestrian_presses"] > 30 and "pedestrian_presses" not in without
    assert pressed["violations"] == without["violations"] == 0
    assert pressed["unanswered"] == without["unanswered"] == 0
    assert pressed["lost_control"] == without["lost_control"] == 0
    assert pressed["pedestrians"] == without["pedestrians"] > 20
    assert pressed["pedestrian_delay"] < 0.9 * without["pedestrian_delay"], (pressed["pedestrian_delay"],
                                                                               without["pedestrian_delay"])


class _CabinetOnAWire:
    """An adapter talking to an in-process cabinet (no protocol: this test is about what the central side does
    with the cabinet's reported pedestrian calls)."""

    connected = True

    def __init__(self, cabinet) -> None:
        self.cabinet = cabinet

    async def connect(self) -> None:
        self.connected = True

    async def close(self) -> None:
        pass

    async def read(self, unit: int, n_detectors: int):
        import numpy as np

        from hw.field import FieldInputs

        n = n_detectors
        return FieldInputs(self.cabinet.status(), np.zeros(n, dtype=bool), np.zeros(n), np.zeros(n), np.zeros(n),
                           0, False)

    async def write(self, unit: int, commands, heartbeat: int) -> None:
        self.cabinet.receive(commands)
        self.cabinet.refresh()


def test_the_central_core_mirrors_the_cabinets_push_button_calls_and_times_the_same_walks():
    import asyncio

    from controller.policies.registry import make_policy
    from controller.testing import crossroads_with_crosswalks
    from hw.cabinet import FieldCabinet
    from hw.central import CentralIntersection, FieldLink

    inter = crossroads_with_crosswalks()  # crosswalk link 2 walks with phase 0, link 5 with phase 1
    cabinet = FieldCabinet(inter, make_policy("fixed"), 1.0, backup_time_s=5.0)
    central = CentralIntersection(inter, make_policy("actuated"), FieldLink(_CabinetOnAWire(cabinet)), unit=1)
    mirrored, cabinet_walks = [], set()

    async def drive() -> None:
        for t in range(240):
            if t in (40, 150):
                cabinet.press_pedestrian_buttons([1])
            assert await central.cycle()
            if t in (40, 150):
                mirrored.append(1 in central.controller.machine.pedestrian_calls or central.controller.state[5] == "G")
            cabinet.step(None)
            if cabinet.status().walks & 0b10:
                cabinet_walks.add(cabinet.status().clock_s)

    asyncio.run(drive())
    assert mirrored == [True, True]
    # the core's crosswalk shows walk in the seconds the cabinet's does (the cabinet one second later, as it shows
    # every command a second after the core decided it)
    core_walks = {clock + 1 for clock, state, _, _ in central.commanded if state[5] == "G"}
    assert len(core_walks) >= 7  # at least one walk of phase 1
    assert core_walks == cabinet_walks
    assert not central.controller.monitor.violations and not cabinet.controller.monitor.violations

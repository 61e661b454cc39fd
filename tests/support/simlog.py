"""A simulated run logged as the daemon logs it: the core's EventRecorder and the SQLite EventLog, every second."""

from __future__ import annotations

from pathlib import Path

#: 2024-04-15 12:00:00 UTC: the clock the simulated logs start from
EPOCH_S = 1_713_182_400.0


def simulated_daemon_log(network: str, seconds: float, path: Path, policy: str = "actuated"):
    """Run ``network`` under ``policy`` for ``seconds`` with the daemon's recorder and store (the events of every
    intersection, as ``ondaverde run`` logs them); write the store to ``path.with_suffix('.sqlite')`` and its
    ATSPM CSV export to ``path``; return the intersections."""
    from controller.events import EventRecorder, policy_termination_code
    from controller.policies.registry import make_policy
    from envs.simulation import SignalSimulation, intersections_of
    from hw.eventlog import EventLog
    from networks.catalog import load_network

    net = load_network(network)
    inters = intersections_of(net)
    sim = SignalSimulation(net, net.scenario(None), 0, policies={i.id: make_policy(policy) for i in inters})
    sim.skip_quiet = False  # observe every controller every second, as the daemon does
    recorders = [EventRecorder(c.intersection, policy_termination_code(policy)) for c in sim.controllers]
    log = EventLog(path.with_suffix(".sqlite"), epoch_s=EPOCH_S)
    try:
        start = sim.time_s
        while sim.time_s < start + seconds and not sim.done:
            sim.advance()
            events = []
            for ctrl, rec, readings in zip(sim.controllers, recorders, sim.readings):
                m = ctrl.machine
                events += rec.observe(sim.time_s, ctrl.interval, m.phase, ctrl.state, m.may_end_green(),
                                      readings.occupied, m.stats.max_outs)
            log.append(events)
        assert sim.violations() == 0
    finally:
        sim.cleanup()
    log.export_csv(path)
    log.close()
    return inters

"""``ondaverde evaluate --through virtual``: the same records and report as the core's runs, each run driven through
the whole live loop (SUMO <-> virtual Modbus controllers <-> the daemon, lock step)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.test_preempt_sumo import _network

pytestmark = pytest.mark.sumo


def test_evaluate_through_the_virtual_controllers_records_and_reports_like_the_core(tmp_path):
    from networks.catalog import load_network
    from training.evaluate import evaluate
    from training.priority_report import format_report

    net = load_network(_network(tmp_path))
    loop = evaluate(net, ["ev"], ["actuated", "actuated+tsp"], [0], jobs=1, progress=False, through="virtual")
    core = evaluate(net, ["ev"], ["actuated"], [0], jobs=1, progress=False)
    lagged = evaluate(net, ["ev"], ["actuated"], [0], jobs=1, progress=False, input_lag_s=1)
    assert [r["controller"] for r in loop] == ["actuated", "actuated+tsp"]
    assert all(r["through"] == "virtual" and r["violations"] == 0 and r["unanswered"] == 0 for r in loop)
    assert set(core[0]) - {"requests", "deferred", "max_outs", "tsp_services", "emergency_vehicles_seen",
                           "preempt_calls", "bus_check_ins", "wall_s"} <= set(loop[0])  # the core's record keys
    # the daemon acts on each second's detector data a second later, through Modbus: the whole loop gives exactly
    # the core's run with an input lag of 1 s, to the last vehicle
    assert loop[0]["input_lag_s"] == lagged[0]["input_lag_s"] == 1 and core[0]["input_lag_s"] == 0
    for key in ("delay", "travel_time", "waiting_time", "stops", "throughput", "emergency_delay"):
        assert loop[0][key] == pytest.approx(lagged[0][key], abs=1e-9), key
    assert loop[1]["tsp_services"] >= 1
    report = format_report(loop)
    assert "overall delay actuated -> actuated+tsp" in report and "azul" in report, report


def test_a_horizon_set_on_the_command_line_runs_through_the_loop_too():
    """--begin/--end reach the loop's processes, which load the network by name (until December 2026 they ran
    the scenario's own horizon: 2,798 vehicles for the 209 of a 300 s run, silently)."""
    from networks.catalog import load_network
    from training.evaluate import evaluate

    net = load_network("single").with_horizon(None, 300.0)
    loop = evaluate(net, ["base"], ["actuated"], [0], jobs=1, progress=False, through="virtual")
    lagged = evaluate(net, ["base"], ["actuated"], [0], jobs=1, progress=False, input_lag_s=1)
    assert loop[0]["scheduled"] == lagged[0]["scheduled"] < 400
    assert loop[0]["delay"] == pytest.approx(lagged[0]["delay"], abs=1e-9)


def test_evaluate_through_the_loop_refuses_sumos_own_controllers_in_one_line():
    proc = subprocess.run([sys.executable, "-m", "ondaverde", "evaluate", "--network", "single", "--controllers",
                           "actuated,sumo-delay-based", "--through", "virtual"], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "ondaverde: error: controller 'sumo-delay-based' runs inside SUMO and cannot be driven through the virtual "
        "controllers; leave it out with --through virtual"]


@pytest.mark.parametrize("args, words", [
    (("run", "--sumo", "single", "--preempt-route", "20"), "needs preemption"),
    (("run", "--sumo", "single", "--preempt", "--preempt-route", "-5"), "positive number of seconds"),
    (("virtual-controller", "--tsp"), "--tsp needs --sumo"),
    (("virtual-controller", "--preempt-route", "30"), "needs --preempt, --sumo"),
    (("virtual-controller", "--ped"), "--ped needs --sumo"),
    (("virtual-controller", "--end", "300"), "--begin and --end need --sumo"),
    (("run", "daemon.yaml", "--ped"), "--ped applies to --sumo runs"),
    (("run", "daemon.yaml", "--tsp", "--preempt"), "--preempt and --tsp apply to --sumo runs"),
])
def test_priority_options_without_what_they_need_are_refused_in_one_line(args, words):
    proc = subprocess.run([sys.executable, "-m", "ondaverde", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and words in proc.stderr, proc.stderr

"""Where the delay is (`--by-light`): each light's share of the time loss, checked against SUMO's own files."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from envs.light_delay import ELSEWHERE
from training.light_report import format_by_light

pytestmark = pytest.mark.sumo


def ondaverde(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ondaverde.cli", *args], capture_output=True, text=True)


def test_each_lights_share_is_the_time_loss_sumo_reports_on_the_edges_its_connections_leave(tmp_path):
    import sumolib

    from envs.runner import run_episode
    from networks.catalog import load_network

    spec = load_network("grid")
    result = run_episode(spec, "base", "actuated", 0, work_dir=tmp_path, by_light=True)
    shares = result.metrics["delay_by_light"]
    scheduled = result.metrics["scheduled"]
    # the judge: SUMO's net (connections naming their traffic light) and SUMO's own edge data file
    net = sumolib.net.readNet(str(spec.net_file))
    owner = {}
    for edge in net.getEdges():
        lights = {c.getTLSID() for conns in edge.getOutgoing().values() for c in conns if c.getTLSID()}
        if lights:
            assert len(lights) == 1
            owner[edge.getID()] = lights.pop()
    expected: dict[str, float] = {}
    for edge in ET.parse(tmp_path / "edgedata.xml").getroot().iter("edge"):
        key = owner.get(edge.get("id"), ELSEWHERE)
        expected[key] = expected.get(key, 0.0) + float(edge.get("timeLoss")) / scheduled
    assert set(shares) == {*(tl for tl in owner.values()), ELSEWHERE}
    for key, value in expected.items():
        assert shares[key] == pytest.approx(value), key
    assert all(v > 0 for v in shares.values())
    # the shares add up to most of the delay; the rest is waiting to enter and junction interiors
    assert 0.8 * result.metrics["delay"] < sum(shares.values()) < result.metrics["delay"]


def test_evaluate_by_light_prints_a_line_per_light_and_keeps_the_shares_in_json():
    proc = ondaverde("evaluate", "--network", "single", "--controllers", "fixed,actuated", "--seeds", "0",
                     "--by-light", "--json")
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    assert all(set(r["delay_by_light"]) == {"C", ELSEWHERE} for r in records)
    table = format_by_light(records)
    lines = table.splitlines()
    assert lines[1].split() == ["light", "fixed", "actuated"]
    assert [line.split()[0] for line in lines[3:6]] == ["C", ELSEWHERE, "sum"]
    lowest = min(r["delay_by_light"]["C"] for r in records) + min(r["delay_by_light"][ELSEWHERE] for r in records)
    assert lines[6].startswith(f"lowest of each line, summed: {lowest:.2f}")
    fixed, actuated = (r["delay_by_light"]["C"] for r in records)
    row = lines[3].split()
    assert row[1 + (actuated < fixed)].endswith("*") and not row[2 - (actuated < fixed)].endswith("*")


def test_by_light_is_refused_through_the_virtual_controllers_in_one_line():
    proc = ondaverde("evaluate", "--network", "single", "--controllers", "actuated", "--seeds", "0",
                     "--by-light", "--through", "virtual")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "--by-light" in proc.stderr

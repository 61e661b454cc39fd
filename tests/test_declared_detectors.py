"""networks.declared_detectors: a network's own E1/E2 detectors become its lights' field detectors."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from controller.errors import InputError
from controller.policies.registry import make_policy
from envs.simulation import SignalSimulation
from networks.catalog import load_network
from networks.derive import derive_intersections

ROOT = Path(__file__).resolve().parents[1]

#: on the single network's approaches (each 300 m ... ) and one of its exits
SINGLE_DECLARED = """<additional>
    <inductionLoop id="e0_stop" lane="east_app_0" pos="-2" period="60" file="NUL"/>
    <inductionLoop id="e0_adv" lane="east_app_0" pos="-45" period="60" file="NUL"/>
    <e1Detector id="e0_far" lane="east_app_0" pos="-90" freq="900" file="NUL"/>
    <laneAreaDetector id="e1_queue" lane="east_app_1" pos="-120" length="100" period="60" file="NUL"/>
    <laneAreaDetector id="w_exit" lane="west_exit_0" pos="0" endPos="40" period="60" file="NUL"/>
    <inductionLoop id="n0_adv" lane="north_app_0" pos="-50" period="60" file="NUL"/>
    <instantInductionLoop id="n1_instant" lane="north_app_1" pos="-10" file="NUL"/>
    <inductionLoop id="n1_bus" lane="north_app_1" pos="-30" vTypes="bus" period="60" file="NUL"/>
</additional>
"""


def _single_with(tmp_path: Path, declared: str = SINGLE_DECLARED, end_s: int = 600) -> Path:
    """A ``.sumocfg`` of the single network, its first ``end_s`` seconds, loading ``declared`` as an additional file."""
    single = load_network("single")
    shutil.copy(single.net_file, tmp_path / "single.net.xml")
    shutil.copy(single.scenario().route_files[0], tmp_path / "base.rou.xml")
    (tmp_path / "declared.add.xml").write_text(declared)
    cfg = tmp_path / "declared.sumocfg"
    cfg.write_text('<configuration>\n  <input>\n    <net-file value="single.net.xml"/>\n'
                   '    <route-files value="base.rou.xml"/>\n    <additional-files value="declared.add.xml"/>\n'
                   f'  </input>\n  <time>\n    <begin value="0"/>\n    <end value="{end_s}"/>\n  </time>\n'
                   '</configuration>\n')
    return cfg


def test_declared_loops_and_zones_replace_the_automatic_set(tmp_path):
    cfg = _single_with(tmp_path)
    [c] = derive_intersections(tmp_path / "single.net.xml", None, [tmp_path / "declared.add.xml"])
    got = {d.id: (d.kind, d.lane, round(d.distance_m, 2), d.length_m) for d in c.detectors}
    assert got == {
        "C__sb__e0_stop": ("stopbar", "east_app_0", 2.0, 0.0),  # nearest loop, within 15 m of the stop line
        "C__adv__e0_adv": ("advance", "east_app_0", 45.0, 0.0),
        "C__adv__e0_far": ("advance", "east_app_0", 90.0, 0.0),  # the legacy tag too
        "C__rad__e1_queue": ("radar", "east_app_1", 20.0, 100.0),  # a zone ending 20 m before the line
        "C__adv__n0_adv": ("advance", "north_app_0", 50.0, 0.0),  # the nearest loop, but 50 m up: no stop bar
        "C__exit__w_exit": ("exit", "west_exit_0", 0.0, 40.0),
    }  # the instantaneous loop is not a count detector, the bus-only loop not one of all traffic: left out
    assert [d.id for d in c.detectors][:3] == ["C__sb__e0_stop", "C__adv__e0_adv", "C__adv__e0_far"]
    by_id = {d.id: d for d in c.detectors}
    assert set(by_id["C__exit__w_exit"].links) == {l.index for l in c.links if l.to_lane == "west_exit_0"}
    assert set(by_id["C__sb__e0_stop"].links) == {l.index for l in c.links if l.from_lane == "east_app_0"}
    # the same network without the file: the automatic set (3 per approach lane, 1 per exit lane)
    [auto] = derive_intersections(tmp_path / "single.net.xml")
    assert len(auto.detectors) == 44 and auto.detectors[0].id == "C__sb__east_app_0"
    assert load_network(str(cfg)).additional_files == ((tmp_path / "declared.add.xml").resolve(),)


def test_a_light_without_declared_detectors_keeps_the_automatic_set(tmp_path):
    grid = load_network("grid")
    add = tmp_path / "one.add.xml"
    add.write_text('<additional><inductionLoop id="mine" lane="A1A0_1" pos="-5" period="60" file="NUL"/>'
                   '</additional>')
    auto = {i.id: i.detectors for i in derive_intersections(grid.net_file)}
    mixed = {i.id: i.detectors for i in derive_intersections(grid.net_file, None, [add])}
    assert [d.id for d in mixed["A0"]] == ["A0__sb__mine"]
    assert all(mixed[k] == auto[k] for k in auto if k != "A0")


@pytest.mark.sumo
def test_declared_detectors_read_in_sumo_as_declared(tmp_path):
    """Each re-declared copy sits exactly where the network's detector is (SUMO itself is the judge: same lane,
    position and length, and the same vehicles on it every second) and actuated control runs on them."""
    cfg = _single_with(tmp_path, end_s=300)
    spec = load_network(str(cfg))
    sim = SignalSimulation(spec, spec.scenario(), 0, policies={"C": make_policy("actuated")})
    try:
        api = sim.backend.api
        pairs = [(d, d.id.split("__", 2)[2]) for d in sim.intersections[0].detectors]
        for det, original in pairs:
            dom = api.inductionloop if det.kind in ("stopbar", "advance") else api.lanearea
            assert dom.getLaneID(det.id) == dom.getLaneID(original), det.id
            assert dom.getPosition(det.id) == pytest.approx(dom.getPosition(original), abs=0.011), det.id
            if dom is api.lanearea:
                assert dom.getLength(det.id) == pytest.approx(dom.getLength(original), abs=0.011), det.id
        passed = {name: set() for pair in pairs for name in (pair[0].id, pair[1])}
        while not sim.done:
            sim.advance()
            for det, original in pairs:
                if det.kind in ("stopbar", "advance"):
                    # the vehicles over a loop: "last step" data keep a vehicle that left exactly at a step's start
                    # until the loop's aggregation period ends (1 s here, 60-900 s declared), so compare who passed
                    for name in (det.id, original):
                        passed[name] |= set(api.inductionloop.getLastStepVehicleIDs(name))
                else:  # the vehicles in a zone, second by second
                    assert api.lanearea.getLastStepVehicleIDs(det.id) == api.lanearea.getLastStepVehicleIDs(original)
        for det, original in pairs:
            assert passed[det.id] == passed[original], det.id
        assert sum(map(len, passed.values())) > 20 and sim.violations() == 0
        metrics = sim.close()
        assert metrics.throughput > 0
    finally:
        sim.cleanup()


@pytest.mark.sumo
def test_a_zone_over_several_lanes_reads_as_declared(tmp_path):
    """A declared E2 over two lanes (the road through an unsignalised junction into a light's approach lane) is a
    radar zone of that light, re-declared over the same lanes (SUMO gives both the same position and length)."""
    mf = load_network("miraflores")
    add = tmp_path / "multi.add.xml"
    add.write_text('<additional><laneAreaDetector id="long" lanes="BEN_W_D3_1 D3_L3_1" pos="-20" endPos="30" '
                   'period="300" file="NUL"/></additional>')
    light = {i.id: i for i in derive_intersections(mf.net_file, None, [add])}["L3"]
    [zone] = light.detectors
    assert (zone.id, zone.kind, zone.lane) == ("L3__rad__long", "radar", "D3_L3_1")
    assert [(lane, round(a, 2), round(b, 2)) for lane, a, b in zone.placement] == [("BEN_W_D3_1", 103.91, 123.91),
                                                                             ("D3_L3_1", 0.0, 30.0)]
    assert zone.distance_m == pytest.approx(299.72) and zone.length_m == pytest.approx(50.0)
    from dataclasses import replace

    spec = replace(mf, additional_files=(*mf.additional_files, add))
    sim = SignalSimulation(spec, replace(mf.scenario("am-peak"), end_s=mf.scenario("am-peak").begin_s + 5), 0,
                           measure_priority_vehicles=False)
    try:
        la = sim.backend.api.lanearea
        assert la.getLength("L3__rad__long") == pytest.approx(la.getLength("long"), abs=0.02)
        assert la.getPosition("L3__rad__long") == pytest.approx(la.getPosition("long"), abs=0.011)
    finally:
        sim.cleanup()


def test_a_malformed_declared_detector_is_one_line(tmp_path):
    cfg = _single_with(tmp_path, SINGLE_DECLARED.replace('pos="-45"', 'pos="near"'))
    with pytest.raises(InputError, match=r"declared\.add\.xml: inductionLoop 'e0_adv': pos 'near' is not a number"):
        derive_intersections(tmp_path / "single.net.xml", None, [tmp_path / "declared.add.xml"])
    proc = subprocess.run([sys.executable, "-m", "ondaverde", "simulate", "--network", str(cfg), "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "'near' is not a number" in proc.stderr
    for name, text, fragment in (("broken.add.xml", "<additional><inductionLoop id='x'", "not a readable"),
                                 ("nolane.add.xml", "<additional><e1Detector id='x' pos='3'/></additional>", "no lane"),
                                 ("noid.add.xml", "<additional><laneAreaDetector lane='east_app_0'/></additional>",
                                  "without an id")):
        (tmp_path / name).write_text(text)
        with pytest.raises(InputError, match=name.replace(".", r"\.")) as err:
            derive_intersections(tmp_path / "single.net.xml", None, [tmp_path / name])
        assert fragment in str(err.value)
    with pytest.raises(InputError, match="gone.add.xml: additional file not found"):
        derive_intersections(tmp_path / "single.net.xml", None, [tmp_path / "gone.add.xml"])
    # a gzipped additional file is read as SUMO reads it
    import gzip

    with gzip.open(tmp_path / "declared.add.xml.gz", "wt") as fh:
        fh.write(SINGLE_DECLARED)
    [c] = derive_intersections(tmp_path / "single.net.xml", None, [tmp_path / "declared.add.xml.gz"])
    assert "C__sb__e0_stop" in {d.id for d in c.detectors}


#: the committed example (README, "Detectors of your own"): loops on the north and south approaches only
SEMI_ACTUATED = (ROOT / "networks" / "single" / "semi-actuated.add.xml").read_text()


@pytest.mark.sumo
def test_a_semi_actuated_layout_is_named_and_its_major_street_held_on_max_recall(tmp_path):
    """Only the side street detected (a common field layout): the user is told which phases have no detector, and
    actuated holds those on max recall instead of giving the major street its minimum green every cycle."""
    cfg = _single_with(tmp_path, SEMI_ACTUATED, end_s=900)
    [c] = derive_intersections(tmp_path / "single.net.xml", None, [tmp_path / "declared.add.xml"])
    from networks.layout_report import undetected_phases

    undetected = undetected_phases([c])
    assert undetected and {tl for tl, _, _ in undetected} == {"C"}
    for _, number, _ in undetected:  # east-west movements only
        phase = next(p for p in c.phases if p.number == number)
        assert all(c.links[l].from_lane.split("_")[0] in ("east", "west") for l in phase.greens
                   if c.links[l].kind == "vehicle")
    proc = subprocess.run([sys.executable, "-m", "ondaverde", "simulate", "--network", str(cfg), "--controller",
                           "actuated", "--json"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    note = [l for l in proc.stderr.splitlines() if l.startswith("note:")]
    assert len(note) == 1 and f"{len(undetected)} phase(s) at 1 light(s) have no detector" in note[0]
    import json

    record = json.loads(proc.stdout)
    assert record["delay"] < 120 and record["teleports"] == 0  # min recall on the major street gave ~400 s
    # max-pressure too: a phase it cannot weigh is served on max recall (it was starved: ~580 s over 30 min)
    proc = subprocess.run([sys.executable, "-m", "ondaverde", "simulate", "--network", str(cfg), "--controller",
                           "maxpressure", "--json"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["delay"] < 120 and record["teleports"] == 0


@pytest.mark.sumo
def test_detectors_written_by_sumos_own_tools_are_used(tmp_path):
    """A layout nobody here wrote: SUMO's generateTLSE1Detectors.py (loops 2 m before every stop line) and
    generateTLSE2Detectors.py (100 m zones ending 0.1 m before it) on the grid. Every approach lane of every light
    gets exactly those (stop bar and radar), nothing automatic, no undetected phase; actuated and max-pressure run
    on them."""
    import json
    import os

    from networks.layout_report import undetected_phases
    from networks.sumo_home import sumo_home

    grid = load_network("grid")
    shutil.copy(grid.net_file, tmp_path / "grid.net.xml")
    shutil.copy(grid.scenario().route_files[0], tmp_path / "base.rou.xml")
    tools = sumo_home() / "tools" / "output"
    env = {**os.environ, "SUMO_HOME": str(sumo_home())}
    for script, args in (("generateTLSE1Detectors.py", ["-d", "2", "-o", "e1.add.xml", "-r", "e1out.xml"]),
                         ("generateTLSE2Detectors.py", ["-l", "100", "-d", "0.1", "-o", "e2.add.xml", "-r", "e2out.xml"])):
        subprocess.run([sys.executable, str(tools / script), "-n", "grid.net.xml", *args], cwd=tmp_path, env=env,
                       check=True, capture_output=True, timeout=120)
    files = [tmp_path / "e1.add.xml", tmp_path / "e2.add.xml"]
    inters = derive_intersections(tmp_path / "grid.net.xml", None, files)
    assert len(inters) == 9 and undetected_phases(inters) == []
    for inter in inters:
        approaches = {l.from_lane for l in inter.links if l.kind == "vehicle" and l.from_lane}
        kinds = {}
        for d in inter.detectors:
            if d.kind != "exit":
                kinds.setdefault(d.lane, []).append((d.kind, round(d.distance_m, 1), d.length_m))
        assert kinds == {lane: [("stopbar", 2.0, 0.0), ("radar", 0.1, 100.0)] for lane in approaches}, inter.id
        assert all(d.id.split("__")[2].startswith(("e1det_", "e2det_")) for d in inter.detectors)
    cfg = tmp_path / "tools.sumocfg"
    cfg.write_text('<configuration><input><net-file value="grid.net.xml"/><route-files value="base.rou.xml"/>'
                   '<additional-files value="e1.add.xml,e2.add.xml"/></input>'
                   '<time><begin value="0"/><end value="900"/></time></configuration>')
    proc = subprocess.run([sys.executable, "-m", "ondaverde", "evaluate", "--network", str(cfg), "--controllers",
                           "fixed,actuated,maxpressure", "--seeds", "0", "--json"], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "note:" not in proc.stderr
    delay = {r["controller"]: r["delay"] for r in json.loads(proc.stdout)}
    assert delay["actuated"] < delay["fixed"] and delay["maxpressure"] < delay["fixed"], delay


def test_networks_show_names_the_layout_and_writes_the_intersection_file(tmp_path):
    from networks.derive import load_intersection_file

    out = tmp_path / "semi.json"
    proc = subprocess.run([sys.executable, "-m", "ondaverde", "networks", "show", "--network",
                           str(ROOT / "networks" / "single" / "semi-actuated.sumocfg"), "--write", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == ("light C: 4 phases, 16 vehicle links, 0 crosswalks; detectors (the network's own): "
                        "6 stopbar, 6 advance")
    assert sum("NO DETECTOR" in l for l in lines) == 2 and sum(", major" in l for l in lines) == 1
    [c] = load_intersection_file(out)
    [derived] = derive_intersections(ROOT / "networks" / "single" / "single.net.xml", None,
                                     [ROOT / "networks" / "single" / "semi-actuated.add.xml"])
    assert c == derived
    auto = subprocess.run([sys.executable, "-m", "ondaverde", "networks", "show", "--network", "single"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert auto.returncode == 0 and "detectors (automatic): 12 stopbar, 12 advance, 12 radar, 8 exit" in auto.stdout
    assert "NO DETECTOR" not in auto.stdout and not auto.stderr.strip()

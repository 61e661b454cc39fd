"""networks.catalog: bundled networks, network folders, bring-your-own files and .sumocfg."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from controller.errors import InputError
from networks.catalog import (
    DEFAULT_NETWORK,
    NetworkSpec,
    ScenarioSpec,
    bundled_networks,
    largest_bundled_network,
    load_network,
    network_from_files,
    network_from_sumocfg,
)


def _sumo() -> str:
    from networks.sumo_home import sumo_binary

    return sumo_binary("sumo")


def test_bundled_networks_are_listed():
    names = bundled_networks()
    assert {"single", "grid"} <= set(names)
    assert DEFAULT_NETWORK in names
    # the largest is the one with the most signal links, counted here independently from the derived model
    from envs.simulation import intersections_of

    links = {n: sum(i.n_links for i in intersections_of(load_network(n))) for n in names}
    assert largest_bundled_network() == max(links, key=links.get)


@pytest.mark.parametrize("name", ["single", "grid"])
def test_bundled_network_is_self_describing(name):
    spec = load_network(name)
    assert isinstance(spec, NetworkSpec) and spec.name == name
    assert spec.net_file.is_file() and spec.net_file.parent == spec.folder
    base = spec.scenario()
    assert base is spec.scenario("base") and spec.default_scenario == "base"
    assert isinstance(base, ScenarioSpec)
    assert (base.begin_s, base.end_s, base.duration_s) == (0.0, 3600.0, 3600.0)
    assert all(f.is_file() for f in base.route_files)
    assert (spec.folder / "README.md").is_file()
    # routes: explicit vehicles, sorted by depart time, vehicle types with a vClass
    root = ET.parse(base.route_files[0]).getroot()
    departs = [float(v.get("depart")) for v in root.iter("vehicle")]
    assert departs == sorted(departs) and len(departs) > 1000 and departs[-1] < base.end_s
    assert all(t.get("vClass") for t in root.iter("vType"))
    assert {v.get("type") for v in root.iter("vehicle")} <= {t.get("id") for t in root.iter("vType")}
    assert spec.intersections()  # derivable
    assert spec == load_network(str(spec.folder))  # same network by path


def test_with_horizon():
    grid = load_network("grid")
    short = grid.with_horizon(None, 120)
    assert (short.scenario().begin_s, short.scenario().end_s) == (0.0, 120.0)
    assert grid.scenario().end_s == 3600.0  # the original is unchanged (frozen)
    assert grid.with_horizon(60, None).scenario().begin_s == 60.0
    with pytest.raises(InputError, match="after begin"):
        grid.with_horizon(200, 100)


def test_a_horizon_for_one_scenario_leaves_the_others_alone():
    """Miraflores' scenarios start at different times of day: ``--end 27000`` with am-peak (07:00-09:00) must not
    be applied to pm-peak (from 18:00), where it would end before the begin."""
    mira = load_network("miraflores")
    with pytest.raises(InputError, match="pm-peak"):
        mira.with_horizon(None, 27000)
    short = mira.with_horizon(None, 27000, only=["am-peak"])
    assert short.scenario("am-peak").end_s == 27000.0
    assert short.scenario("pm-peak") == mira.scenario("pm-peak")


def test_unknown_network_and_scenario():
    with pytest.raises(InputError, match="'atlantis'"):
        load_network("atlantis")
    with pytest.raises(InputError, match="unknown scenario 'rush'"):
        load_network("grid").scenario("rush")
    with pytest.raises(InputError, match="several scenarios go to evaluate --scenarios"):  # evaluate --scenario a,b
        load_network("miraflores").scenario("am-peak,pm-peak")


def _folder(tmp_path: Path, yaml_text: str) -> Path:
    src = load_network("single").folder
    dst = tmp_path / "mynet"
    dst.mkdir()
    shutil.copy(src / "single.net.xml", dst / "my.net.xml")
    shutil.copy(src / "base.rou.xml", dst / "a.rou.xml")
    (dst / "network.yaml").write_text(yaml_text)
    return dst


def test_network_folder_by_path(tmp_path):
    folder = _folder(tmp_path, "name: mine\nnet: my.net.xml\nintersections: ov.yaml\ndefault_scenario: short\n"
                               "scenarios:\n  short: {routes: [a.rou.xml], begin: 0, end: 600, description: x}\n"
                               "  long:\n    routes: a.rou.xml\n    end: 3600\n")
    (folder / "ov.yaml").write_text("C:\n  phases:\n    1: {name: main}\n")
    spec = load_network(str(folder))
    assert spec.name == "mine" and spec.override_file == (folder / "ov.yaml").resolve()
    assert spec.scenario().end_s == 600 and spec.scenario("long").route_files == ((folder / "a.rou.xml").resolve(),)
    assert spec.intersections()[0].phases[0].name == "main"
    assert load_network(folder / "network.yaml") == spec


@pytest.mark.parametrize("text, fragment", [
    ("net: my.net.xml\nscenarios: {b: {routes: [a.rou.xml], end: 10}}\n: :\n  - [", "network.yaml: not valid YAML"),
    ("- just\n- a list\n", "network.yaml: expected a mapping"),
    ("scenarios: {b: {routes: [a.rou.xml], end: 10}}\n", "'net'"),
    ("net: missing.net.xml\nscenarios: {b: {routes: [a.rou.xml], end: 10}}\n", "missing.net.xml not found"),
    ("net: my.net.xml\nscenarios: {b: {routes: [nope.rou.xml], end: 10}}\n", "nope.rou.xml not found"),
    ("net: my.net.xml\nscenarios: {b: {routes: [a.rou.xml]}}\n", "end (seconds) is missing"),
    ("net: my.net.xml\nscenarios: {b: {routes: [a.rou.xml], begin: 50, end: 10}}\n", "must be after begin"),
    ("net: my.net.xml\nscenarios: {b: {routes: [a.rou.xml], end: soon}}\n", "number of seconds"),
    ("net: my.net.xml\ncolour: red\nscenarios: {b: {routes: [a.rou.xml], end: 10}}\n", "unknown key 'colour'"),
    ("net: my.net.xml\ndefault_scenario: c\nscenarios: {b: {routes: [a.rou.xml], end: 10}}\n", "default_scenario 'c'"),
    ("net: my.net.xml\nscenarios: {}\n", "'scenarios'"),
])
def test_bad_network_yaml(tmp_path, text, fragment):
    folder = _folder(tmp_path, text)
    with pytest.raises(InputError) as err:
        load_network(str(folder))
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)
    assert "network.yaml" in str(err.value)


def test_folder_without_network_yaml(tmp_path):
    with pytest.raises(InputError, match="network.yaml"):
        load_network(str(tmp_path))


def test_network_from_files(tmp_path):
    single = load_network("single")
    spec = network_from_files(single.net_file, list(single.scenario().route_files), 0, 900)
    assert spec.name == "single" and spec.scenario().end_s == 900 and spec.scenario().name == "main"
    assert network_from_files(single.net_file, [], 0, 60).scenario().route_files == ()
    with pytest.raises(InputError, match="nothere.net.xml"):
        network_from_files(tmp_path / "nothere.net.xml", [], 0, 60)
    with pytest.raises(InputError, match="gone.rou.xml"):
        network_from_files(single.net_file, [tmp_path / "gone.rou.xml"], 0, 60)
    with pytest.raises(InputError, match="after begin"):
        network_from_files(single.net_file, [], 100, 60)


def test_network_from_sumocfg(tmp_path):
    single = load_network("single")
    (tmp_path / "nets").mkdir()
    shutil.copy(single.net_file, tmp_path / "nets" / "x.net.xml")
    shutil.copy(single.scenario().route_files[0], tmp_path / "a.rou.xml")
    (tmp_path / "b.rou.xml").write_text("<routes/>\n")
    cfg = tmp_path / "run.sumocfg"
    cfg.write_text('<configuration>\n  <input>\n    <net-file value="nets/x.net.xml"/>\n'
                   '    <route-files value="a.rou.xml, b.rou.xml"/>\n  </input>\n'
                   '  <time>\n    <begin value="300"/>\n    <end value="1200"/>\n  </time>\n</configuration>\n')
    spec = network_from_sumocfg(cfg)
    assert spec.net_file == (tmp_path / "nets" / "x.net.xml").resolve()
    scen = spec.scenario()
    assert scen.name == "run" and (scen.begin_s, scen.end_s) == (300.0, 1200.0)
    assert scen.route_files == ((tmp_path / "a.rou.xml").resolve(), (tmp_path / "b.rou.xml").resolve())
    assert network_from_sumocfg(cfg, begin_s=0, end_s=60).scenario().end_s == 60
    no_time = tmp_path / "notime.sumocfg"
    no_time.write_text('<configuration><input><net-file value="nets/x.net.xml"/></input></configuration>')
    assert network_from_sumocfg(no_time).scenario().end_s == 3600.0
    for name, text, fragment in (
            ("nonet.sumocfg", "<configuration><input/></configuration>", "no net-file"),
            ("broken.sumocfg", "<configuration><input>", "not valid XML"),
            ("badroute.sumocfg", '<configuration><input><net-file value="nets/x.net.xml"/>'
                                 '<route-files value="zz.rou.xml"/></input></configuration>', "zz.rou.xml")):
        (tmp_path / name).write_text(text)
        with pytest.raises(InputError, match=name.replace(".", r"\.")) as err:
            network_from_sumocfg(tmp_path / name)
        assert fragment in str(err.value)
    with pytest.raises(InputError, match="missing.sumocfg"):
        network_from_sumocfg(tmp_path / "missing.sumocfg")


@pytest.mark.sumo
@pytest.mark.parametrize("name", ["single", "grid"])
def test_bundled_sumocfg_runs(name):
    """The committed base.sumocfg (net + routes + detectors) loads and runs in plain SUMO."""
    spec = load_network(name)
    proc = subprocess.run([_sumo(), "-c", str(spec.folder / "base.sumocfg"), "--end", "120", "--no-step-log"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Error" not in proc.stderr


@pytest.mark.sumo
@pytest.mark.slow
@pytest.mark.parametrize("name", ["single", "grid"])
def test_bundled_hour_without_gridlock(name, tmp_path):
    """Under the net's own fixed program every scenario hour runs without teleports (no gridlock)."""
    spec = load_network(name)
    stats = tmp_path / "stats.xml"
    proc = subprocess.run([_sumo(), "-c", str(spec.folder / "base.sumocfg"), "--no-step-log",
                           "--time-to-teleport", "300", "--statistic-output", str(stats)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    root = ET.parse(stats).getroot()
    assert int(root.find("teleports").get("total")) == 0
    assert int(root.find("vehicles").get("waiting", 0)) == 0


def _additional_files_case(tmp_path: Path) -> Path:
    """A configuration whose routes use a vehicle type defined in an additional file, with a signal program of
    its own for light C (50 s instead of the net's 33 s for the first green), and the bundled detector file."""
    single = load_network("single")
    routes = single.scenario().route_files[0].read_text()
    (tmp_path / "r.rou.xml").write_text(routes.replace('<vType id="car"', '<vType id="unused"'))
    (tmp_path / "types.add.xml").write_text('<additional><vType id="car" vClass="taxi" length="5"/></additional>')
    (tmp_path / "program.add.xml").write_text(
        '<additional><tlLogic id="C" type="static" programID="mine" offset="0">'
        '<phase duration="50" state="rrrrGGGgrrrrGGGg"/><phase duration="3" state="rrrryyygrrrryyyg"/>'
        '<phase duration="6" state="rrrrrrrGrrrrrrrG"/><phase duration="3" state="rrrrrrryrrrrrrry"/>'
        '<phase duration="33" state="GGGgrrrrGGGgrrrr"/><phase duration="3" state="yyygrrrryyygrrrr"/>'
        '<phase duration="6" state="rrrGrrrrrrrGrrrr"/><phase duration="3" state="rrryrrrrrrryrrrr"/>'
        '</tlLogic></additional>')
    cfg = tmp_path / "run.sumocfg"
    cfg.write_text(f'<configuration><input><net-file value="{single.net_file}"/><route-files value="r.rou.xml"/>'
                   f'<additional-files value="types.add.xml program.add.xml {single.folder / "detectors.add.xml"}"/>'
                   '</input><time><begin value="0"/><end value="300"/></time></configuration>')
    return cfg


def test_sumocfg_additional_files_are_kept_and_their_programs_used(tmp_path):
    from envs.simulation import intersections_of

    cfg = _additional_files_case(tmp_path)
    spec = network_from_sumocfg(cfg)
    # the bundled detector file (written by this project) is left out: every run writes its own
    assert spec.additional_files == ((tmp_path / "types.add.xml").resolve(), (tmp_path / "program.add.xml").resolve())
    assert [p.program_green_s for p in intersections_of(spec)[0].phases] == [50.0, 6.0, 33.0, 6.0]
    assert [p.program_green_s for p in intersections_of(load_network("single"))[0].phases] == [33.0, 6.0, 33.0, 6.0]
    (tmp_path / "program.add.xml").write_text("<additional><tlLogic id='C'")
    with pytest.raises(InputError, match="program.add.xml"):
        intersections_of(network_from_sumocfg(cfg))
    cfg.write_text(cfg.read_text().replace("types.add.xml", "gone.add.xml"))
    with pytest.raises(InputError, match="gone.add.xml"):
        network_from_sumocfg(cfg)


@pytest.mark.sumo
def test_sumocfg_vehicle_types_from_additional_files_run(tmp_path):
    """Routes whose vehicle type sits in an additional file run (SUMO refused them before), and the type's class
    is the one reported."""
    from envs.runner import run_episode

    spec = network_from_sumocfg(_additional_files_case(tmp_path))
    record = run_episode(spec, spec.default_scenario, "fixed", 0).record()
    assert record["scheduled"] > 0 and "taxi" in record["delay_by_vclass"]
    assert "passenger" not in record["delay_by_vclass"]  # the route file's own "car" type is renamed away

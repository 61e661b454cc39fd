"""The command line: records with the documented keys, and bad input as one line with exit code 2."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECORD_KEYS = {"controller", "network", "scenario", "seed", "delay", "travel_time", "waiting_time", "stops",
               "throughput", "teleports"}


def ondaverde(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ondaverde", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture(scope="module")
def broken_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "garbage.net.xml").write_text("<net><edge id='a'")
    (d / "garbage.rou.xml").write_text("this is not xml")
    # a valid network with no traffic lights
    (d / "plain.nod.xml").write_text('<nodes><node id="a" x="0" y="0"/><node id="b" x="100" y="0"/></nodes>')
    (d / "plain.edg.xml").write_text('<edges><edge id="ab" from="a" to="b" numLanes="1"/></edges>')
    from networks.sumo_home import sumo_binary

    subprocess.run([sumo_binary("netconvert"), "-n", str(d / "plain.nod.xml"), "-e", str(d / "plain.edg.xml"),
                    "-o", str(d / "plain.net.xml")], check=True, capture_output=True)
    return d


def test_unknown_controller_is_named():
    assert_one_line_error(ondaverde("simulate", "--controller", "telepathy"), "telepathy", "actuated")


def test_unknown_network_is_named():
    assert_one_line_error(ondaverde("simulate", "--network", "atlantis"), "atlantis")


def test_unknown_scenario_is_named():
    assert_one_line_error(ondaverde("simulate", "--network", "single", "--scenario", "rush"), "rush")


def test_missing_net_file_is_named(tmp_path):
    missing = tmp_path / "nowhere.net.xml"
    assert_one_line_error(ondaverde("simulate", "--net", str(missing), "--routes", "x.rou.xml", "--end", "60"),
                          "nowhere.net.xml")


def test_malformed_net_file_is_named(broken_files):
    net = broken_files / "garbage.net.xml"
    assert_one_line_error(ondaverde("simulate", "--net", str(net), "--routes", str(net), "--end", "60"),
                          "garbage.net.xml")


@pytest.mark.sumo
def test_malformed_route_file_is_named(broken_files):
    routes = broken_files / "garbage.rou.xml"
    net = ROOT / "networks" / "single" / "single.net.xml"
    assert_one_line_error(ondaverde("simulate", "--net", str(net), "--routes", str(routes), "--end", "60"),
                          "garbage.rou.xml")


def test_missing_route_file_is_named(tmp_path):
    net = ROOT / "networks" / "single" / "single.net.xml"
    assert_one_line_error(ondaverde("simulate", "--net", str(net), "--routes", str(tmp_path / "gone.rou.xml"),
                                    "--end", "60"), "gone.rou.xml")


def test_net_without_traffic_lights_is_refused(broken_files):
    net = broken_files / "plain.net.xml"
    assert_one_line_error(ondaverde("simulate", "--net", str(net), "--routes", str(net), "--end", "60"),
                          "plain.net.xml", "traffic light")


def test_missing_sumocfg_is_named(tmp_path):
    assert_one_line_error(ondaverde("simulate", "--network", str(tmp_path / "city.sumocfg")), "city.sumocfg")


def test_bad_seed_list_exits_2():
    proc = ondaverde("evaluate", "--seeds", "one,two")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("begin, end, needle", [("0", "inf", "end inf"), ("0", "nan", "end nan"),
                                               ("-100", "900", "begin -100 s is negative")])
def test_a_horizon_that_is_not_a_finite_span_from_zero_on_is_named(begin, end, needle):
    net = ROOT / "networks" / "single" / "single.net.xml"
    routes = ROOT / "networks" / "single" / "base.rou.xml"
    for command in (["simulate"], ["evaluate", "--controllers", "fixed", "--seeds", "0"]):
        assert_one_line_error(ondaverde(*command, "--net", str(net), "--routes", str(routes), "--begin", begin,
                                        "--end", end), needle)


def test_an_out_of_range_seed_is_refused_before_sumo():
    assert_one_line_error(ondaverde("simulate", "--network", "single", "--end", "60", "--seed", "99999999999"),
                          "--seed", "99999999999", "0 to 2147483647")
    assert_one_line_error(ondaverde("evaluate", "--jobs", "0"), "--jobs", "1 or more")


@pytest.mark.sumo
def test_sumo_refusing_a_run_gives_its_reason_in_our_one_line(capfd):
    """SUMO's own error lines are not printed before ours: ours carries their text (a seed outside SUMO's integer
    range given through the API, which only SUMO checks; libsumo's exception says only "Could not parse
    commandline options")."""
    from controller.errors import InputError
    from envs.runner import run_episode
    from networks.catalog import load_network

    with pytest.raises(InputError) as refused:
        run_episode(load_network("single").with_horizon(None, 60), "base", "fixed", 99999999999)
    message = str(refused.value)
    assert "SUMO refused the run" in message and "'99999999999' is not a valid integer" in message
    assert "Error:" not in capfd.readouterr().err


def test_help_explains_every_command():
    for command in ("simulate", "evaluate", "bench"):
        proc = ondaverde(command, "--help")
        assert proc.returncode == 0 and "usage:" in proc.stdout


@pytest.mark.sumo
def test_simulate_json_record_has_the_documented_keys():
    proc = ondaverde("simulate", "--network", "single", "--end", "300", "--controller", "maxpressure", "--json")
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)  # stdout holds the JSON and nothing else
    assert RECORD_KEYS <= record.keys()
    assert record["controller"] == "maxpressure" and record["network"] == "single"
    assert record["scheduled"] > 0 and record["violations"] == 0


@pytest.mark.sumo
def test_evaluate_json_lists_one_record_per_run(tmp_path):
    plot = tmp_path / "delay.png"
    proc = ondaverde("evaluate", "--network", "single", "--end", "300", "--controllers", "fixed,sumo-actuated",
                     "--seeds", "0,1", "--json", "--plot", str(plot))
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    assert len(records) == 4
    assert {(r["controller"], r["seed"]) for r in records} == {("fixed", 0), ("fixed", 1), ("sumo-actuated", 0),
                                                               ("sumo-actuated", 1)}
    assert all(RECORD_KEYS <= r.keys() for r in records)
    assert plot.stat().st_size > 1000


@pytest.mark.sumo
def test_bring_your_own_sumocfg_runs_without_python(tmp_path):
    net = ROOT / "networks" / "single"
    cfg = tmp_path / "mine.sumocfg"
    cfg.write_text(f"""<configuration><input><net-file value="{net / 'single.net.xml'}"/>
        <route-files value="{net / 'base.rou.xml'}"/></input><time><begin value="0"/><end value="240"/></time>
        </configuration>""")
    proc = ondaverde("simulate", "--network", str(cfg), "--controller", "actuated", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["scheduled"] > 0


@pytest.mark.sumo
def test_intersection_override_file_changes_the_timing(tmp_path):
    override = tmp_path / "timing.yaml"
    override.write_text("C:\n  phases:\n    1: {min_green_s: 20, max_green_s: 25}\n")
    base = json.loads(ondaverde("simulate", "--network", "single", "--end", "600", "--controller", "actuated",
                                "--json").stdout)
    proc = ondaverde("simulate", "--network", "single", "--end", "600", "--controller", "actuated",
                     "--intersections", str(override), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["delay"] != base["delay"]


def test_bad_override_key_is_named(tmp_path):
    override = tmp_path / "timing.yaml"
    override.write_text("C:\n  phasez: {}\n")
    assert_one_line_error(ondaverde("simulate", "--network", "single", "--end", "60", "--intersections",
                                    str(override)), "timing.yaml", "phasez")


def test_malformed_sumocfg_is_named(tmp_path):
    cfg = tmp_path / "broken.sumocfg"
    cfg.write_text("<configuration><input><net-file value=")
    assert_one_line_error(ondaverde("simulate", "--network", str(cfg)), "broken.sumocfg")


def test_malformed_network_yaml_is_named(tmp_path):
    (tmp_path / "network.yaml").write_text("name: [unclosed\n")
    assert_one_line_error(ondaverde("evaluate", "--network", str(tmp_path)), "network.yaml")


def test_networks_list_shows_the_bundled_networks():
    proc = ondaverde("networks", "list")
    assert proc.returncode == 0, proc.stderr
    names = {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}
    assert {"grid", "single"} <= names


@pytest.mark.sumo
def test_import_osm_then_simulate_from_the_command_line(tmp_path):
    from tests.test_osm_import import write_osm

    osm = write_osm(tmp_path / "barrio.osm")
    proc = ondaverde("networks", "import-osm", str(osm), "--name", "barrio", "--out", str(tmp_path / "nets"),
                     "--end", "300")
    assert proc.returncode == 0, proc.stderr
    run = ondaverde("simulate", "--network", str(tmp_path / "nets" / "barrio"), "--controller", "maxpressure",
                    "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["scheduled"] > 0


def test_import_osm_refuses_a_file_that_is_not_osm(tmp_path):
    bogus = tmp_path / "notes.osm"
    bogus.write_text("hello")
    assert_one_line_error(ondaverde("networks", "import-osm", str(bogus), "--name", "x", "--out", str(tmp_path)),
                          "notes.osm")


@pytest.mark.sumo
def test_calibrate_from_counts_on_the_command_line(tmp_path):
    counts = tmp_path / "counts.csv"
    counts.write_text("begin_s,end_s,edge,count\n0,3600,A0B0,400\n0,3600,B0C0,350\n")
    proc = ondaverde("networks", "calibrate", "grid", "--counts", str(counts), "--out", str(tmp_path / "cal"))
    assert proc.returncode == 0, proc.stderr
    assert "A0B0" in proc.stdout and (tmp_path / "cal" / "calibrated.rou.xml").is_file()


def test_calibrate_refuses_a_bad_counts_file(tmp_path):
    counts = tmp_path / "counts.csv"
    counts.write_text("when,where,how many\n1,2,3\n")
    assert_one_line_error(ondaverde("networks", "calibrate", "grid", "--counts", str(counts), "--out",
                                    str(tmp_path / "cal")), "counts.csv")

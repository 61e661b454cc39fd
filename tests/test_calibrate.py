"""`networks.calibrate`: routeSampler calibration of the bundled grid to small invented edge and turn counts,
GEH per counted location, and one-line errors for bad count files."""

from __future__ import annotations

import math
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from controller.errors import InputError
from networks.calibrate import (GEH_OK, calibrate, format_geh, geh, geh_rows, model_counts, read_counts)
from networks.catalog import load_network, network_from_files

# Invented hourly counts on the grid, far from the bundled demand (base.rou.xml gives about
# left0A0 250, A0B0 223, right2C2 252, C1C0 194, top1B2 123, B1C1 242 veh/h), so the bundled routes fail GEH.
EDGE_COUNTS = """begin_s,end_s,edge,count
# invented counts for the test, not field data
0,3600,left0A0,600
0,3600,A0B0,450
0,3600,B1B2,150
0,3600,right2C2,120
0,3600,C1C0,300
0,3600,top1B2,250
0,3600,B1C1,500
"""

# Turn counts in two half-hour intervals (vehicles per 30 min).
TURN_COUNTS = """begin_s,end_s,from_edge,to_edge,count
0,1800,left0A0,A0B0,200
0,1800,left0A0,A0A1,60
0,1800,right2C2,C2B2,30
0,1800,B1B2,B2top1,90
0,1800,top1B2,B2A2,70
1800,3600,left0A0,A0B0,260
1800,3600,left0A0,A0A1,40
1800,3600,right2C2,C2B2,25
1800,3600,B1B2,B2top1,110
1800,3600,top1B2,B2A2,50
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------------ GEH

def test_geh_hand_computed():
    assert geh(100, 100) == 0.0
    assert geh(0, 0) == 0.0
    assert geh(150, 100) == pytest.approx(math.sqrt(20))        # 2*50^2/250 = 20
    assert geh(0, 50) == pytest.approx(10.0)                    # 2*50^2/50 = 100
    assert geh(600, 250) == pytest.approx(16.9775, abs=1e-4)    # 2*350^2/850 = 288.235...
    assert geh(1000, 900) == pytest.approx(math.sqrt(20000 / 1900))  # 3.244: a 10 % miss at 900 veh/h passes
    assert geh(100, 150) == geh(150, 100)                       # symmetric
    with pytest.raises(ValueError):
        geh(-1, 10)


def test_geh_doctests():
    import doctest

    import networks.calibrate as mod

    failed, attempted = doctest.testmod(mod)
    assert attempted >= 4 and failed == 0


# ------------------------------------------------------------------------------------------ reading counts

def test_read_edge_and_turn_counts(tmp_path):
    edges = read_counts(write(tmp_path / "edges.csv", EDGE_COUNTS))
    assert edges.kind == "edge" and len(edges.rows) == 7
    assert edges.rows[0].key.location == "left0A0" and edges.rows[0].count == 600 and edges.rows[0].line == 3
    assert edges.rows[0].count_vph == 600
    turns = read_counts(write(tmp_path / "turns.csv", TURN_COUNTS))
    assert turns.kind == "turn" and len(turns.rows) == 10
    assert turns.rows[0].key.location == "left0A0>A0B0" and turns.rows[0].count_vph == 400  # 200 in 30 min
    assert (turns.begin_s, turns.end_s) == (0, 3600)


@pytest.mark.parametrize("text, expected", [
    ("begin,end,edge,count\n0,3600,A0B0,10\n", "line 1: header"),
    ("begin_s,end_s,edge,count\n0,3600,A0B0,-5\n", "line 2: count -5 must not be negative"),
    ("begin_s,end_s,edge,count\n0,3600,A0B0,10\n0,3600,B0C0,many\n", "line 3: count 'many' is not a number"),
    ("begin_s,end_s,edge,count\n3600,3600,A0B0,10\n", "line 2: begin_s 3600 must be before end_s 3600"),
    ("begin_s,end_s,edge,count\n0,3600,A0B0\n", "line 2: 3 columns, expected 4"),
    ("begin_s,end_s,from_edge,to_edge,count\n0,3600,A0B0,,10\n", "line 2: from_edge and to_edge"),
    ("begin_s,end_s,edge,count\n0,3600,A0B0,10\n0,3600,A0B0,12\n", "line 3: A0B0 [0,3600) is counted twice"),
    ("begin_s,end_s,edge,count\n", "no count rows"),
    ("", "empty"),
])
def test_bad_count_files_name_file_and_line(tmp_path, text, expected):
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(InputError) as err:
        read_counts(path)
    message = str(err.value)
    assert str(path) in message and expected in message and "\n" not in message


def test_missing_count_file(tmp_path):
    with pytest.raises(InputError, match=r"nothere\.csv: count file not found"):
        read_counts(tmp_path / "nothere.csv")


def test_unknown_edge_and_turn_named(tmp_path):
    grid = load_network("grid")
    path = write(tmp_path / "unknown.csv", "begin_s,end_s,edge,count\n0,3600,A0B0,10\n0,3600,Z9Q9,5\n"
                                           "0,3600,nowhere,3\n")
    with pytest.raises(InputError) as err:
        calibrate(grid, path, tmp_path / "out")
    message = str(err.value)
    assert str(path) in message and "'Z9Q9' (line 3)" in message and "'nowhere' (line 4)" in message
    assert "'grid'" in message
    turn = write(tmp_path / "noturn.csv", "begin_s,end_s,from_edge,to_edge,count\n0,3600,left0A0,C0C1,10\n")
    with pytest.raises(InputError, match=r"noturn\.csv: line 2: no connection from 'left0A0' to 'C0C1'"):
        calibrate(grid, turn, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # checked before anything is written


# ------------------------------------------------------------------------------------------- calibration

def _assert_calibrated(result, baseline_rows):
    print()
    print(format_geh(result))
    # the bundled demand does not match these counts: without routeSampler the test would fail
    assert max(r.geh for r in baseline_rows) > 2 * GEH_OK
    assert sum(r.geh < GEH_OK for r in baseline_rows) < len(baseline_rows) / 2
    for row in result.rows:
        assert row.geh < GEH_OK, f"{row.key}: count {row.count_vph:.0f} veh/h, model {row.model_vph:.0f} veh/h"
    assert result.max_geh < GEH_OK and result.share_below_5 == 1.0
    # the GEH is recomputed from the file on disk, not taken from routeSampler's own report
    assert geh_rows([result.route_file], result.counts) == result.rows


@pytest.mark.sumo
def test_calibrate_edge_counts_on_grid(tmp_path):
    grid = load_network("grid")
    counts_csv = write(tmp_path / "edges.csv", EDGE_COUNTS)
    baseline = geh_rows(grid.scenario().route_files, read_counts(counts_csv))
    result = calibrate(grid, counts_csv, tmp_path / "out", seed=0)
    assert result.route_file == (tmp_path / "out" / "calibrated.rou.xml").resolve()
    assert result.candidate_source == "scenario"
    _assert_calibrated(result, baseline)
    assert result.junctions["left0A0"] == "A0" and result.junctions["B1C1"] == "C1"
    root = ET.parse(result.route_file).getroot()
    vehicles = root.findall("vehicle")
    assert len(vehicles) == result.vehicles > 1000
    departs = [float(v.get("depart")) for v in vehicles]
    assert departs == sorted(departs) and 0 <= departs[0] and departs[-1] < 3600
    # the grid's car/truck mix is kept as a type distribution
    dist = root.find("vTypeDistribution")
    assert dist is not None and {t.get("id") for t in dist.findall("vType")} == {"car", "truck"}
    assert all(v.get("type") == dist.get("id") for v in vehicles)
    # deterministic: same seed, same file
    again = calibrate(grid, counts_csv, tmp_path / "again", seed=0)
    assert again.route_file.read_bytes() == result.route_file.read_bytes()
    # SUMO loads the result (a short run)
    from networks.sumo_home import sumo_binary

    proc = subprocess.run([sumo_binary("sumo"), "-n", str(grid.net_file), "-r", str(result.route_file),
                           "--end", "300", "--no-step-log", "true", "--error-log", str(tmp_path / "err.txt")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.sumo
def test_calibrate_turn_counts_on_grid(tmp_path):
    grid = load_network("grid")
    counts_csv = write(tmp_path / "turns.csv", TURN_COUNTS)
    counts = read_counts(counts_csv)
    baseline = geh_rows(grid.scenario().route_files, counts)
    result = calibrate(grid, counts_csv, tmp_path / "out", seed=3, scenario_name="turns_am")
    assert result.route_file.name == "turns_am.rou.xml" and result.counts.kind == "turn"
    _assert_calibrated(result, baseline)
    # per interval: the model counts follow each half hour's counts
    model = model_counts([result.route_file], counts)
    first = [r for r in counts.rows if r.key.begin_s == 0]
    assert all(abs(model[r.key] - r.count) <= 0.1 * r.count + 3 for r in first)


@pytest.mark.sumo
def test_calibrate_generates_candidates_without_scenario_routes(tmp_path):
    grid = load_network("grid")
    bare = network_from_files(grid.net_file, [], name="bare")
    counts_csv = write(tmp_path / "edges.csv", EDGE_COUNTS)
    result = calibrate(bare, counts_csv, tmp_path / "out", seed=1)
    print()
    print(format_geh(result))
    assert result.candidate_source == "generated"
    assert (tmp_path / "out" / "calibrated.candidates.rou.xml").is_file()
    assert not list((tmp_path / "out").glob(".*work"))  # the work folder is cleaned up
    assert result.max_geh < GEH_OK


def test_optimize_without_scipy_is_an_input_error(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "scipy" else real(name, *a))
    counts_csv = write(tmp_path / "edges.csv", EDGE_COUNTS)
    with pytest.raises(InputError, match=r"edges\.csv: routeSampler --optimize needs scipy"):
        calibrate(load_network("grid"), counts_csv, tmp_path / "out", optimize=True)

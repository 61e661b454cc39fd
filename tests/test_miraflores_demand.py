"""networks/miraflores demand: PMU-derived counts, routeSampler calibration (GEH per intersection), vehicle mix,
scaled scenarios and a short SUMO run of am-peak (bus stops, pedestrians, emergency vehicles)."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from networks.build_bundled import sumo_binary
from networks.build_miraflores import (DEMAND_CAP, EMERGENCY_PER_HOUR, NET, PEAK_PROFILES, PMU_VOLUMES, SCALED,
                                       approach_counts, counts_csv_text)
from networks.calibrate import GEH_OK, geh, geh_rows, read_counts
from networks.catalog import load_network

FOLDER = Path(__file__).resolve().parents[1] / "networks" / "miraflores"
ALL = ("smoke", *PEAK_PROFILES, *SCALED)


def test_catalog_loads_every_scenario():
    spec = load_network("miraflores")
    assert set(ALL) <= set(spec.scenarios)
    for name in ALL:
        sc = spec.scenario(name)
        assert all(Path(f).is_file() for f in sc.route_files) and sc.end_s > sc.begin_s
    assert (spec.scenario("am-peak").begin_s, spec.scenario("am-peak").end_s) == (25200, 32400)
    assert (spec.scenario("pm-peak").begin_s, spec.scenario("pm-peak").end_s) == (64800, 75600)


@pytest.mark.parametrize("name", list(PEAK_PROFILES))
def test_counts_file_is_derived_from_the_pmu_volumes(name):
    assert (FOLDER / f"{name}.counts.csv").read_text(encoding="utf-8") == counts_csv_text(name, FOLDER / NET)
    counts = read_counts(FOLDER / f"{name}.counts.csv")
    node_of = {e: n for n, rows in approach_counts(FOLDER / NET).items() for e, _ in rows}
    begin, factors = PEAK_PROFILES[name]
    for h, f in enumerate(factors):
        for node, (vph, _, _) in PMU_VOLUMES.items():
            total = sum(r.count for r in counts.rows if node_of[r.key.edge] == node and r.key.begin_s == begin + 3600 * h)
            assert abs(total - DEMAND_CAP * vph * f) <= len(approach_counts(FOLDER / NET)[node])  # rounding only


def _per_intersection(name: str) -> list[tuple[str, float, float, float, float]]:
    counts = read_counts(FOLDER / f"{name}.counts.csv")
    node_of = {e: n for n, rows in approach_counts(FOLDER / NET).items() for e, _ in rows}
    agg: dict[tuple[str, float], list[float]] = {}
    for r in geh_rows([FOLDER / f"{name}.rou.xml"], counts):
        a = agg.setdefault((node_of[r.key.edge], r.key.begin_s), [0.0, 0.0])
        a[0] += r.count_vph
        a[1] += r.model_vph
    return [(node, begin, c, m, geh(m, c)) for (node, begin), (c, m) in agg.items()]


@pytest.mark.parametrize("name", list(PEAK_PROFILES))
def test_geh_per_counted_intersection(name):
    rows = _per_intersection(name)
    print(f"\n{name}: GEH per counted intersection (capped counts = {DEMAND_CAP:g} x PMU; "
          "'vs PMU' = against the full documented volume)")
    print(f"{'node':5} {'hour':>6} {'count':>7} {'model':>7} {'GEH':>6} {'PMU':>7} {'GEH vs PMU':>10}")
    for node, begin, c, m, g in rows:
        full = c / DEMAND_CAP
        print(f"{node:5} {int(begin // 3600):>4} h {c:7.0f} {m:7.0f} {g:6.2f} {full:7.0f} {geh(m, full):10.2f}")
    assert {n for n, *_ in rows} == set(PMU_VOLUMES)
    bad = [(n, b, round(g, 2)) for n, b, _, _, g in rows if g >= GEH_OK]
    assert not bad, f"GEH >= {GEH_OK:g} at {bad}"
    edge_rows = geh_rows([FOLDER / f"{name}.rou.xml"], read_counts(FOLDER / f"{name}.counts.csv"))
    assert sum(r.geh < GEH_OK for r in edge_rows) / len(edge_rows) >= 0.95


def _classes(path: Path) -> tuple[dict[str, str], list[ET.Element]]:
    root = ET.parse(path).getroot()
    types = {t.get("id"): t.get("vClass", "passenger") for t in root.iter("vType")}
    return types, list(root)


def _per_hour(period: str) -> float:
    """Vehicles per hour of a flow's ``period``: a fixed headway (s) or ``exp(rate per s)``."""
    if period.startswith("exp("):
        return 3600 * float(period[4:-1])
    return 3600 / float(period)


@pytest.mark.parametrize("name", [*PEAK_PROFILES, *SCALED])
def test_vehicle_mix_and_extras(name):
    types, _ = _classes(FOLDER / f"{name}.rou.xml")
    assert {"passenger", "taxi", "motorcycle"} <= set(types.values())
    types, elems = _classes(FOLDER / f"{name}.extra.rou.xml")
    flows = [e for e in elems if e.tag == "flow"]
    by_class: dict[str, float] = {}
    for f in flows:
        by_class[types[f.get("type")]] = by_class.get(types[f.get("type")], 0) + _per_hour(f.get("period"))
    assert by_class.get("bus", 0) > 0 and by_class.get("bicycle", 0) > 0
    assert by_class["emergency"] == pytest.approx(EMERGENCY_PER_HOUR, rel=0.05)
    # emergency calls arrive at random (Poisson headways from SUMO's seed), not three at the same second
    assert all(f.get("period").startswith("exp(") for f in flows if types[f.get("type")] == "emergency")
    buses = [f for f in flows if types[f.get("type")] == "bus"]
    assert all(f.findall("stop") for f in buses)
    kerb = {}  # edge -> its right-most vehicle lane (lane 0 is the sidewalk where there is one)
    for e in ET.parse(FOLDER / NET).getroot().iter("edge"):
        lanes = [ln.get("id") for ln in e.iter("lane") if ln.get("allow") != "pedestrian"]
        if lanes:
            kerb[e.get("id")] = lanes[0]
    assert all(s.get("lane") == kerb[s.get("lane").rsplit("_", 1)[0]] for f in buses for s in f.findall("stop"))
    assert any(e.tag == "personFlow" for e in elems)


def test_scaled_scenarios_keep_their_share():
    n_peak = (FOLDER / "am-peak.rou.xml").read_text(encoding="utf-8").count("<vehicle ")
    for name, (_, _, scale) in SCALED.items():
        n = (FOLDER / f"{name}.rou.xml").read_text(encoding="utf-8").count("<vehicle ")
        assert abs(n / n_peak - scale) < 0.02, name


def test_am_peak_runs_in_sumo_with_stops_pedestrians_and_emergency(tmp_path):
    """15 simulated minutes of am-peak in plain SUMO (the net's own programs)."""
    sc = load_network("miraflores").scenario("am-peak")
    stats, stops, trips = tmp_path / "stats.xml", tmp_path / "stops.xml", tmp_path / "trips.xml"
    subprocess.run([sumo_binary("sumo"), "-n", str(FOLDER / NET), "-r", ",".join(map(str, sc.route_files)),
                    "-b", f"{sc.begin_s:g}", "-e", f"{sc.begin_s + 900:g}", "--no-step-log", "--no-warnings",
                    "--statistic-output", str(stats), "--stop-output", str(stops), "--tripinfo-output", str(trips),
                    "--duration-log.disable", "--seed", "1"], check=True, capture_output=True, cwd=tmp_path)
    root = ET.parse(stats).getroot()
    veh = root.find("vehicles").attrib
    assert int(veh["inserted"]) > 600
    assert int(veh.get("waiting", 0)) < 0.1 * int(veh["loaded"])  # no gridlock at the insertion points
    assert len(ET.parse(stops).getroot().findall("stopinfo")) > 10
    infos = ET.parse(trips).getroot()
    assert infos.findall("personinfo")
    assert any(t.get("vType") == "emergency" for t in infos.iter("tripinfo"))


def test_the_committed_extras_are_the_builders_output():
    """The bundled extras (buses, bicycles, Poisson ambulances, ...) are what the deterministic builder writes."""
    from networks.build_miraflores import extras_xml

    begin, factors = PEAK_PROFILES["am-peak"]
    text = extras_xml(FOLDER / NET, begin, len(factors), 1.0, "am-peak")
    assert text == (FOLDER / "am-peak.extra.rou.xml").read_text(encoding="utf-8")

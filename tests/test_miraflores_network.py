"""networks/miraflores: provenance, signals, one-way pairs, detectors, derivation and a byte-identical rebuild."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from networks.build_bundled import sumo_binary
from networks.build_miraflores import J3_DOCUMENTED_APPROACH, J3_GREEN_S, J3_RED_S, OVALO_TL, build_net
from networks.catalog import load_network
from networks.derive import derive_intersections, intersection_to_dict, load_intersection_file

FOLDER = Path(__file__).resolve().parents[1] / "networks" / "miraflores"
NET = FOLDER / "miraflores.net.xml"


@pytest.fixture(scope="module")
def prov() -> dict:
    return yaml.safe_load((FOLDER / "provenance.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def net() -> ET.Element:
    return ET.parse(NET).getroot()


@pytest.fixture(scope="module")
def inters():
    return derive_intersections(NET)


def _plain_edges(net: ET.Element) -> dict[str, ET.Element]:
    return {e.get("id"): e for e in net.iter("edge") if e.get("function") is None}


def test_provenance_covers_every_node_with_source_and_error(prov):
    nodes = {n.get("id"): n for n in ET.parse(FOLDER / "miraflores.nod.xml").getroot().iter("node")}
    assert set(nodes) == {n["id"] for n in prov["nodes"]}
    for n in prov["nodes"]:
        assert n["source"].strip() and n["name"].strip(), n["id"]
        assert isinstance(n["error_m"], (int, float)) and 0 < n["error_m"] <= 300, n["id"]
        src = nodes[n["id"]]
        # x = lon, y = lat, as written in the provenance file
        assert float(src.get("x")) == pytest.approx(n["lon"], abs=1e-6) and float(src.get("y")) == pytest.approx(n["lat"], abs=1e-6)
        assert -77.045 < n["lon"] < -77.015 and -12.135 < n["lat"] < -12.100, n["id"]
        assert (src.get("type") == "traffic_light") == bool(n["signalised"]), n["id"]


def test_every_signalised_node_is_a_traffic_light_in_the_net(prov, net):
    junctions = {j.get("id"): j for j in net.iter("junction")}
    programs = {t.get("id") for t in net.iter("tlLogic")}
    tl_of_lane = {}
    for c in net.iter("connection"):
        if c.get("tl"):
            tl_of_lane[c.get("from")] = c.get("tl")
    signalised = [n for n in prov["nodes"] if n["signalised"]]
    assert len({n.get("tl", n["id"]) for n in signalised}) >= 15
    for n in signalised:
        tl = n.get("tl", n["id"])
        assert junctions[n["id"]].get("type") == "traffic_light", n["id"]
        assert tl in programs, n["id"]
        incoming = {lane.rsplit("_", 1)[0] for lane in junctions[n["id"]].get("incLanes").split()}
        assert any(tl_of_lane.get(e) == tl for e in incoming), f"{n['id']}: no approach controlled by {tl}"
    for n in prov["nodes"]:
        if not n["signalised"]:
            assert junctions[n["id"]].get("type") != "traffic_light", n["id"]
    # the Ovalo is one signalised cluster
    assert {n["id"] for n in signalised if n.get("tl") == "O"} == {"O_N", "O_W", "O_SE", "O_E"}


def test_streets_match_provenance_lanes_direction_speed(prov, net):
    edges = _plain_edges(net)
    speeds = {"avenue": 50, "street": 30, "expressway": 80}
    covered = set()
    for s in prov["streets"]:
        if s["kind"] in speeds:
            assert s["speed_kmh"] == speeds[s["kind"]], s["name"]
        assert s["source"].strip(), s["name"]
        lanes = s["lanes"] if isinstance(s["lanes"], list) else [s["lanes"], None]
        for eid in s["edges"]:
            a, b = edges[eid].get("from"), edges[eid].get("to")
            back = f"{b}_{a}"
            covered.update({eid, back})
            vehicle_lanes = [ln for ln in edges[eid].iter("lane") if ln.get("allow") != "pedestrian"]
            assert len(vehicle_lanes) == lanes[0], eid
            assert all(float(ln.get("speed")) == pytest.approx(s["speed_kmh"] / 3.6, abs=0.01) for ln in vehicle_lanes), eid
            if s["direction"].startswith("one-way"):
                assert back not in edges, f"{s['name']} is one-way but {back} exists"
            else:
                assert back in edges, f"{s['name']} is two-way but {back} is missing"
    assert set(edges) <= covered


def test_larco_diagonal_one_way_pair(net):
    edges = _plain_edges(net)
    junctions = {j.get("id"): (float(j.get("x")), float(j.get("y"))) for j in net.iter("junction")}
    larco_north = ["L4_L3", "L3_L2", "L2_O_SE"]         # cuadras 1-8: northbound only
    diagonal = ["O_SW_D1", "D1_D2", "D2_D3", "D3_DIAG_S"]  # southbound only
    for eid in larco_north:
        a, b = edges[eid].get("from"), edges[eid].get("to")
        assert junctions[b][1] > junctions[a][1], f"{eid} does not run north"
        assert f"{b}_{a}" not in edges
    for eid in diagonal:
        a, b = edges[eid].get("from"), edges[eid].get("to")
        assert junctions[b][1] < junctions[a][1], f"{eid} does not run south"
        assert f"{b}_{a}" not in edges
    assert "L4_LARCOMAR" in edges and "LARCOMAR_L4" in edges  # two-way south of 28 de Julio


def test_every_approach_has_its_detectors(net):
    add = ET.parse(FOLDER / "detectors.add.xml").getroot()
    loops = {d.get("id"): d.get("lane") for d in add.iter("inductionLoop")}
    zones = {d.get("id"): d.get("lane") for d in add.iter("laneAreaDetector")}
    ped = {e.get("id") for e in net.iter("edge") if e.get("function") in ("crossing", "walkingarea")}
    approaches = {}
    for c in net.iter("connection"):
        if c.get("tl") and c.get("from") not in ped and not c.get("from").startswith(":"):
            approaches.setdefault((c.get("tl"), c.get("from")), set()).add(f"{c.get('from')}_{c.get('fromLane')}")
    assert len(approaches) >= 60
    for (tl, edge), lanes in approaches.items():
        for lane in lanes:
            assert loops.get(f"{tl}__sb__{lane}") == lane, f"{tl}: no stop-bar loop on {lane}"
            assert loops.get(f"{tl}__adv__{lane}") == lane, f"{tl}: no advance loop on {lane}"
        assert any(zones.get(f"{tl}__rad__{lane}") == lane for lane in lanes), f"{tl}: no radar zone on {edge}"


def test_net_derives_and_matches_the_checked_in_intersection_file(inters):
    assert len(inters) >= 15
    assert any(link.kind == "pedestrian" for i in inters for link in i.links)  # Parque Kennedy crosswalks
    stored = load_intersection_file(FOLDER / "intersections.derived.json")
    assert [intersection_to_dict(i) for i in stored] == [intersection_to_dict(i) for i in inters]


def test_reducto_28_de_julio_has_the_documented_split(net):
    logic = next(t for t in net.iter("tlLogic") if t.get("id") == "J3")
    mine = [int(c.get("linkIndex")) for c in net.iter("connection")
            if c.get("tl") == "J3" and c.get("from") == J3_DOCUMENTED_APPROACH]
    assert mine
    phases = [(float(p.get("duration")), p.get("state")) for p in logic.iter("phase")]
    green = sum(d for d, st in phases if all(st[i] in "Gg" for i in mine))
    red = sum(d for d, st in phases if all(st[i] == "r" for i in mine))
    assert (green, red) == (J3_GREEN_S, J3_RED_S)
    for t in net.iter("tlLogic"):  # every timing is labelled
        for p in t.iter("phase"):
            assert "PLACEHOLDER" in p.get("name", "") or "DOCUMENTED" in p.get("name", ""), (t.get("id"), p.get("state"))


def test_ovalo_ring_stops_only_at_the_entry_being_served(inters):
    """The Óvalo cluster keeps its ring moving: each green phase serves one entry and stops the circulating
    flow only at that entry's node, so no controller can hold a ring segment red while it skips phases."""
    ovalo = next(i for i in inters if i.id == OVALO_TL)
    ring = {k for k, lk in enumerate(ovalo.links) if lk.from_lane.startswith(OVALO_TL + "_")}
    entries = {k for k, lk in enumerate(ovalo.links) if lk.kind == "vehicle"} - ring
    assert ring and entries
    assert len(ovalo.phases) >= 4
    for link in ring:
        assert sum(link not in p.greens for p in ovalo.phases) <= 1, ovalo.links[link]
    for p in ovalo.phases:
        served = p.greens & entries
        assert served, p
        # the ring links stopped in this phase are those arriving where the served entry joins the ring
        stopped = ring - p.greens
        assert len({ovalo.links[k].from_lane.rsplit("_", 1)[0] for k in stopped}) == 1, p


def test_detector_file_loads_in_sumo(tmp_path):
    proc = subprocess.run([sumo_binary("sumo"), "-n", str(NET), "-a", str(FOLDER / "detectors.add.xml"),
                           "--begin", "0", "--end", "2", "--no-step-log", "--duration-log.disable"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_catalog_loads_the_smoke_scenario():
    spec = load_network("miraflores")
    sc = spec.scenario("smoke")
    assert sc.name == "smoke" and "UNCALIBRATED" in sc.description and sc.end_s == 900
    assert spec.scenario().name == "am-peak"  # the default


def test_rebuild_is_byte_identical(tmp_path):
    net = build_net(tmp_path)
    assert net.read_bytes() == NET.read_bytes()
    assert (tmp_path / "miraflores.tll.xml").read_bytes() == (FOLDER / "miraflores.tll.xml").read_bytes()

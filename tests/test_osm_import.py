"""`networks.osm_import`: a synthetic Miraflores-like OSM extract (written here, never committed) becomes a
controllable network folder with Lima speeds, joined signals, derived intersections and random demand."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from controller.errors import InputError
from networks.osm_import import check_osm_file, import_osm, lima_typemap_xml, list_networks

KMH = 1 / 3.6

# node id -> (lat, lon), around the Óvalo de Miraflores (-12.12, -77.03)
NODES = {
    1: (-12.1200, -77.0340), 2: (-12.1200, -77.0330), 3: (-12.1200, -77.0300), 4: (-12.1200, -77.0270),
    5: (-12.1200, -77.0240), 20: (-12.1200, -77.0315),
    6: (-12.1170, -77.0300), 7: (-12.1220, -77.0300), 8: (-12.1250, -77.0300),
    9: (-12.1220, -77.0340), 10: (-12.1220, -77.0330), 11: (-12.1220, -77.0270),
    12: (-12.1240, -77.0220), 13: (-12.1280, -77.0300),
    # approach-side signal nodes of the second crossing (OSM style: on the stop lines, not at the centre)
    30: (-12.1250, -77.03015), 31: (-12.1250, -77.02985), 32: (-12.12485, -77.0300), 35: (-12.12515, -77.0300),
    33: (-12.1250, -77.0270), 34: (-12.1250, -77.0330),
}
#: 3: the avenue crossing (signal on the crossing node); 20: mid-block pedestrian signal (discarded);
#: 30/31/32/35: signals on the approaches of crossing 8 (joined into one light there)
SIGNALS = {3, 20, 30, 31, 32, 35}
WAYS = [
    # two crossing avenues without maxspeed (lanes=4: 2 per direction)
    (100, [1, 2, 20, 3, 4, 5], {"highway": "primary", "lanes": "4", "name": "Avenida Uno"}),
    (101, [6, 3, 7, 32, 8, 35, 13], {"highway": "primary", "lanes": "4", "name": "Avenida Dos"}),
    (102, [9, 10, 7, 11], {"highway": "residential", "name": "Calle Tres"}),
    (103, [10, 2], {"highway": "residential", "oneway": "yes", "name": "Calle Cuatro"}),
    (104, [11, 4], {"highway": "tertiary", "maxspeed": "40", "name": "Calle Cinco"}),
    (105, [5, 12], {"highway": "trunk", "oneway": "yes", "name": "Via Expresa"}),
    (106, [33, 31, 8, 30, 34], {"highway": "secondary", "maxspeed": "none", "name": "Calle Seis"}),
]


def write_osm(path: Path) -> Path:
    out = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="ondaverde test">',
           '  <bounds minlat="-12.1290" minlon="-77.0350" maxlat="-12.1160" maxlon="-77.0210"/>']
    for nid, (lat, lon) in NODES.items():
        tag = '<tag k="highway" v="traffic_signals"/>' if nid in SIGNALS else ""
        out.append(f'  <node id="{nid}" version="1" lat="{lat}" lon="{lon}">{tag}</node>')
    for wid, refs, tags in WAYS:
        out.append(f'  <way id="{wid}" version="1">' + "".join(f'<nd ref="{r}"/>' for r in refs)
                   + "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items()) + "</way>")
    out.append("</osm>")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    base = tmp_path_factory.mktemp("osm")
    osm = write_osm(base / "tiny.osm")
    out = base / "net"
    cwd = base / "cwd"
    cwd.mkdir()
    old = Path.cwd()
    os.chdir(cwd)  # anything written to the working directory would show up here
    try:
        folder = import_osm(osm, "tiny", out, seed=1, end_s=300.0)
    finally:
        os.chdir(old)
    return base, osm, folder, cwd


def _edges(net: Path) -> dict[str, ET.Element]:
    return {e.get("id"): e for e in ET.parse(net).getroot().iter("edge") if e.get("function") is None}


def _speeds_by_way(net: Path) -> dict[str, set[float]]:
    speeds: dict[str, set[float]] = {}
    for eid, edge in _edges(net).items():
        way = eid.lstrip("-").split("#")[0]
        speeds.setdefault(way, set()).update(float(lane.get("speed")) for lane in edge.iter("lane"))
    return speeds


@pytest.mark.sumo
def test_import_builds_folder_with_lima_speeds_and_signals(imported):
    base, osm, folder, cwd = imported
    assert folder == (base / "net").resolve()
    assert {p.name for p in folder.iterdir()} == {
        "tiny.net.xml", "lima.typ.xml", "intersections.derived.json", "detectors.add.xml", "random.trips.xml",
        "random.rou.xml", "random.sumocfg", "network.yaml", "README.md"}
    # nothing written outside the folder: not next to the extract, not in the working directory
    assert {p.name for p in base.iterdir()} == {"tiny.osm", "net", "cwd"}
    assert list(cwd.iterdir()) == []

    net = folder / "tiny.net.xml"
    speeds = _speeds_by_way(net)
    assert speeds["100"] == {round(50 * KMH, 2)}     # untagged primary: Lima avenue 50 km/h, not 100
    assert speeds["101"] == {round(50 * KMH, 2)}
    assert speeds["102"] == {round(30 * KMH, 2)}     # untagged residential: 30 km/h
    assert speeds["104"] == {round(40 * KMH, 2)}     # maxspeed=40 wins over the tertiary type's 50
    assert speeds["105"] == {round(80 * KMH, 2)}     # untagged trunk (Vía Expresa): 80 km/h
    assert speeds["106"] == {round(80 * KMH, 2)}     # maxspeed=none: --osm.speedlimit-none, not 142 km/h
    edges = _edges(net)
    assert any(e.startswith("103") for e in edges) and not any(e.startswith("-103") for e in edges)  # oneway
    assert any(e.startswith("-102") for e in edges)                                                   # two-way
    assert len([ln for ln in edges[next(e for e in edges if e.startswith("100"))].iter("lane")]) == 2  # lanes=4

    tls = list(ET.parse(net).getroot().iter("tlLogic"))
    # the crossing node's signal, plus the approach signals around node 8 joined into one light;
    # the mid-block pedestrian signal (node 20) is discarded
    assert len(tls) == 2
    from networks.derive import derive_intersections, load_intersection_file

    inters = derive_intersections(net)
    assert [i.id for i in inters] == sorted(t.get("id") for t in tls)
    assert all(len(i.phases) >= 2 for i in inters)
    assert [i.id for i in load_intersection_file(folder / "intersections.derived.json")] == [i.id for i in inters]
    assert "__sb__" in (folder / "detectors.add.xml").read_text(encoding="utf-8")

    departs = [float(v.get("depart")) for v in ET.parse(folder / "random.rou.xml").getroot().iter("vehicle")]
    assert departs and departs == sorted(departs) and max(departs) < 300.0
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "tiny.osm" in readme and "ODbL" in readme and "--tls.guess-signals" in readme
    assert str(base) not in readme and str(base) not in (folder / "tiny.net.xml").read_text(encoding="utf-8")[:2000]


@pytest.mark.sumo
def test_imported_network_loads_and_runs(imported):
    from envs.runner import run_episode
    from networks.catalog import load_network

    _, _, folder, _ = imported
    network = load_network(folder)
    assert network.name == "tiny" and network.default_scenario == "random"
    scenario = network.scenario("random")
    assert scenario.begin_s == 0 and scenario.end_s == 300
    assert "random" in scenario.description and "uncalibrated" in scenario.description
    result = run_episode(network, "random", "actuated", 0)
    assert result.metrics["scheduled"] > 0
    assert result.violations == 0


@pytest.mark.sumo
def test_import_is_deterministic(imported, tmp_path):
    base, osm, folder, _ = imported
    again = import_osm(osm, "tiny", tmp_path / "again", seed=1, end_s=300.0)
    for name in ("tiny.net.xml", "random.rou.xml", "intersections.derived.json", "network.yaml"):
        assert (again / name).read_text(encoding="utf-8") == (folder / name).read_text(encoding="utf-8"), name


def test_non_osm_file_is_refused_naming_it(tmp_path):
    bad = tmp_path / "city.net.xml"
    bad.write_text('<?xml version="1.0"?>\n<net version="1.20"/>\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"city\.net\.xml: not OSM XML"):
        import_osm(bad, "x", tmp_path / "out")
    text = tmp_path / "notes.osm"
    text.write_text("just some text\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"notes\.osm: not OSM XML"):
        check_osm_file(text)
    with pytest.raises(InputError, match=r"missing\.osm: OSM file not found"):
        import_osm(tmp_path / "missing.osm", "x", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.sumo
def test_netconvert_error_names_the_file_and_the_error(tmp_path):
    empty = tmp_path / "empty.osm"
    empty.write_text('<?xml version="1.0"?>\n<osm version="0.6"></osm>\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"empty\.osm: netconvert failed .*Error: No nodes loaded"):
        import_osm(empty, "empty", tmp_path / "out")


def test_bad_name_is_refused(tmp_path):
    osm = write_osm(tmp_path / "tiny.osm")
    with pytest.raises(InputError, match="network name"):
        import_osm(osm, "../evil", tmp_path / "out")


def test_lima_typemap_only_overrides_speeds():
    root = ET.fromstring(lima_typemap_xml())
    types = {t.get("id"): t.attrib for t in root.iter("type")}
    assert types["highway.primary"] == {"id": "highway.primary", "speed": "13.89"}
    assert float(types["highway.residential"]["speed"]) == pytest.approx(30 / 3.6, abs=0.005)
    assert float(types["highway.trunk"]["speed"]) == pytest.approx(80 / 3.6, abs=0.005)


def test_list_networks_describes_bundled_networks():
    listing = {name: (scenarios, text) for name, scenarios, text in list_networks()}
    assert "grid" in listing and "single" in listing
    assert listing["grid"][0] == ["base"]
    assert "3x3" in listing["grid"][1]


@pytest.mark.sumo
def test_refused_program_names_the_light(tmp_path, monkeypatch):
    import networks.derive

    def refuse(net_file, override_file=None):
        raise InputError(f"{net_file}: traffic light 'GS_8': program phase 1 of 4 (GGrr) shows conflicting links")

    monkeypatch.setattr(networks.derive, "derive_intersections", refuse)
    osm = write_osm(tmp_path / "tiny.osm")
    with pytest.raises(InputError, match=r"tiny\.osm: the program netconvert built for traffic light 'GS_8' "
                                         r"cannot be used .*kept in .*tiny\.net\.xml"):
        import_osm(osm, "tiny", tmp_path / "out")

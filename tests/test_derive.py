"""networks.derive / networks.detectors: the intersection model derived from SUMO nets."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from controller.errors import InputError
from controller.intersection import GREEN_CHARS, Intersection
from controller.timing import WALK_S, pedestrian_clearance_s, yellow_change_s
from networks.catalog import load_network
from networks.derive import derive_intersections, load_intersection_file, write_intersection_file
from networks.detectors import write_detector_additional

BUNDLED = ("single", "grid")


def _sumo_home() -> Path:
    from networks.sumo_home import sumo_home

    return sumo_home()

def _program_states(net_file: Path) -> dict[str, list[str]]:
    """Every phase state of the first program of each traffic light, straight from the XML."""
    states: dict[str, list[str]] = {}
    for tl in ET.parse(net_file).getroot().iter("tlLogic"):
        states.setdefault(tl.get("id"), [p.get("state") for p in tl.iter("phase")])
    return states


def _link(inter: Intersection, from_lane: str, to_lane: str) -> int:
    return next(l.index for l in inter.links if l.from_lane == from_lane and l.to_lane == to_lane)


@pytest.fixture(scope="module")
def derived() -> dict[str, list[Intersection]]:
    return {name: derive_intersections(load_network(name).net_file) for name in BUNDLED}


@pytest.mark.parametrize("name", BUNDLED)
def test_official_program_satisfies_matrix(derived, name):
    net = load_network(name).net_file
    programs = _program_states(net)
    inters = {i.id: i for i in derived[name]}
    assert set(inters) == set(programs)
    for tl, states in programs.items():
        inter = inters[tl]
        assert inter.n_links == len(states[0])  # one link per state position
        for state in states:  # every phase, transitional ones included
            greens = [i for i, c in enumerate(state) if c in GREEN_CHARS]
            assert all(inter.compatible[a][b] for a in greens for b in greens), (tl, state)
        for phase in inter.phases:
            assert set(phase.state) <= set("Ggr")
        assert all(inter.compatible[i][i] for i in range(inter.n_links))


def test_single_conflicts_and_permissives(derived):
    [c] = derived["single"]
    we = _link(c, "west_app_1", "east_exit_1")       # main-street through, westbound approach
    ew = _link(c, "east_app_1", "west_exit_1")       # opposing through
    ns = _link(c, "north_app_1", "south_exit_1")     # crossing-street through
    west_left = _link(c, "west_app_2", "north_exit_1")
    east_left = _link(c, "east_app_2", "south_exit_1")
    assert not c.compatible[we][ns] and not c.compatible[ns][we]  # opposing-through vs crossing: never together
    assert c.compatible[we][ew]                                    # opposing throughs run together
    assert c.compatible[west_left][ew]                             # permissive left ('g') against opposing through
    assert c.compatible[west_left][east_left]                      # protected opposing lefts
    assert not c.compatible[west_left][ns]                         # a left never with the crossing street
    # 16 vehicle links, 4 green phases: main through (+ permissive left), main lefts, side through, side lefts
    assert c.n_links == 16 and len(c.phases) == 4
    assert c.phases[c.major_phase].state[we] == "G"
    assert all(l.kind == "vehicle" and l.yellow_s == pytest.approx(yellow_change_s(13.89)) for l in c.links)
    assert all(1.0 < l.red_clearance_s < 3.5 for l in c.links)
    assert all(p.min_green_s == 5.0 and p.max_green_s >= 45.0 for p in c.phases)


def test_grid_crosswalks_are_pedestrian_links(derived):
    inters = {i.id: i for i in derived["grid"]}
    assert len(inters) == 9
    b1 = inters["B1"]
    peds = [l for l in b1.links if l.kind == "pedestrian"]
    assert len(peds) == 4
    for link in peds:
        assert link.from_lane.startswith(":B1_c") and link.to_lane == ""
        assert link.walk_s == WALK_S and link.red_clearance_s == 2.0
        assert link.yellow_s == pytest.approx(pedestrian_clearance_s(12.8), abs=0.5)
    # SUMO's 5-s crosswalk clearance is folded into the vehicle phase: two phases remain
    assert len(b1.phases) == 2
    assert all(any(b1.phases[k].state[l.index] == "G" for k in range(2)) for l in peds)
    assert not any(l.kind == "pedestrian" for l in inters["A0"].links)
    # the west-east street (priority 3, heavier demand) is the major phase everywhere
    edges = ET.parse(load_network("grid").net_file.parent / "grid.edg.xml").getroot().iter("edge")
    main_street = {e.get("id") for e in edges if e.get("priority") == "3"}
    assert len(main_street) == 24
    for inter in inters.values():
        major = inter.phases[inter.major_phase]
        for link in inter.links:
            if link.kind == "vehicle" and link.from_lane.rsplit("_", 1)[0] in main_street:
                assert major.state[link.index] in GREEN_CHARS, (inter.id, link)


def test_detectors_scheme(derived):
    for name in BUNDLED:
        all_ids = [d.id for inter in derived[name] for d in inter.detectors]
        assert len(all_ids) == len(set(all_ids))
        for inter in derived[name]:
            vehicle_in = {l.from_lane for l in inter.links if l.kind == "vehicle"}
            kinds = {(d.kind, d.lane) for d in inter.detectors}
            for lane in vehicle_in:
                for kind, short in (("stopbar", "sb"), ("advance", "adv"), ("radar", "rad")):
                    assert (kind, lane) in kinds
                    assert f"{inter.id}__{short}__{lane}" in all_ids
            for det in inter.detectors:
                assert det.links and all(0 <= i < inter.n_links for i in det.links)
                if det.kind == "stopbar":
                    assert det.distance_m == 1.0
                if det.kind == "advance":
                    assert det.distance_m == pytest.approx(13.89 * 3, abs=0.01)
                if det.kind in ("radar", "exit"):
                    assert 0 < det.length_m <= 150.0
    again = derive_intersections(load_network("single").net_file)
    assert [d.id for d in again[0].detectors] == [d.id for d in derived["single"][0].detectors]


def test_detectors_of_an_approach_lane_too_short_for_them_go_on_the_road_upstream():
    from networks.detectors import LaneGeometry, detector_additional_xml, place_detectors

    # a 0.92 m lane before the stop line (an OSM way split), fed through a 0.47 m junction-internal lane by a
    # 43.58 m lane, itself fed straight (no gap) by a 40.40 m lane: 85.37 m of road
    short = LaneGeometry(0.92, 13.89, (("up_0", 43.58, 0.47), ("up2_0", 40.4, 0.0)))
    dets = {d.kind: d for d in place_detectors("T", [(0, "in_0", "out_0")],
                                              {"in_0": short, "out_0": LaneGeometry(60.0, 13.89)})}
    sb, adv, rad = dets["stopbar"], dets["advance"], dets["radar"]
    assert sb.lane == adv.lane == rad.lane == "in_0"  # still the approach lane's detectors (ids, links)
    # no car stands on 0.92 m: the first waits at the end of the lane upstream, and the loop is 1 m before it
    assert sb.placement == (("up_0", 42.58, 42.58),) and sb.distance_m == pytest.approx(2.39)
    assert adv.placement == (("up_0", 3.3, 3.3),) and adv.distance_m == pytest.approx(41.67)
    assert rad.placement == (("up2_0", 0.0, 40.4), ("up_0", 0.0, 43.58), ("in_0", 0.0, 0.92))
    assert rad.length_m == pytest.approx(85.37)
    xml = detector_additional_xml([dataclasses.replace(derive_intersections(load_network("single").net_file)[0],
                                                       detectors=(sb, adv, rad))])
    assert '<inductionLoop id="T__sb__in_0" lane="up_0" pos="42.58"' in xml
    assert '<laneAreaDetector id="T__rad__in_0" lanes="up2_0 up_0 in_0" pos="0.00" endPos="0.92"' in xml
    # a 12 m lane holds a standing car: the stop-bar loop stays on it; a lane of 20 m or more is as before
    on_lane = place_detectors("T", [(0, "in_0", "out_0")], {"in_0": LaneGeometry(12.0, 13.89, (("up_0", 100.0, 0.0),))})
    assert on_lane[0].placement == (("in_0", 11.0, 11.0),) and on_lane[0].distance_m == 1.0
    assert on_lane[2].length_m == pytest.approx(112.0)
    long = place_detectors("T", [(0, "in_0", "out_0")], {"in_0": LaneGeometry(20.0, 13.89, (("up_0", 100.0, 0.0),))})
    assert all(not d.placement for d in long) and long[2].length_m == 20.0


@pytest.mark.sumo
@pytest.mark.parametrize("name", BUNDLED)
def test_detector_file_loads_in_sumo(derived, name, tmp_path):
    add = write_detector_additional(derived[name], tmp_path / "det.add.xml")
    net = load_network(name).net_file
    proc = subprocess.run([str(_sumo_home() / "bin" / "sumo"), "-n", str(net), "-a", str(add), "--end", "10",
                           "--no-step-log"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Error" not in proc.stderr
    # the committed copy is the same file
    assert add.read_text() == (net.parent / "detectors.add.xml").read_text()


def test_intersection_file_round_trip(derived, tmp_path):
    inters = derived["grid"] + derived["single"]
    path = write_intersection_file(inters, tmp_path / "x" / "intersections.json", source="test")
    assert load_intersection_file(path) == inters
    back = load_intersection_file(path)
    assert [i.detectors for i in back] == [i.detectors for i in inters]
    assert [i.signal_groups for i in back] == [i.signal_groups for i in inters]
    doc = json.loads(path.read_text())
    row = doc["intersections"][0]["compatible"][0]
    doc["intersections"][0]["compatible"][0] = row[0] + ("0" if row[1] == "1" else "1") + row[2:]  # asymmetric
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="bad.json"):
        load_intersection_file(bad)
    with pytest.raises(InputError, match="nothere.json"):
        load_intersection_file(tmp_path / "nothere.json")


def test_overrides(tmp_path):
    net = load_network("single").net_file
    ov = tmp_path / "ov.yaml"
    ov.write_text("C:\n  major_phase: 2\n  phases:\n    1: {name: Arequipa, min_green_s: 8, max_green_s: 60}\n"
                  "  links:\n    0: {yellow_s: 4.5, red_clearance_s: 2.5}\n")
    [c] = derive_intersections(net, ov)
    assert c.major_phase == 2
    assert (c.phases[0].name, c.phases[0].min_green_s, c.phases[0].max_green_s) == ("Arequipa", 8.0, 60.0)
    assert (c.links[0].yellow_s, c.links[0].red_clearance_s) == (4.5, 2.5)
    js = tmp_path / "ov.json"
    js.write_text(json.dumps({"C": {"phases": {"2": {"program_green_s": 9}}}}))
    assert derive_intersections(net, js)[0].phases[1].program_green_s == 9.0
    for text, key in (("X9:\n  major_phase: 0\n", "X9"), ("C:\n  colour: red\n", "colour"),
                      ("C:\n  phases:\n    1: {minimum: 3}\n", "minimum"), ("C:\n  links:\n    99: {yellow_s: 4}\n", "99"),
                      ("C: [unclosed\n", "YAML")):
        ov.write_text(text)
        with pytest.raises(InputError, match="ov.yaml") as err:
            derive_intersections(net, ov)
        assert key in str(err.value)


def test_program_cycle_and_offset_are_derived(tmp_path):
    net = load_network("single").net_file
    [c] = derive_intersections(net)  # 33 G, 3 y, 6 G, 3 y, 33 G, 3 y, 6 G, 3 y: a 90 s cycle from 0
    assert [(p.program_green_s, p.program_change_s) for p in c.phases] == [(33, 3), (6, 3), (33, 3), (6, 3)]
    assert c.program_offset_s == 0.0
    # a program listing a yellow first, with an offset: the cycle starts with the first green 2 s after the offset;
    # the leading yellow ends the last green; two consecutive phases with the same greens are one green
    program = tmp_path / "program.add.xml"
    program.write_text('<additional><tlLogic id="C" type="static" programID="p" offset="17">'
                       '<phase duration="2" state="yyyGrrrryyyGrrrr"/><phase duration="30" state="rrrrGGGgrrrrGGGg"/>'
                       '<phase duration="4" state="rrrryyyyrrrryyyy"/><phase duration="20" state="GGGgrrrrGGGgrrrr"/>'
                       '<phase duration="5" state="GGGgrrrrGGGgrrrr"/><phase duration="1" state="yyyyrrrryyyyrrrr"/>'
                       '</tlLogic></additional>')
    [p] = derive_intersections(net, None, [program])
    assert [(ph.program_green_s, ph.program_change_s) for ph in p.phases] == [(30, 4), (25, 3)]
    assert p.program_offset_s == 19.0
    # the same green twice in a cycle: the list order is not the program's, so no cycle is claimed
    program.write_text('<additional><tlLogic id="C" type="static" programID="p" offset="0">'
                       '<phase duration="30" state="rrrrGGGgrrrrGGGg"/><phase duration="4" state="rrrryyyyrrrryyyy"/>'
                       '<phase duration="20" state="GGGgrrrrGGGgrrrr"/><phase duration="4" state="yyyyrrrryyyyrrrr"/>'
                       '<phase duration="10" state="rrrrGGGgrrrrGGGg"/><phase duration="4" state="rrrryyyyrrrryyyy"/>'
                       '<phase duration="9" state="rrrGrrrrrrrGrrrr"/><phase duration="4" state="rrryrrrrrrryrrrr"/>'
                       '</tlLogic></additional>')
    [q] = derive_intersections(net, None, [program])
    assert [ph.program_change_s for ph in q.phases] == [None, None, None]
    # an override sets the offset and a change interval; a bad offset is refused in one line naming the file
    ov = tmp_path / "ov.yaml"
    ov.write_text("C:\n  program_offset_s: 12\n  phases:\n    2: {program_change_s: 5}\n")
    [o] = derive_intersections(net, ov)
    assert (o.program_offset_s, o.phases[1].program_change_s) == (12.0, 5.0)
    ov.write_text("C:\n  program_offset_s: .nan\n")
    with pytest.raises(InputError, match="ov.yaml.*offset"):
        derive_intersections(net, ov)
    program.write_text('<additional><tlLogic id="C" type="static" programID="p" offset="soon">'
                       '<phase duration="30" state="rrrrGGGgrrrrGGGg"/></tlLogic></additional>')
    with pytest.raises(InputError, match="program.add.xml"):
        derive_intersections(net, None, [program])


def test_no_traffic_lights_and_malformed_files(tmp_path):
    plain = tmp_path / "plain.net.xml"
    plain.write_text('<net version="1.20">\n  <edge id="a" from="x" to="y" priority="1">\n'
                     '    <lane id="a_0" index="0" speed="13.89" length="100" shape="0,0 100,0"/>\n  </edge>\n</net>\n')
    with pytest.raises(InputError, match="plain.net.xml: no traffic lights"):
        derive_intersections(plain)
    broken = tmp_path / "broken.net.xml"
    broken.write_text('<net version="1.20">\n  <edge id="a" from="x"\n')
    with pytest.raises(InputError, match="broken.net.xml"):
        derive_intersections(broken)
    with pytest.raises(InputError, match="missing.net.xml"):
        derive_intersections(tmp_path / "missing.net.xml")
    notnet = tmp_path / "routes.xml"
    notnet.write_text("<routes/>")
    with pytest.raises(InputError, match="routes.xml"):
        derive_intersections(notnet)


def test_conflicting_program_is_refused(tmp_path):
    net = load_network("single").net_file
    text = net.read_text()
    assert 'state="rrrrGGGgrrrrGGGg"' in text
    bad = tmp_path / "conflict.net.xml"
    bad.write_text(text.replace('state="rrrrGGGgrrrrGGGg"', 'state="rGrrGGGgrrrrGGGg"', 1))  # N-S through too
    with pytest.raises(InputError, match=r"conflict\.net\.xml: traffic light 'C': program phase 1"):
        derive_intersections(bad)


def test_grade_lengthens_yellow(tmp_path):
    net = load_network("single").net_file
    text = net.read_text()
    lane = 'shape="-166.00,-4.80 -13.60,-4.80"'
    assert lane in text
    hill = tmp_path / "hill.net.xml"
    hill.write_text(text.replace(lane, 'shape="-166.00,-4.80,6.10 -13.60,-4.80,0.00"'))  # 4 % downgrade
    [c] = derive_intersections(hill)
    link = c.links[_link(c, "west_app_1", "east_exit_1")]
    assert link.yellow_s == pytest.approx(yellow_change_s(13.89, -6.1 / 152.4))
    assert link.yellow_s > yellow_change_s(13.89) + 0.2


SUMO_EXAMPLES = ("tools/game/cross/cross.net.xml", "tools/game/DRT/osm.net.xml", "tools/game/kuehne/kuehne.net.xml",
                 "tools/game/A10KW/osm.net.xml", "tools/game/fokr_bs_demo/fokr_bs.net.xml.gz",
                 "tools/sumolib/scenario/scenarios/RiLSA1BothTLS/rilsa1both.net.xml")


@pytest.mark.parametrize("rel", SUMO_EXAMPLES)
def test_sumo_shipped_examples(rel):
    """Nets we did not author (shipped with the eclipse-sumo wheel) derive cleanly."""
    net = _sumo_home() / rel
    if not net.exists():
        pytest.skip(f"{rel} not shipped with this SUMO")
    inters = derive_intersections(net)
    programs = {}
    import gzip

    opener = gzip.open if rel.endswith(".gz") else open
    with opener(net, "rb") as fh:
        for tl in ET.parse(fh).getroot().iter("tlLogic"):
            programs.setdefault(tl.get("id"), [p.get("state") for p in tl.iter("phase")])
    assert {i.id for i in inters} == set(programs)
    for inter in inters:
        assert inter.n_links == len(programs[inter.id][0])
        for state in programs[inter.id]:
            greens = [i for i, c in enumerate(state) if c in GREEN_CHARS]
            assert all(inter.compatible[a][b] for a in greens for b in greens)


def test_sumo_shipped_inconsistent_program_is_reported():
    """Ingolstadt (game) shows two merging movements green where neither yields: refused, naming tl and phase."""
    net = _sumo_home() / "tools/game/fkk_in/ingolstadt.net.xml.gz"
    if not net.exists():
        pytest.skip("ingolstadt game net not shipped")
    with pytest.raises(InputError, match=r"ingolstadt\.net\.xml\.gz: traffic light 'gneJ21': program phase 1"):
        derive_intersections(net)


@pytest.mark.sumo
def test_netgenerated_spider_with_crosswalks(tmp_path):
    net = tmp_path / "spider.net.xml"
    proc = subprocess.run([str(_sumo_home() / "bin" / "netgenerate"), "--spider", "--spider.arm-number", "5",
                           "--spider.circle-number", "2", "--spider.space-radius", "120", "--tls.guess",
                           "--sidewalks.guess", "--crossings.guess", "--seed", "7", "-L", "2", "-o", str(net)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    inters = derive_intersections(net)
    assert inters
    assert any(l.kind == "pedestrian" for i in inters for l in i.links)
    add = write_detector_additional(inters, tmp_path / "det.add.xml")
    run = subprocess.run([str(_sumo_home() / "bin" / "sumo"), "-n", str(net), "-a", str(add), "--end", "5",
                          "--no-step-log"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr


def test_frozen_dataclasses_compare_by_value(derived):
    [c] = derived["single"]
    assert dataclasses.replace(c) == c


@pytest.mark.sumo
def test_right_turn_on_red_links_show_stop_then_go_when_red(tmp_path):
    """A netconvert ``traffic_light_right_on_red`` junction shows right turns ``s`` (stop, then go) in the phases
    where they are red. The core keeps that: those links show ``s`` instead of ``r`` whenever red (greens as
    the program's), the monitor takes ``s`` for a red, and every other link's red stays ``r``."""
    from controller.phase_machine import PhaseMachine
    from controller.safety import SafetyMonitor

    net = tmp_path / "rtor.net.xml"
    proc = subprocess.run([str(_sumo_home() / "bin" / "netgenerate"), "--grid", "--grid.number", "3",
                           "--grid.attach-length", "100", "--default-junction-type",
                           "traffic_light_right_on_red", "-o", str(net)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    inter = max(derive_intersections(net), key=lambda i: i.n_links)  # a four-arm crossing
    import xml.etree.ElementTree as ET

    logic = next(e for e in ET.parse(net).getroot().iter("tlLogic") if e.get("id") == inter.id)
    program = [ph.get("state") for ph in logic.iter("phase") if set(ph.get("state")) & set("Gg")]
    rtor = {l.index for l in inter.links if l.turn_on_red}
    assert rtor == {i for s in program for i, c in enumerate(s) if c == "s"} and rtor
    machine, monitor = PhaseMachine(inter), SafetyMonitor(inter)
    seen_green = set()
    for t in range(600):
        if t % 40 == 0:
            machine.request((t // 40) % len(inter.phases))
        state = machine.tick()
        assert monitor.check(state) == state, monitor.reason
        for i, c in enumerate(state):
            if c not in "Ggy":
                assert c == ("s" if i in rtor else "r"), (t, state)
        if machine.interval.name == "GREEN":
            seen_green.add(state)
    assert set(program) <= seen_green  # each green shown exactly as the program shows it


@pytest.mark.sumo
def test_nema_programs_become_the_phase_pairs_their_rings_run_together(tmp_path):
    """A SUMO NEMA program lists single NEMA movements (2, 6, 4, 8, ...); its rings say which run together. Read
    as a plain phase list each would run alone (a 380 s cycle for `fixed` on a netgenerate grid); derived as
    slot pairs, 2+6 and 4+8 are the phases, each with both movements' greens."""
    import xml.etree.ElementTree as ET

    net = tmp_path / "nema.net.xml"
    proc = subprocess.run([str(_sumo_home() / "bin" / "netgenerate"), "--grid", "--grid.number", "3",
                           "--grid.attach-length", "100", "--default-junction-type", "traffic_light",
                           "--tls.default-type", "NEMA", "-o", str(net)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    logic = {e.get("id"): e for e in ET.parse(net).getroot().iter("tlLogic")}
    inters = [i for i in derive_intersections(net) if logic[i.id].get("type") == "NEMA"]
    assert len(inters) >= 4
    for inter in inters:
        movement = {int(p.get("name")): p.get("state") for p in logic[inter.id].iter("phase")}
        rings = [[int(v) for v in logic[inter.id].find(f"param[@key='{key}']").get("value").split(",")]
                 for key in ("ring1", "ring2")]
        pairs = [tuple(n for n in slot if n) for slot in zip(*rings) if any(slot)]
        assert [p.name for p in inter.phases] == ["+".join(map(str, pair)) for pair in pairs]
        for phase, pair in zip(inter.phases, pairs):
            assert phase.greens == {i for n in pair for i, c in enumerate(movement[n]) if c in "Gg"}
            assert phase.program_green_s == max(float(p.get("maxDur")) for p in logic[inter.id].iter("phase")
                                                if int(p.get("name")) in pair)
    # a ring naming a phase the program lacks is named, with the light
    broken = tmp_path / "broken.net.xml"
    broken.write_text(net.read_text().replace('key="ring1" value="', 'key="ring1" value="3,', 1))
    with pytest.raises(InputError, match=r"broken\.net\.xml: traffic light '.*': NEMA ring names phase 3"):
        derive_intersections(broken)

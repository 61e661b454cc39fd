"""Calibrate a network's demand to counts with SUMO's ``routeSampler`` (``ondaverde networks calibrate``).

``calibrate(network, counts.csv, out_dir)`` turns hourly (or any-interval) **edge counts** or **turning counts**
into a route file whose vehicles reproduce the counts, then reports the **GEH** statistic per counted location:

1. :func:`read_counts` reads the CSV. Two layouts, told apart by the header::

       begin_s,end_s,edge,count                   # vehicles entering the edge in [begin_s, end_s)
       begin_s,end_s,from_edge,to_edge,count      # vehicles turning from_edge -> to_edge in [begin_s, end_s)

   Blank lines and lines starting with ``#`` are skipped. Counts are vehicles in the interval (not veh/h);
   intervals are usually 3600 s.
2. The counted edges (and, for turns, the connections) are checked against the net.
3. **Candidate routes.** The network's own scenario route files when their routes pass every counted edge
   (or turn); otherwise they are complemented by ``randomTrips.py`` trips (fixed seed, fringe factor
   :data:`FRINGE_FACTOR`) routed by ``duarouter``. routeSampler can only reuse routes it is given, so a
   counted location no candidate passes could never be matched.
4. **routeSampler** (``-r candidates -d edgedata.xml`` or ``-t turns.xml``, ``--seed``). Without
   ``--optimize`` it samples routes until every count is reached without overshooting any; ``--optimize full``
   (a linear program) needs scipy, which is not an ondaverde dependency, so it is used only when asked for
   (``optimize=True``). Departures are spread uniformly over each count interval.
5. The sampled routes are written to ``out_dir/<scenario_name>.rou.xml`` (the scenario's vehicle types copied
   in: its only type, or a ``vTypeDistribution`` ``<scenario_name>.mix`` with the scenario's type shares, from
   which SUMO draws each vehicle's type; SUMO's provenance comment with absolute paths and date stripped, so reruns are
   identical), and the GEH of each counted location and interval is computed from that file:
   a vehicle counts at a location in the interval holding its departure (routeSampler's own convention).

Every bad input raises :class:`~controller.errors.InputError` with a one-line message naming the file (and the
line of the CSV). Nothing is written outside ``out_dir``.
"""

from __future__ import annotations

import csv
import importlib.util
import math
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from controller.errors import InputError

#: GEH below which a counted location is considered matched (the usual calibration target).
GEH_OK = 5.0
#: Header of an edge-count CSV.
EDGE_HEADER = ("begin_s", "end_s", "edge", "count")
#: Header of a turn-count CSV.
TURN_HEADER = ("begin_s", "end_s", "from_edge", "to_edge", "count")
#: randomTrips fringe factor for generated candidates (most traffic crosses the area boundary to boundary).
FRINGE_FACTOR = 10.0
#: Generated candidate trips per hour of the counted period (many distinct routes, cheap to sample from).
CANDIDATE_TRIPS_PER_HOUR = 3000.0
#: Vehicle attributes written on every sampled vehicle.
VEHICLE_ATTRIBUTES = 'departLane="best" departSpeed="max"'


def geh(model_vph: float, count_vph: float) -> float:
    """The GEH statistic between a modelled and a counted hourly flow.

    ``GEH = sqrt(2 (M - C)^2 / (M + C))`` with ``M`` the model and ``C`` the count, both in vehicles per
    hour. GEH < 5 is the usual target for a calibrated location; GEH(0, 0) is 0.

    >>> geh(100, 100)
    0.0
    >>> round(geh(150, 100), 4)   # sqrt(2 * 50**2 / 250) = sqrt(20)
    4.4721
    >>> geh(0, 50)                # sqrt(2 * 2500 / 50) = 10
    10.0
    >>> geh(0, 0)
    0.0

    :param model_vph: modelled flow, veh/h (>= 0).
    :param count_vph: counted flow, veh/h (>= 0).
    :raises ValueError: a negative flow.
    """
    if model_vph < 0 or count_vph < 0:
        raise ValueError(f"GEH needs non-negative flows, got model {model_vph!r} and count {count_vph!r}")
    total = model_vph + count_vph
    if total == 0:
        return 0.0
    return math.sqrt(2.0 * (model_vph - count_vph) ** 2 / total)


class CountKey(NamedTuple):
    """A counted location in one interval: an edge (``to_edge`` None) or a turn ``from_edge -> to_edge``."""

    edge: str
    to_edge: str | None
    begin_s: float
    end_s: float

    @property
    def location(self) -> str:
        """``edge`` or ``from>to``."""
        return self.edge if self.to_edge is None else f"{self.edge}>{self.to_edge}"

    def __str__(self) -> str:
        return f"{self.location} [{self.begin_s:g},{self.end_s:g})"


@dataclass(frozen=True)
class CountRow:
    """One CSV row: the location and interval, the vehicles counted in it and the CSV line number."""

    key: CountKey
    count: float
    line: int

    @property
    def count_vph(self) -> float:
        """The count as an hourly flow, veh/h."""
        return self.count * 3600.0 / (self.key.end_s - self.key.begin_s)


@dataclass(frozen=True)
class Counts:
    """Counts read from a CSV.

    :param source: the CSV file.
    :param kind: ``"edge"`` or ``"turn"``.
    :param rows: the rows, in file order.
    """

    source: Path
    kind: str
    rows: tuple[CountRow, ...]

    @property
    def begin_s(self) -> float:
        """Earliest interval begin, seconds."""
        return min(r.key.begin_s for r in self.rows)

    @property
    def end_s(self) -> float:
        """Latest interval end, seconds."""
        return max(r.key.end_s for r in self.rows)

    def edges(self) -> dict[str, int]:
        """Every edge named in the counts -> first CSV line naming it."""
        seen: dict[str, int] = {}
        for r in self.rows:
            for e in (r.key.edge, r.key.to_edge):
                if e is not None:
                    seen.setdefault(e, r.line)
        return seen


class GehRow(NamedTuple):
    """GEH of one counted location and interval: ``(key, count_vph, model_vph, geh)``."""

    key: CountKey
    count_vph: float
    model_vph: float
    geh: float


@dataclass(frozen=True)
class CalibrationResult:
    """What :func:`calibrate` produced.

    :param route_file: the sampled routes, ``out_dir/<scenario_name>.rou.xml``.
    :param counts: the counts calibrated to.
    :param rows: GEH per counted location and interval, in CSV order.
    :param vehicles: vehicles in the route file.
    :param candidate_source: ``"scenario"`` (the network's route files), ``"generated"`` (randomTrips +
        duarouter) or ``"scenario+generated"``.
    :param junctions: counted location (``edge`` or ``from>to``) -> junction id of the counted intersection
        (the edge's downstream junction; for a turn, the junction between the two edges).
    :param optimized: whether routeSampler ran with ``--optimize full``.
    """

    route_file: Path
    counts: Counts
    rows: list[GehRow]
    vehicles: int
    candidate_source: str
    junctions: dict[str, str] = field(default_factory=dict)
    optimized: bool = False

    @property
    def max_geh(self) -> float:
        """Largest GEH over the counted locations and intervals."""
        return max((r.geh for r in self.rows), default=0.0)

    @property
    def share_below_5(self) -> float:
        """Share (0..1) of counted locations and intervals with GEH < 5."""
        return sum(r.geh < GEH_OK for r in self.rows) / len(self.rows) if self.rows else 1.0


# ----------------------------------------------------------------------------------------------- the CSV

def _number(text: str, column: str, source: Path, line: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{source}: line {line}: {column} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{source}: line {line}: {column} {text!r} is not a finite number")
    return value


def read_counts(csv_path: Path) -> Counts:
    """Read an edge-count or turn-count CSV (layouts in the module docstring).

    :param csv_path: the CSV file.
    :return: the counts, rows in file order.
    :raises InputError: missing/unreadable file, wrong header, wrong number of columns, a non-numeric,
        negative or non-finite count or time, ``begin_s >= end_s``, an empty edge id, the same location and
        interval twice, or no rows (one line naming the file and the line).
    """
    source = Path(csv_path).expanduser()
    if not source.is_file():
        raise InputError(f"{source}: count file not found")
    try:
        text = source.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{source}: cannot read ({exc})") from None
    header: tuple[str, ...] | None = None
    rows: list[CountRow] = []
    seen: dict[CountKey, int] = {}
    for line, fields in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [c.strip() for c in fields]
        if not cells or all(c == "" for c in cells) or cells[0].startswith("#"):
            continue
        if header is None:
            header = tuple(cells)
            if header not in (EDGE_HEADER, TURN_HEADER):
                raise InputError(f"{source}: line {line}: header {','.join(cells)!r} is neither "
                                 f"{','.join(EDGE_HEADER)!r} (edge counts) nor {','.join(TURN_HEADER)!r} (turn counts)")
            continue
        if len(cells) != len(header):
            raise InputError(f"{source}: line {line}: {len(cells)} columns, expected {len(header)} "
                             f"({','.join(header)})")
        values = dict(zip(header, cells))
        begin = _number(values["begin_s"], "begin_s", source, line)
        end = _number(values["end_s"], "end_s", source, line)
        if begin < 0:
            raise InputError(f"{source}: line {line}: begin_s {begin:g} must not be negative")
        if not begin < end:
            raise InputError(f"{source}: line {line}: begin_s {begin:g} must be before end_s {end:g}")
        count = _number(values["count"], "count", source, line)
        if count < 0:
            raise InputError(f"{source}: line {line}: count {values['count']} must not be negative")
        if header == EDGE_HEADER:
            edge, to_edge = values["edge"], None
            if not edge:
                raise InputError(f"{source}: line {line}: edge is empty")
        else:
            edge, to_edge = values["from_edge"], values["to_edge"]
            if not edge or not to_edge:
                raise InputError(f"{source}: line {line}: from_edge and to_edge must both be given")
        key = CountKey(edge, to_edge, begin, end)
        if key in seen:
            raise InputError(f"{source}: line {line}: {key} is counted twice (also on line {seen[key]})")
        seen[key] = line
        rows.append(CountRow(key, count, line))
    if header is None:
        raise InputError(f"{source}: empty (expected the header {','.join(EDGE_HEADER)!r} "
                         f"or {','.join(TURN_HEADER)!r} and count rows)")
    if not rows:
        raise InputError(f"{source}: no count rows after the header")
    return Counts(source, "edge" if header == EDGE_HEADER else "turn", tuple(rows))


# ------------------------------------------------------------------------------------------- network facts

def _net_facts(net_file: Path) -> tuple[dict[str, str], set[tuple[str, str]]]:
    """``(edge id -> downstream junction id, {(from_edge, to_edge) connections})`` of the normal edges."""
    from networks.derive import _open  # gzip-aware

    edges: dict[str, str] = {}
    connections: set[tuple[str, str]] = set()
    try:
        with _open(net_file) as fh:
            for _, elem in ET.iterparse(fh, events=("end",)):
                if elem.tag == "edge":
                    if elem.get("function") in (None, "normal"):
                        edges[elem.get("id")] = elem.get("to", "")
                    elem.clear()
                elif elem.tag == "connection":
                    frm = elem.get("from", "")
                    if not frm.startswith(":"):
                        connections.add((frm, elem.get("to", "")))
                    elem.clear()
    except (ET.ParseError, OSError) as exc:
        raise InputError(f"{net_file}: not a readable SUMO network ({exc})") from None
    return edges, connections


def _check_locations(counts: Counts, network, edges: dict[str, str], connections: set[tuple[str, str]]) -> None:
    unknown = [(e, line) for e, line in counts.edges().items() if e not in edges]
    if unknown:
        names = ", ".join(f"{e!r} (line {line})" for e, line in unknown)
        raise InputError(f"{counts.source}: edge{'s' if len(unknown) > 1 else ''} not in network "
                         f"{network.name!r} ({network.net_file.name}): {names}")
    if counts.kind == "turn":
        for r in counts.rows:
            if (r.key.edge, r.key.to_edge) not in connections:
                raise InputError(f"{counts.source}: line {r.line}: no connection from {r.key.edge!r} to "
                                 f"{r.key.to_edge!r} in network {network.name!r} ({network.net_file.name})")


# ---------------------------------------------------------------------------------------------- route files

def _iter_vehicle_routes(route_file: Path) -> Iterable[tuple[float | None, list[str]]]:
    """``(depart or None, edges)`` per vehicle/route element holding an explicit edge list."""
    from networks.derive import _open

    try:
        with _open(route_file) as fh:
            depart: float | None = None
            for event, elem in ET.iterparse(fh, events=("start", "end")):
                if event == "start":
                    if elem.tag == "vehicle":
                        try:
                            depart = float(elem.get("depart", "nan"))
                        except ValueError:
                            depart = None
                    continue
                if elem.tag == "route" and elem.get("edges"):
                    yield depart, elem.get("edges").split()
                elif elem.tag == "vehicle":
                    depart = None
                    elem.clear()
    except (ET.ParseError, OSError) as exc:
        raise InputError(f"{route_file}: not a readable SUMO route file ({exc})") from None


def _passes(edges: Sequence[str], key: CountKey) -> bool:
    if key.to_edge is None:
        return key.edge in edges
    return any(a == key.edge and b == key.to_edge for a, b in zip(edges, edges[1:]))


def model_counts(route_files: Sequence[Path], counts: Counts) -> dict[CountKey, int]:
    """Vehicles of ``route_files`` that pass each counted location in its interval.

    A vehicle counts in the interval holding its departure time (routeSampler's convention: it spreads the
    departures of each interval's sampled routes over that interval). A turn counts when the two edges are
    consecutive in the route.

    :param route_files: SUMO route files with explicit vehicles and routes (flows and trips are not counted).
    :param counts: the counted locations and intervals.
    """
    result = {r.key: 0 for r in counts.rows}
    by_location: dict[tuple[str, str | None], list[CountKey]] = {}
    for key in result:
        by_location.setdefault((key.edge, key.to_edge), []).append(key)
    for route_file in route_files:
        for depart, edges in _iter_vehicle_routes(Path(route_file)):
            if depart is None or math.isnan(depart):
                continue
            edge_set = set(edges)
            pairs = set(zip(edges, edges[1:]))
            for (edge, to_edge), keys in by_location.items():
                hit = (edge in edge_set) if to_edge is None else ((edge, to_edge) in pairs)
                if hit:
                    for key in keys:
                        if key.begin_s <= depart < key.end_s:
                            result[key] += 1
    return result


def geh_rows(route_files: Sequence[Path], counts: Counts) -> list[GehRow]:
    """GEH per counted location and interval between ``route_files`` and ``counts`` (CSV order)."""
    model = model_counts(route_files, counts)
    rows = []
    for r in counts.rows:
        scale = 3600.0 / (r.key.end_s - r.key.begin_s)
        model_vph = model[r.key] * scale
        rows.append(GehRow(r.key, r.count_vph, model_vph, geh(model_vph, r.count_vph)))
    return rows


def _uncovered(route_files: Sequence[Path], counts: Counts) -> list[CountKey]:
    """Counted locations that no route of ``route_files`` passes."""
    keys = {(r.key.edge, r.key.to_edge): r.key for r in counts.rows}
    left = dict(keys)
    for route_file in route_files:
        for _, edges in _iter_vehicle_routes(route_file):
            for loc in [loc for loc, key in left.items() if _passes(edges, key)]:
                del left[loc]
            if not left:
                return []
    return list(left.values())


def _type_mix(route_files: Sequence[Path]) -> list[tuple[ET.Element, float]]:
    """The vehicle types defined in ``route_files`` with their share of the vehicles (types no vehicle uses
    are left out; vehicles of undefined types are not counted)."""
    from networks.derive import _open

    found: dict[str, ET.Element] = {}
    used: dict[str, int] = {}
    for route_file in route_files:
        try:
            with _open(route_file) as fh:
                for _, elem in ET.iterparse(fh, events=("end",)):
                    if elem.tag == "vType" and elem.get("id") not in found:
                        found[elem.get("id")] = elem
                    elif elem.tag in ("vehicle", "flow", "trip"):
                        kind = elem.get("type", "DEFAULT_VEHTYPE")
                        number = int(float(elem.get("number", 1))) if elem.tag == "flow" else 1
                        used[kind] = used.get(kind, 0) + number
                        elem.clear()
        except (ET.ParseError, OSError, ValueError) as exc:
            raise InputError(f"{route_file}: not a readable SUMO route file ({exc})") from None
    total = sum(n for k, n in used.items() if k in found)
    return [(found[k], used[k] / total) for k in found if used.get(k)] if total else []


# ---------------------------------------------------------------------------------------------- SUMO tools

def _strip_header_comment(path: Path) -> None:
    from networks.osm_import import _strip_header_comment as strip

    strip(path)


def _run(cmd: Sequence[str], cwd: Path, what: str, source: Path) -> str:
    from networks.osm_import import _run as run

    return run(cmd, cwd, what, source)


def _generate_candidates(network, counts: Counts, work: Path, seed: int) -> Path:
    """randomTrips + duarouter candidates over the counted period: ``work/candidates.gen.rou.xml``."""
    from networks.sumo_home import sumo_binary, sumo_home

    begin, end = counts.begin_s, counts.end_s
    period = 3600.0 / CANDIDATE_TRIPS_PER_HOUR
    trips, routes = work / "candidates.trips.xml", work / "candidates.gen.rou.xml"
    _run([sys.executable, str(sumo_home() / "tools" / "randomTrips.py"), "-n", str(network.net_file),
          "-o", str(trips), "--seed", str(int(seed)), "--begin", f"{begin:g}", "--end", f"{end:g}",
          "--period", f"{period:.6f}", "--fringe-factor", f"{FRINGE_FACTOR:g}", "--vclass", "passenger",
          "--prefix", "cand", "--no-validate"], work, "randomTrips.py", counts.source)
    _run([sumo_binary("duarouter"), "-n", str(network.net_file), "-r", str(trips), "-o", str(routes),
          "--seed", str(int(seed)), "--ignore-errors", "true", "--no-step-log", "true", "--no-warnings", "true",
          "--routing-algorithm", "dijkstra", "--write-license", "false"], work, "duarouter", counts.source)
    alt = routes.with_name("candidates.gen.rou.alt.xml")
    if alt.exists():
        alt.unlink()
    return routes


def _edgedata_xml(counts: Counts) -> str:
    """routeSampler input: ``<interval><edge id entered/>`` or ``<interval><edgeRelation from to count/>``."""
    intervals: dict[tuple[float, float], list[CountRow]] = {}
    for r in counts.rows:
        intervals.setdefault((r.key.begin_s, r.key.end_s), []).append(r)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f"<!-- {counts.kind} counts from {counts.source.name}; written by networks/calibrate.py -->", "<data>"]
    for n, ((begin, end), rows) in enumerate(sorted(intervals.items())):
        lines.append(f'    <interval id="counts{n}" begin="{begin:g}" end="{end:g}">')
        for r in rows:
            if r.key.to_edge is None:
                lines.append(f'        <edge id="{_xml(r.key.edge)}" entered="{r.count:g}"/>')
            else:
                lines.append(f'        <edgeRelation from="{_xml(r.key.edge)}" to="{_xml(r.key.to_edge)}" '
                             f'count="{r.count:g}"/>')
        lines.append("    </interval>")
    lines.append("</data>")
    return "\n".join(lines) + "\n"


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


def _add_vtypes(route_file: Path, mix: list[tuple[ET.Element, float]], dist_id: str) -> None:
    """Insert the scenario's vehicle types (one, or a ``vTypeDistribution`` with the scenario's shares)."""
    if not mix:
        return
    text = route_file.read_text(encoding="utf-8")
    if len(mix) == 1:
        block = "    " + ET.tostring(mix[0][0], encoding="unicode").strip() + "\n"
    else:
        block = f'    <vTypeDistribution id="{_xml(dist_id)}">\n'
        for vtype, share in mix:
            vtype = ET.Element("vType", dict(vtype.attrib, probability=f"{share:.6f}"))
            block += "        " + ET.tostring(vtype, encoding="unicode").strip() + "\n"
        block += "    </vTypeDistribution>\n"
    text, n = re.subn(r"(<routes\b[^>]*>[ \t]*\n)", lambda m: m.group(1) + block, text, count=1)
    if n != 1:
        raise InputError(f"{route_file}: routeSampler output has no <routes> element")
    route_file.write_text(text, encoding="utf-8")


_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def calibrate(network, counts_csv: Path, out_dir: Path, seed: int = 0, scenario_name: str = "calibrated",
              optimize: bool = False) -> CalibrationResult:
    """Sample routes that reproduce the counts of ``counts_csv`` on ``network``, and report the GEH.

    :param network: a :class:`networks.catalog.NetworkSpec` (its net and default scenario's route files).
    :param counts_csv: edge-count or turn-count CSV (see :func:`read_counts`).
    :param out_dir: folder to write (created): ``<scenario_name>.rou.xml`` plus the routeSampler inputs
        ``<scenario_name>.counts.xml`` and, when generated, ``<scenario_name>.candidates.rou.xml``.
    :param seed: random seed of routeSampler (and of the generated candidates).
    :param scenario_name: names the output files (letters, digits, ``_``, ``-``, ``.``).
    :param optimize: run routeSampler with ``--optimize full`` (needs scipy).
    :return: the route file and the GEH per counted location and interval.
    :raises InputError: bad CSV, counted edges/turns not in the net, a tool failing, scipy missing for
        ``optimize``, or a counted location no candidate route passes (one line naming the file).
    """
    from networks.sumo_home import sumo_home

    counts = read_counts(counts_csv)
    if not _NAME_RE.fullmatch(scenario_name or ""):
        raise InputError(f"scenario name {scenario_name!r}: use letters, digits, '_', '-' and '.' (it names files)")
    edges, connections = _net_facts(network.net_file)
    _check_locations(counts, network, edges, connections)
    if optimize and importlib.util.find_spec("scipy") is None:
        raise InputError(f"{counts.source}: routeSampler --optimize needs scipy (pip install scipy), "
                         "or calibrate without optimize")
    out_dir = Path(out_dir).expanduser().resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)

    # candidates
    scenario = network.scenario()
    candidates = [Path(p) for p in scenario.route_files]
    source = "scenario"
    missing = _uncovered(candidates, counts) if candidates else [r.key for r in counts.rows]
    if missing:
        work = out_dir / f".{scenario_name}.work"
        work.mkdir(exist_ok=True)
        try:
            generated = _generate_candidates(network, counts, work, seed)
            kept = out_dir / f"{scenario_name}.candidates.rou.xml"
            shutil.move(str(generated), kept)
            _strip_header_comment(kept)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        candidates.append(kept)
        source = "scenario+generated" if scenario.route_files else "generated"
        still = _uncovered(candidates, counts)
        if still:
            raise InputError(f"{counts.source}: no candidate route passes {', '.join(k.location for k in still)} "
                             f"(scenario routes and {CANDIDATE_TRIPS_PER_HOUR:g}/h random trips): "
                             "is it reachable from the network's boundary?")

    # routeSampler
    data_file = out_dir / f"{scenario_name}.counts.xml"
    data_file.write_text(_edgedata_xml(counts), encoding="utf-8")
    route_file = out_dir / f"{scenario_name}.rou.xml"
    mix = _type_mix([Path(p) for p in scenario.route_files])
    dist_id = f"{scenario_name}.mix"
    type_id = "" if not mix else mix[0][0].get("id") if len(mix) == 1 else dist_id
    attrs = VEHICLE_ATTRIBUTES + (f' type="{_xml(type_id)}"' if type_id else "")
    cmd = [sys.executable, str(sumo_home() / "tools" / "routeSampler.py"),
           "-r", ",".join(str(p) for p in candidates),
           "-d" if counts.kind == "edge" else "-t", str(data_file),
           "-o", str(route_file), "--seed", str(int(seed)), "--prefix", f"{scenario_name}.",
           "--attributes", attrs]
    if optimize:
        cmd += ["--optimize", "full"]
    _run(cmd, out_dir, "routeSampler.py", counts.source)
    if not route_file.is_file():
        raise InputError(f"{counts.source}: routeSampler.py wrote no route file {route_file}")
    _strip_header_comment(route_file)
    _add_vtypes(route_file, mix, dist_id)
    vehicles = sum(1 for _ in _iter_vehicle_routes(route_file))

    junctions = {}
    for r in counts.rows:
        junctions[r.key.location] = edges.get(r.key.edge, "")
    return CalibrationResult(route_file, counts, geh_rows([route_file], counts), vehicles, source, junctions,
                             optimize)


def format_geh(result: CalibrationResult) -> str:
    """One table: per counted location and interval the junction, counted and modelled veh/h and the GEH,
    then the maximum GEH and the share below 5."""
    head = ("location", "junction", "interval s", "count veh/h", "model veh/h", "GEH")
    body = [(r.key.location, result.junctions.get(r.key.location, ""), f"{r.key.begin_s:g}-{r.key.end_s:g}",
             f"{r.count_vph:.0f}", f"{r.model_vph:.0f}", f"{r.geh:.2f}" + ("" if r.geh < GEH_OK else " *"))
            for r in result.rows]
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h) for i, h in enumerate(head)]

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    lines = [fmt(head), "  ".join("-" * w for w in widths), *(fmt(row) for row in body)]
    lines.append(f"{len(result.rows)} counted {result.counts.kind} location-intervals, {result.vehicles} vehicles "
                 f"in {result.route_file.name}: max GEH {result.max_geh:.2f}, "
                 f"GEH < {GEH_OK:g} at {100 * result.share_below_5:.0f} %")
    return "\n".join(lines)

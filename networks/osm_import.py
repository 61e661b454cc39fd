"""Build a controllable network folder from a user's OpenStreetMap extract (``ondaverde networks import-osm``).

``import_osm(FILE.osm, name, out_dir)`` runs, offline and deterministically:

1. **netconvert** on the extract with SUMO's OSM typemap plus a **Lima speed map** (``lima.typ.xml``, written
   into the folder): untagged avenues (``primary``/``secondary``/``tertiary``) 50 km/h, streets
   (``residential``/``unclassified``/``living_street``) 30 km/h, ``trunk``/``motorway`` (the Vía Expresa)
   80 km/h, as DS 025-2021-MTC sets them, instead of the typemap's 100 km/h for untagged avenues. An explicit
   ``maxspeed`` tag on a way still wins over the type speed (netconvert reads the type speed only when the
   way carries no usable ``maxspeed``); ``maxspeed=none`` gets ``--osm.speedlimit-none`` (80 km/h here, not
   netconvert's 142 km/h). Signals are taken from the OSM ``highway=traffic_signals`` nodes and joined into
   one light per intersection (see :data:`NETCONVERT_OPTIONS` for every option and why).
2. **Intersections** derived with :func:`networks.derive.derive_intersections`; a netconvert program the
   derivation refuses is reported with the light's id. Writes ``intersections.derived.json`` and the
   field-like detectors ``detectors.add.xml``.
3. **Random demand**: ``randomTrips.py`` (fixed seed, fringe factor, period from the requested veh/h or from
   the network's lane-km) routed by duarouter into ``random.rou.xml`` (explicit vehicles sorted by depart).
4. ``network.yaml`` (scenario ``random``), ``random.sumocfg`` and a ``README.md`` stating the source, the
   options and the licence: OSM data is ODbL, and a net built from it is a derived database under ODbL too.
   **Do not commit an extract or its derived net unless its licence allows.**

Every bad input raises :class:`~controller.errors.InputError` with a one-line message naming the file.
Nothing is written outside ``out_dir``.
"""

from __future__ import annotations

import bz2
import gzip
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from controller.errors import InputError
from networks.sumo_home import sumo_binary, sumo_home

#: Lima's speed limits (DS 025-2021-MTC, in force since 2022-07-18) by OSM ``highway`` value, km/h; used
#: only where a way has no ``maxspeed`` tag. Avenues (avenidas) 50, streets (calles/jirones) 30, the
#: Vía Expresa 80. Ramps (``*_link``) get the speed of the street-level avenue they join (50).
LIMA_SPEEDS_KMH: dict[str, float] = {
    "motorway": 80, "trunk": 80,
    "primary": 50, "secondary": 50, "tertiary": 50,
    "motorway_link": 50, "trunk_link": 50, "primary_link": 50, "secondary_link": 50, "tertiary_link": 50,
    "residential": 30, "unclassified": 30, "living_street": 30,
}
#: Speed for ``maxspeed=none`` (netconvert's default would be 142 km/h), km/h.
SPEEDLIMIT_NONE_KMH = 80.0
#: Default random demand when none is asked for: vehicles per hour per lane-km of passenger-car lanes
#: (uncalibrated; moderate, so that a random OD pattern does not gridlock a real street grid).
DEFAULT_VEH_PER_LANE_KM_HOUR = 40.0
#: randomTrips fringe factor: trips start/end on the network's boundary edges this many times more often
#: than on inner edges (most traffic in a district like Miraflores passes through it).
FRINGE_FACTOR = 10.0
#: randomTrips ``--binomial`` N: departures per second drawn from Binomial(N, 1/(N*period)), nearly
#: Poisson arrivals instead of one vehicle every ``period`` seconds.
BINOMIAL_N = 4
#: Scenario name written into network.yaml.
SCENARIO = "random"

#: netconvert options after ``--osm-files``/``--type-files`` (flag, value, why). The comment is repeated in
#: the network's README.md.
NETCONVERT_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("--osm.speedlimit-none", f"{SPEEDLIMIT_NONE_KMH / 3.6:.2f}",
     "ways tagged maxspeed=none get 80 km/h (the Vía Expresa limit), not netconvert's 142 km/h"),
    ("--keep-edges.by-vclass", "passenger",
     "only roads cars may use: drops footways, cycleways, rail and service-only ways"),
    ("--remove-edges.isolated", "true", "drop edges connected to nothing"),
    ("--keep-edges.components", "1",
     "keep only the largest connected road component, so random trips can be routed"),
    ("--geometry.remove", "true",
     "merge geometry-only nodes (and the simple signalised nodes discarded below) into their edges"),
    ("--roundabouts.guess", "true", "give roundabouts (e.g. óvalos) right of way for traffic on the ring"),
    ("--ramps.guess", "true", "add acceleration/deceleration lanes at motorway/trunk ramps"),
    ("--junctions.join", "true",
     "join the junction clusters of divided avenues into one junction, so one light controls one crossing"),
    ("--tls.guess-signals", "true",
     "OSM maps signals on the stop-line nodes around a crossing: turn them into one light at the crossing"),
    ("--tls.discard-simple", "true",
     "do not make lights at geometry-like nodes (mid-block pedestrian signals): they have no cross traffic"),
    ("--tls.join", "true", "join lights closer than 20 m (the two halves of a divided-avenue crossing)"),
    ("--tls.default-type", "static",
     "fixed-time programs: ondaverde only reads their phases (the controller decides the timing)"),
    ("--proj.utm", "true", "metric UTM coordinates"),
    ("--no-turnarounds", "true", "no U-turn connections (they would add signal links no plan serves)"),
    ("--output.street-names", "true", "keep street names on edges (helps writing override files)"),
    ("--write-license", "false", "no licence header: the README states the licence"),
)
# Pedestrians: netconvert builds no sidewalks or crossings from OSM unless --osm.sidewalks/--osm.crossings
# or --crossings.guess are given, so the net has no pedestrian links and the demand is cars only.

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _env() -> dict[str, str]:
    home = sumo_home()
    # PROJ_LIB (not PROJ_DATA) silences duarouter's "Cannot find proj.db"; no .pyc files in SUMO's tools
    return dict(os.environ, SUMO_HOME=str(home), PROJ_LIB=str(home / "data" / "proj"), PYTHONDONTWRITEBYTECODE="1")


def _run(cmd: Sequence[str], cwd: Path, what: str, source: Path) -> str:
    try:
        proc = subprocess.run(list(cmd), cwd=cwd, env=_env(), capture_output=True, text=True)
    except OSError as exc:
        raise InputError(f"{source}: cannot run {Path(cmd[0]).name} ({exc})") from None
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
        first = next((ln for ln in lines if ln.startswith("Error")), None) \
            or next((ln for ln in reversed(lines) if "rror" in ln), None) or (lines[-1] if lines else "no output")
        raise InputError(f"{source}: {what} failed (exit {proc.returncode}): {first}")
    return out


def _open_maybe_compressed(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")
    if path.name.endswith(".bz2"):
        return bz2.open(path, "rb")
    return open(path, "rb")


def check_osm_file(osm_file: Path) -> Path:
    """Check that ``osm_file`` exists and is OSM XML (root element ``<osm>``; ``.gz``/``.bz2`` allowed).

    :raises InputError: missing, unreadable, not XML or not OSM XML (the message names the file).
    """
    osm_file = Path(osm_file).expanduser()
    if not osm_file.is_file():
        raise InputError(f"{osm_file}: OSM file not found")
    try:
        with _open_maybe_compressed(osm_file) as fh:
            for _, elem in ET.iterparse(fh, events=("start",)):
                if elem.tag != "osm":
                    raise InputError(f"{osm_file}: not OSM XML (root element <{elem.tag}>, expected <osm>)")
                return osm_file
    except ET.ParseError as exc:
        raise InputError(f"{osm_file}: not OSM XML (not valid XML: {exc})") from None
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise InputError(f"{osm_file}: cannot read as OSM XML ({exc})") from None
    raise InputError(f"{osm_file}: not OSM XML (empty document)")


def lima_typemap_xml() -> str:
    """The Lima speed map: a netconvert type file that only overrides the speeds of SUMO's OSM typemap.

    netconvert merges type files given later into the earlier ones attribute by attribute, so lanes,
    priorities and permissions stay those of ``osmNetconvert.typ.xml``.
    """
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             "<!-- Lima speed limits (DS 025-2021-MTC) for ways without a maxspeed tag; loaded after",
             "     SUMO's osmNetconvert.typ.xml, whose other attributes stay. Written by networks/osm_import.py -->",
             "<types>"]
    for highway, kmh in LIMA_SPEEDS_KMH.items():
        lines.append(f'    <type id="highway.{highway}" speed="{kmh / 3.6:.2f}"/>  <!-- {kmh:g} km/h -->')
    lines.append("</types>")
    return "\n".join(lines) + "\n"


def _strip_header_comment(path: Path) -> None:
    """Drop the provenance comment SUMO tools write (absolute paths, date) so rebuilds are identical."""
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"(\?>\s*)<!--.*?-->\s*", r"\1", text, count=1, flags=re.S), encoding="utf-8")


def passenger_lane_km(net_file: Path) -> float:
    """Total length of the non-internal lanes cars may use, km."""
    total = 0.0
    root = ET.parse(net_file).getroot()
    for edge in root.iter("edge"):
        if edge.get("function") in ("internal", "crossing", "walkingarea"):
            continue
        for lane in edge.iter("lane"):
            allow, disallow = lane.get("allow"), lane.get("disallow", "")
            if (allow is not None and "passenger" not in allow.split()) or "passenger" in disallow.split():
                continue
            total += float(lane.get("length", 0.0))
    return total / 1000.0


def _netconvert_cmd(osm_name: str, typemaps: str, net_name: str) -> list[str]:
    cmd = [sumo_binary("netconvert"), "--osm-files", osm_name, "--type-files", typemaps]
    for flag, value, _ in NETCONVERT_OPTIONS:
        cmd += [flag, value]
    return cmd + ["--output-file", net_name]


def import_osm(osm_file: Path, name: str, out_dir: Path, seed: int = 0, demand_veh_per_hour: float | None = None,
               end_s: float = 3600.0) -> Path:
    """Build a controllable network folder from an OSM extract.

    :param osm_file: the OSM XML extract (``.osm``, ``.osm.gz`` or ``.osm.bz2``).
    :param name: network name (letters, digits, ``_``, ``-``, ``.``); the net is ``{name}.net.xml``.
    :param out_dir: the network folder to write (created; files of the same names are replaced).
    :param seed: random seed of the demand (randomTrips and duarouter).
    :param demand_veh_per_hour: random demand, vehicles per hour (default:
        :data:`DEFAULT_VEH_PER_LANE_KM_HOUR` x the network's lane-km).
    :param end_s: scenario horizon, seconds (departures in ``[0, end_s)``).
    :return: the network folder (loadable with :func:`networks.catalog.load_network`).
    :raises InputError: not an OSM file, netconvert failure, a light whose program cannot be derived,
        no routable demand or bad arguments (one line, naming the file).
    """
    osm_file = check_osm_file(osm_file)
    if not _NAME_RE.fullmatch(name or ""):
        raise InputError(f"network name {name!r}: use letters, digits, '_', '-' and '.' (it names the files)")
    if not end_s > 0:
        raise InputError(f"{osm_file}: end {end_s:g} s must be after begin 0 s")
    if demand_veh_per_hour is not None and not demand_veh_per_hour > 0:
        raise InputError(f"{osm_file}: demand {demand_veh_per_hour:g} veh/h must be positive")
    out_dir = Path(out_dir).expanduser().resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    net_name = f"{name}.net.xml"
    net_file = out_dir / net_name

    # 1. the net
    (out_dir / "lima.typ.xml").write_text(lima_typemap_xml(), encoding="utf-8")
    osm_typemap = sumo_home() / "data" / "typemap" / "osmNetconvert.typ.xml"
    if not osm_typemap.is_file():
        raise InputError(f"{osm_typemap}: SUMO's OSM typemap not found (is the eclipse-sumo wheel complete?)")
    _run(_netconvert_cmd(str(osm_file.resolve()), f"{osm_typemap},lima.typ.xml", net_name), out_dir,
         "netconvert", osm_file)
    _strip_header_comment(net_file)

    # 2. intersections and detectors
    from networks.derive import derive_intersections, write_intersection_file
    from networks.detectors import write_detector_additional

    tl_ids = [e.get("id") for e in ET.parse(net_file).getroot().iter("tlLogic")]
    if not tl_ids:
        raise InputError(f"{osm_file}: no traffic lights in the imported network: map the signals as "
                         "highway=traffic_signals nodes (none survived the import)")
    try:
        inters = derive_intersections(net_file)
    except InputError as exc:
        match = re.search(r"traffic light '([^']+)'", str(exc))
        which = f"the program netconvert built for traffic light {match.group(1)!r}" if match \
            else "a traffic-light program netconvert built"
        raise InputError(f"{osm_file}: {which} cannot be used ({exc}); the net is kept in {net_file} "
                         "for inspection") from None
    write_intersection_file(inters, out_dir / "intersections.derived.json", source=net_name)
    write_detector_additional(inters, out_dir / "detectors.add.xml")

    # 3. random demand
    lane_km = passenger_lane_km(net_file)
    vph = float(demand_veh_per_hour) if demand_veh_per_hour is not None else \
        max(60.0, round(DEFAULT_VEH_PER_LANE_KM_HOUR * lane_km))
    period = 3600.0 / vph
    trips, routes = f"{SCENARIO}.trips.xml", f"{SCENARIO}.rou.xml"
    random_trips = sumo_home() / "tools" / "randomTrips.py"
    _run([sys.executable, str(random_trips), "-n", net_name, "-o", trips, "--seed", str(int(seed)),
          "--begin", "0", "--end", f"{end_s:g}", "--period", f"{period:.6f}", "--binomial", str(BINOMIAL_N),
          "--fringe-factor", f"{FRINGE_FACTOR:g}", "--vclass", "passenger", "--prefix", "r",
          # no validation run inside randomTrips (it would leave a routes.rou.xml): duarouter below drops
          # unroutable trips itself
          "--no-validate",
          "--trip-attributes", 'departLane="best" departSpeed="max"'], out_dir, "randomTrips.py", osm_file)
    _strip_header_comment(out_dir / trips)
    _run([sumo_binary("duarouter"), "-n", net_name, "-r", trips, "-o", routes, "--seed", str(int(seed)),
          "--ignore-errors", "true", "--no-step-log", "true", "--no-warnings", "true",
          "--routing-algorithm", "dijkstra", "--write-license", "false"], out_dir, "duarouter", osm_file)
    _strip_header_comment(out_dir / routes)
    alt = out_dir / f"{SCENARIO}.rou.alt.xml"
    if alt.exists():
        alt.unlink()
    departs = [float(v.get("depart")) for v in ET.parse(out_dir / routes).getroot().iter("vehicle")]
    if not departs:
        raise InputError(f"{osm_file}: no routable random trips in the imported network ({lane_km:.2f} lane-km)")
    if departs != sorted(departs):  # duarouter writes in depart order; a safety net for the contract
        raise InputError(f"{out_dir / routes}: vehicles not sorted by depart")

    # 4. network.yaml, sumocfg, README
    description = (f"random uncalibrated demand: randomTrips seed {seed}, about {vph:g} veh/h offered, "
                   f"{len(departs)} routed vehicles in 0-{end_s:g} s")
    (out_dir / "network.yaml").write_text(
        f"# {name}: imported from {osm_file.name} by `ondaverde networks import-osm` (networks/osm_import.py)\n"
        "# OSM data (c) OpenStreetMap contributors, ODbL: do not commit unless the licence allows.\n"
        f"name: {name}\n"
        f"net: {net_name}\n"
        f"description: \"imported from OSM extract {osm_file.name}; Lima speed map, OSM-mapped signals\"\n"
        f"default_scenario: {SCENARIO}\n"
        "scenarios:\n"
        f"  {SCENARIO}:\n"
        f"    routes: [{routes}]\n"
        "    begin: 0\n"
        f"    end: {end_s:g}\n"
        f"    description: \"{description}\"\n", encoding="utf-8")
    (out_dir / f"{SCENARIO}.sumocfg").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<configuration>\n    <input>\n'
        f'        <net-file value="{net_name}"/>\n        <route-files value="{routes}"/>\n'
        '        <additional-files value="detectors.add.xml"/>\n    </input>\n    <time>\n'
        f'        <begin value="0"/>\n        <end value="{end_s:g}"/>\n    </time>\n</configuration>\n',
        encoding="utf-8")
    (out_dir / "README.md").write_text(_readme(name, osm_file.name, net_name, inters, lane_km, vph, len(departs),
                                               seed, end_s), encoding="utf-8")
    return out_dir


def _readme(name: str, source: str, net_name: str, inters: list, lane_km: float, vph: float, vehicles: int,
            seed: int, end_s: float) -> str:
    opts = "\n".join(f"* `{flag} {value}`: {why}" for flag, value, why in NETCONVERT_OPTIONS)
    speeds = ", ".join(f"{k} {v:g}" for k, v in LIMA_SPEEDS_KMH.items())
    lights = ", ".join(f"`{i.id}` ({len(i.links)} links, {len(i.phases)} phases)" for i in inters)
    return f"""# {name} - imported from OpenStreetMap

**Source.** `{source}` (an OpenStreetMap extract supplied by the user), converted by
`ondaverde networks import-osm` (`networks/osm_import.py`) with SUMO's netconvert.

**Licence.** OpenStreetMap data is (c) OpenStreetMap contributors and available under the Open Database
Licence (ODbL 1.0). `{net_name}` and the files derived from it are a derived database under ODbL as well.
**Do not commit the extract or this folder** to a repository unless its licence allows it (ODbL needs
attribution and share-alike); ondaverde never ships them.

**Speeds.** `--type-files osmNetconvert.typ.xml,lima.typ.xml`: ways without a `maxspeed` tag get Lima's
limits (km/h: {speeds}) instead of SUMO's defaults (100 km/h for an untagged avenue); an explicit `maxspeed` tag
still wins; `maxspeed=none` gets {SPEEDLIMIT_NONE_KMH:g} km/h.

**netconvert options.**
{opts}

No sidewalks or crosswalks are built (cars only).

**Traffic lights.** {len(inters)}: {lights}. The programs are netconvert's fixed-time guesses, not field
plans; the intersections derived from them are in `intersections.derived.json`, the detectors in
`detectors.add.xml`. OSM signal tagging is volunteer work: check the lights against street imagery.

**Demand (`{SCENARIO}`, 0-{end_s:g} s).** Random, **uncalibrated**: `randomTrips.py --seed {seed}
--fringe-factor {FRINGE_FACTOR:g} --binomial {BINOMIAL_N}` at about {vph:g} veh/h (network: {lane_km:.2f}
lane-km of car lanes), routed by duarouter (shortest paths): {vehicles} vehicles in `{SCENARIO}.rou.xml`
(recipe: `{SCENARIO}.trips.xml`). Replace it with counted demand before drawing conclusions.

**Run.** `ondaverde simulate --network path/to/this/folder --controller actuated`, or
`sumo -c {SCENARIO}.sumocfg` for the net's own fixed programs.
"""


def _network_description(spec) -> str:
    source = spec.folder / "network.yaml"
    try:
        import yaml

        text = source.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except Exception:  # noqa: BLE001 - load_network already validated it; fall back to scenario text
        text, data = "", None
    if isinstance(data, dict) and isinstance(data.get("description"), str):
        return data["description"]
    first = text.splitlines()[0] if text else ""
    match = re.match(rf"#\s*{re.escape(spec.name)}\s*:\s*(.+)", first)
    if match:
        return match.group(1).strip()
    return spec.scenario().description


def list_networks() -> list[tuple[str, list[str], str]]:
    """Every bundled network: ``(name, scenario names, description)``, for ``ondaverde networks list``.

    The description is ``network.yaml``'s ``description`` key, else its first comment line
    (``# name: description``), else the default scenario's description.
    """
    from networks.catalog import bundled_networks, load_network

    result = []
    for net_name in bundled_networks():
        spec = load_network(net_name)
        result.append((spec.name, sorted(spec.scenarios), _network_description(spec)))
    return result

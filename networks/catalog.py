"""The network catalogue: bundled networks, self-describing network folders and bring-your-own SUMO files.

A network folder holds a ``network.yaml``::

    name: grid
    net: grid.net.xml                 # the SUMO network, relative to the folder
    intersections: overrides.yaml     # optional override file for networks.derive
    default_scenario: base
    scenarios:
      base:
        routes: [base.rou.xml]        # route files, relative to the folder
        begin: 0                      # seconds
        end: 3600                     # seconds
        description: "one hour, west-east heavier"

Every bad input (missing file, bad YAML, unknown network or scenario) raises
:class:`~controller.errors.InputError` with a one-line message naming the file or value.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from controller.errors import InputError

#: Folder holding the bundled network folders (this package).
BUNDLED_DIR = Path(__file__).resolve().parent
#: The network used when none is named (its default scenario: am-peak).
DEFAULT_NETWORK = "miraflores"
#: Name of the self-description file in a network folder.
NETWORK_FILE = "network.yaml"

_TOP_KEYS = frozenset({"name", "net", "intersections", "default_scenario", "scenarios", "description"})
_SCENARIO_KEYS = frozenset({"routes", "begin", "end", "description"})


@dataclass(frozen=True)
class ScenarioSpec:
    """One demand scenario of a network.

    :param name: scenario name (e.g. ``base``).
    :param route_files: SUMO route files (absolute paths), loaded in this order.
    :param begin_s: simulation begin, seconds.
    :param end_s: simulation end (end of the evaluation horizon), seconds.
    :param description: free text.
    """

    name: str
    route_files: tuple[Path, ...]
    begin_s: float
    end_s: float
    description: str = ""

    def __post_init__(self) -> None:
        begin, end = self.begin_s, self.end_s
        for what, value in (("begin", begin), ("end", end)):
            if not math.isfinite(value):
                raise InputError(f"scenario {self.name!r}: {what} {value!r} is not a finite number of seconds")
        if begin < 0:
            raise InputError(f"scenario {self.name!r}: begin {begin:g} s is negative (SUMO's clock starts at 0)")
        if not end > begin:
            raise InputError(f"scenario {self.name!r}: end {end:g} s must be after begin {begin:g} s")

    @property
    def duration_s(self) -> float:
        """Length of the scenario, seconds."""
        return self.end_s - self.begin_s


@dataclass(frozen=True)
class NetworkSpec:
    """A controllable network: the SUMO net, its scenarios and optional intersection overrides.

    :param name: network name.
    :param folder: folder the relative paths were resolved against.
    :param net_file: the SUMO ``.net.xml`` (absolute path).
    :param scenarios: scenarios by name.
    :param default_scenario: name of the scenario used when none is named.
    :param override_file: optional override file for :func:`networks.derive.derive_intersections`.
    :param additional_files: SUMO additional files every run loads before the project's own (a ``.sumocfg``'s
        ``additional-files``: vehicle types, stops, detectors, signal programs); a ``tlLogic`` in them replaces
        the net's program for that light, as in SUMO, where the program loaded last is the one that runs.
    """

    name: str
    folder: Path
    net_file: Path
    scenarios: dict[str, ScenarioSpec] = field(hash=False)
    default_scenario: str
    override_file: Path | None = None
    additional_files: tuple[Path, ...] = ()

    def scenario(self, name: str | None = None) -> ScenarioSpec:
        """A scenario by name (the default scenario when ``name`` is None).

        :param name: scenario name.
        :raises InputError: unknown scenario (the message lists the known ones).
        """
        key = self.default_scenario if name is None else name
        if key not in self.scenarios:
            several = "; several scenarios go to evaluate --scenarios" if "," in key else ""
            raise InputError(f"network {self.name!r}: unknown scenario {key!r} "
                             f"(known: {', '.join(sorted(self.scenarios)) or 'none'}{several})")
        return self.scenarios[key]

    def with_horizon(self, begin_s: float | None = None, end_s: float | None = None,
                     only: Iterable[str] | None = None) -> NetworkSpec:
        """A copy whose scenarios run from ``begin_s`` to ``end_s`` (None keeps each scenario's own).

        :param begin_s: new simulation begin, seconds.
        :param end_s: new simulation end (horizon), seconds.
        :param only: the scenarios to change (None: all); the others keep their own horizon.
        :raises InputError: when a resulting end is not after its begin.
        """
        chosen = None if only is None else set(only)
        scenarios = {}
        for key, sc in self.scenarios.items():
            if chosen is not None and key not in chosen:
                scenarios[key] = sc
                continue
            begin = sc.begin_s if begin_s is None else float(begin_s)
            end = sc.end_s if end_s is None else float(end_s)
            if not end > begin:
                raise InputError(f"network {self.name!r} scenario {key!r}: end {end:g} s must be after begin {begin:g} s")
            scenarios[key] = replace(sc, begin_s=begin, end_s=end)
        return replace(self, scenarios=scenarios)

    def intersections(self) -> list:
        """The derived intersections of this network (with overrides applied).

        :return: list of :class:`controller.intersection.Intersection`.
        """
        from networks.derive import derive_intersections

        return derive_intersections(self.net_file, self.override_file, self.additional_files)


def _check_file(path: Path, what: str, source: Path | str) -> Path:
    if not path.is_file():
        raise InputError(f"{source}: {what} {path} not found")
    return path


def _seconds(value: Any, key: str, source: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{source}: {key} must be a number of seconds, got {value!r}")
    return float(value)


def _scenario(name: str, spec: Any, folder: Path, source: Path) -> ScenarioSpec:
    where = f"scenario {name!r}"
    if not isinstance(spec, dict):
        raise InputError(f"{source}: {where} must be a mapping with routes, begin and end")
    unknown = sorted(set(map(str, spec)) - _SCENARIO_KEYS)
    if unknown:
        raise InputError(f"{source}: {where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(_SCENARIO_KEYS))})")
    routes = spec.get("routes")
    if isinstance(routes, str):
        routes = [routes]
    if not isinstance(routes, list) or not routes or not all(isinstance(r, str) for r in routes):
        raise InputError(f"{source}: {where}: routes must be a non-empty list of file names")
    files = tuple(_check_file((folder / r).resolve(), f"{where} route file", source) for r in routes)
    begin = _seconds(spec.get("begin", 0), f"{where} begin", source)
    if "end" not in spec:
        raise InputError(f"{source}: {where}: end (seconds) is missing")
    end = _seconds(spec["end"], f"{where} end", source)
    if end <= begin:
        raise InputError(f"{source}: {where}: end {end:g} s must be after begin {begin:g} s")
    return ScenarioSpec(str(name), files, begin, end, str(spec.get("description", "")))


def load_network_folder(folder: Path) -> NetworkSpec:
    """Read a network folder's ``network.yaml``.

    :param folder: the folder (or the ``network.yaml`` file itself).
    :raises InputError: missing or malformed ``network.yaml``, missing referenced files, bad values.
    """
    folder = Path(folder)
    source = folder if folder.is_file() else folder / NETWORK_FILE
    folder = source.parent
    if not source.is_file():
        raise InputError(f"{source}: not found (a network folder needs a {NETWORK_FILE})")
    import yaml

    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{source}: cannot read ({exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"{source}: not valid YAML{where} ({getattr(exc, 'problem', None) or type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a mapping with name, net and scenarios")
    unknown = sorted(set(map(str, data)) - _TOP_KEYS)
    if unknown:
        raise InputError(f"{source}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(_TOP_KEYS))})")
    if not isinstance(data.get("net"), str):
        raise InputError(f"{source}: 'net' (the .net.xml file name) is missing")
    net_file = _check_file((folder / data["net"]).resolve(), "net file", source)
    override = data.get("intersections")
    override_file = None
    if override is not None:
        if not isinstance(override, str):
            raise InputError(f"{source}: 'intersections' must be a file name")
        override_file = _check_file((folder / override).resolve(), "intersections override file", source)
    scen = data.get("scenarios")
    if not isinstance(scen, dict) or not scen:
        raise InputError(f"{source}: 'scenarios' must map at least one scenario name to routes/begin/end")
    scenarios = {str(k): _scenario(str(k), v, folder, source) for k, v in scen.items()}
    default = str(data.get("default_scenario", next(iter(scenarios))))
    if default not in scenarios:
        raise InputError(f"{source}: default_scenario {default!r} is not one of the scenarios "
                         f"({', '.join(sorted(scenarios))})")
    name = str(data.get("name", folder.name))
    return NetworkSpec(name, folder.resolve(), net_file, scenarios, default, override_file)


def bundled_networks() -> list[str]:
    """Names of the networks shipped with ondaverde (folders of this package holding a ``network.yaml``)."""
    return sorted(p.parent.name for p in BUNDLED_DIR.glob(f"*/{NETWORK_FILE}"))


def load_network(name_or_path: str | Path) -> NetworkSpec:
    """Resolve a bundled network name (``"grid"``), a path to a network folder / ``network.yaml``, or a SUMO
    ``.sumocfg`` (:func:`network_from_sumocfg`, its own begin and end).

    :param name_or_path: bundled name (a plain name wins over a same-named folder in the working
        directory; write ``./grid`` for that), path of a folder holding ``network.yaml`` (or of the file), or of
        a ``.sumocfg``.
    :raises InputError: unknown name, missing folder or a bad ``network.yaml`` or configuration.
    """
    text = str(name_or_path)
    if not isinstance(name_or_path, Path) and "/" not in text and "\\" not in text and text in bundled_networks():
        return load_network_folder(BUNDLED_DIR / text)
    if text.endswith(".sumocfg"):
        return network_from_sumocfg(Path(text))
    path = Path(text).expanduser()
    if path.is_dir() or path.is_file():
        return load_network_folder(path)
    raise InputError(f"unknown network {text!r}: not a bundled network ({', '.join(bundled_networks()) or 'none'}) "
                     "and no such folder")


def network_from_files(net: Path, routes: Sequence[Path], begin_s: float = 0.0, end_s: float = 3600.0,
                       name: str | None = None, override_file: Path | None = None) -> NetworkSpec:
    """A network from bring-your-own SUMO files (``--net/--routes``), with one scenario ``main``.

    :param net: SUMO ``.net.xml``.
    :param routes: route files (may be empty when demand comes from elsewhere, e.g. TraCI).
    :param begin_s: simulation begin, seconds.
    :param end_s: simulation end, seconds.
    :param name: network name (default: the net file name without ``.net.xml``).
    :param override_file: optional intersection override file.
    :raises InputError: missing files or end not after begin.
    """
    net = _check_file(Path(net).expanduser().resolve(), "net file", "--net")
    files = tuple(_check_file(Path(r).expanduser().resolve(), "route file", "--routes") for r in routes)
    if override_file is not None:
        override_file = _check_file(Path(override_file).expanduser().resolve(), "intersections override file",
                                    "--intersections")
    if not end_s > begin_s:
        raise InputError(f"end {end_s:g} s must be after begin {begin_s:g} s")
    stem = name or net.name.removesuffix(".gz").removesuffix(".xml").removesuffix(".net")
    scenario = ScenarioSpec("main", files, float(begin_s), float(end_s), "from command-line files")
    return NetworkSpec(stem, net.parent, net, {"main": scenario}, "main", override_file)


def _cfg_value(root: ET.Element, *keys: str) -> str | None:
    for key in keys:
        for elem in root.iter(key):
            if "value" in elem.attrib:
                return elem.get("value")
    return None


def _cfg_time(value: str | None, key: str, cfg: Path) -> float | None:
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    try:
        if ":" in text:  # SUMO also accepts [[d:]h:]m:s
            total = 0.0
            for part in text.split(":"):
                total = total * 60 + float(part)
            return total
        return float(text)
    except ValueError:
        raise InputError(f"{cfg}: {key} {value!r} is not a time in seconds") from None


def _is_generated_detector_file(path: Path) -> bool:
    """True for a detector file this project wrote (the bundled configurations load one for plain ``sumo``): every
    run writes its own, with the aggregation period it reads at, so loading it again would declare each twice."""
    from networks.detectors import GENERATED_MARK

    with open(path, "rb") as fh:
        return GENERATED_MARK.encode() in fh.read(512)


def network_from_sumocfg(cfg: Path, begin_s: float | None = None, end_s: float | None = None) -> NetworkSpec:
    """A network from a ``.sumocfg``: its net-file, route-files and additional-files (comma/space separated,
    relative to the config's folder) and begin/end; one scenario named after the config.

    :param cfg: the SUMO configuration file.
    :param begin_s: overrides the config's begin, seconds (default: the config's, else 0).
    :param end_s: overrides the config's end, seconds (default: the config's, else 3600).
    :raises InputError: missing/malformed config, no net-file, missing referenced files.
    """
    cfg = Path(cfg).expanduser()
    if not cfg.is_file():
        raise InputError(f"{cfg}: SUMO configuration not found")
    try:
        root = ET.parse(cfg).getroot()
    except ET.ParseError as exc:
        raise InputError(f"{cfg}: not valid XML ({exc})") from None
    except OSError as exc:
        raise InputError(f"{cfg}: cannot read ({exc})") from None
    folder = cfg.resolve().parent
    net_value = _cfg_value(root, "net-file", "n")
    if not net_value:
        raise InputError(f"{cfg}: no net-file in this SUMO configuration")
    net = _check_file((folder / net_value.strip()).resolve(), "net file", cfg)
    route_value = _cfg_value(root, "route-files", "r") or ""
    routes = tuple(_check_file((folder / r).resolve(), "route file", cfg)
                   for r in route_value.replace(",", " ").split() if r)
    additional_value = _cfg_value(root, "additional-files", "a") or ""
    additional = tuple(f for f in (_check_file((folder / a).resolve(), "additional file", cfg)
                                   for a in additional_value.replace(",", " ").split() if a)
                       if not _is_generated_detector_file(f))
    begin = begin_s if begin_s is not None else _cfg_time(_cfg_value(root, "begin", "b"), "begin", cfg)
    end = end_s if end_s is not None else _cfg_time(_cfg_value(root, "end", "e"), "end", cfg)
    begin = 0.0 if begin is None else float(begin)
    end = 3600.0 if end is None else float(end)
    if not end > begin:
        raise InputError(f"{cfg}: end {end:g} s must be after begin {begin:g} s")
    name = cfg.name.removesuffix(".sumocfg")
    scenario = ScenarioSpec(name, routes, begin, end, f"from {cfg.name}")
    return NetworkSpec(name, folder, net, {name: scenario}, name, None, additional)


def _tl_link_count(net_file: Path) -> int:
    """Total signal-state length over the net's traffic lights (streamed, no derivation)."""
    from networks.derive import _open  # gzip-aware

    total, seen = 0, set()
    try:
        with _open(net_file) as fh:
            for _, elem in ET.iterparse(fh, events=("end",)):
                if elem.tag == "tlLogic" and elem.get("id") not in seen:
                    seen.add(elem.get("id"))
                    phase = elem.find("phase")
                    total += len(phase.get("state", "")) if phase is not None else 0
                if elem.tag in ("edge", "junction", "connection", "tlLogic"):
                    elem.clear()
    except (ET.ParseError, OSError) as exc:
        raise InputError(f"{net_file}: not a readable SUMO network ({exc})") from None
    return total


def largest_bundled_network() -> str:
    """Name of the bundled network with the most traffic-light links (ties: alphabetical)."""
    names = bundled_networks()
    if not names:
        raise InputError(f"no bundled networks under {BUNDLED_DIR}")
    return max(names, key=lambda n: (_tl_link_count(load_network(n).net_file), [-ord(c) for c in n]))

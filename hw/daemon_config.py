"""The live daemon's configuration (``ondaverde run CONFIG.yaml``): read, checked as a whole, every problem listed.

Example::

    network: miraflores            # where the intersection descriptions come from (bundled name or folder)
    cycle_s: 1.0                   # decision cycle, seconds
    event_log: events.sqlite       # durable hi-res event log (SQLite, WAL)
    status: 127.0.0.1:18080        # read-only HTTP status and Prometheus metrics (optional)
    night_flash: "23:00-05:00"     # scheduled flash, local time (optional; per intersection too)
    intersections:
      - id: J1                     # traffic-light id in the network
        backend: modbus            # modbus | ntcip
        address: 127.0.0.1:15020
        unit: 1                    # Modbus device id (modbus only)
        policy: actuated           # fixed | webster | actuated | maxpressure | rl
        policy_file: rl-policy.npz # for rl (default: the network folder's)
        timeout_s: 1.0
        radar: 127.0.0.1:15030     # approach radar tracks over Modbus TCP (optional): dilemma-zone protection,
        radar_unit: 1              #   approach-speed records (layout: hw/radar_feed.py)
      - id: J2
        backend: ntcip
        address: 127.0.0.1:16161
        snmp: {version: v3, user: ntcip, auth_key: ..., priv_key: ...}
        preemption: true           # emergency-vehicle preemption (layout: hw/priority_config.py)
        transit_priority: {max_extension_s: 10, condition: always}
        detector_health: {chatter_changes: 40, stuck_on_s: 300, recall: min}   # thresholds (optional; the
                                   #   keys of controller.detector_health.HealthSettings; top level too)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from controller.detector_health import HealthSettings
from controller.errors import InputError

BACKENDS = ("modbus", "ntcip")
_TOP = {"network", "cycle_s", "event_log", "status", "intersections", "night_flash", "detector_health"}
_INTERSECTION = {"id", "backend", "address", "unit", "policy", "policy_file", "timeout_s", "retries", "snmp",
                 "modbus_map", "night_flash", "radar", "radar_unit", "preemption", "transit_priority",
                 "detector_health"}
_SNMP = {"version", "read_community", "write_community", "user", "auth_key", "priv_key"}


class ConfigError(InputError):
    """A configuration with problems: the message lists every one as ``path: reason``."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem{'s' if len(problems) > 1 else ''}: "
                         + "; ".join(problems))


@dataclass(frozen=True)
class SnmpSettings:
    """SNMP access of an NTCIP intersection (see :class:`hw.ntcip_field.SnmpAccess`)."""

    version: str = "v2c"
    read_community: str = "public"
    write_community: str = "private"
    user: str = "ntcip"
    auth_key: str = "ondaverde-auth"
    priv_key: str = "ondaverde-priv"


@dataclass(frozen=True)
class IntersectionConfig:
    """One intersection the daemon drives.

    :param id: traffic-light id in the network.
    :param backend: ``modbus`` or ``ntcip``.
    :param host: controller address.
    :param port: controller port (TCP for Modbus, UDP for NTCIP).
    :param unit: Modbus device id.
    :param policy: the policy's name.
    :param policy_file: trained policy for ``rl``.
    :param timeout_s: seconds to wait for each answer.
    :param retries: protocol retries per request.
    :param snmp: SNMP access (NTCIP).
    :param modbus_map: site register map file (Modbus).
    :param night_flash: (start, end) minutes after local midnight of scheduled flash, or None.
    :param radar: (host, port) of the approach radar's Modbus TCP track feed, or None.
    :param radar_unit: the radar's Modbus device id.
    :param preemption: the preempt plans (the cabinet runs the same), or None for no preemption.
    :param transit_priority: transit priority settings, or None for none.
    :param detector_health: the detector health thresholds (stuck on, stuck off, chattering, recovery, recall).
    """

    id: str
    backend: str
    host: str
    port: int
    unit: int = 1
    policy: str = "actuated"
    policy_file: str | None = None
    timeout_s: float = 1.0
    retries: int = 0
    snmp: SnmpSettings = field(default_factory=SnmpSettings)
    modbus_map: str | None = None
    night_flash: tuple[int, int] | None = None
    radar: tuple[str, int] | None = None
    radar_unit: int = 1
    preemption: tuple | None = None
    transit_priority: object | None = None
    detector_health: HealthSettings = field(default_factory=HealthSettings)


@dataclass(frozen=True)
class DaemonConfig:
    """The whole configuration.

    :param network: network name or folder.
    :param intersections: the intersections driven.
    :param cycle_s: decision cycle, seconds.
    :param event_log: the event log file.
    :param status: ``host:port`` of the status endpoint, or None.
    """

    network: str
    intersections: tuple[IntersectionConfig, ...]
    cycle_s: float = 1.0
    event_log: str = "events.sqlite"
    status: tuple[str, int] | None = None


def _window(text, path: str, problems: list[str]) -> tuple[int, int] | None:
    """``"HH:MM-HH:MM"`` → (start, end) minutes after midnight (the window may run past midnight)."""
    try:
        start, end = str(text).split("-")
        minutes = []
        for part in (start, end):
            hours, mins = part.strip().split(":")
            if not (0 <= int(hours) < 24 and 0 <= int(mins) < 60):
                raise ValueError
            minutes.append(60 * int(hours) + int(mins))
    except ValueError:
        problems.append(f"{path}: {text!r} is not a time window like 23:00-05:00")
        return None
    if minutes[0] == minutes[1]:
        problems.append(f"{path}: {text!r} is an empty window")
        return None
    return minutes[0], minutes[1]


def _address(text, path: str, problems: list[str]) -> tuple[str, int] | None:
    if not isinstance(text, str) or text.count(":") != 1:
        problems.append(f"{path}: {text!r} is not host:port")
        return None
    host, port = text.split(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        problems.append(f"{path}: {text!r} is not host:port with a port in 1..65535")
        return None
    return host, int(port)


def parse_config(data, source: str = "config") -> DaemonConfig:
    """Check a loaded YAML document and build the configuration.

    :raises ConfigError: listing every problem found (field path and reason).
    """
    from controller.policies.registry import POLICIES
    from envs.simulation import intersections_of
    from networks.catalog import load_network

    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError(source, ["(top): a mapping with network and intersections is expected"])
    for key in sorted(set(data) - _TOP):
        problems.append(f"{key}: unknown setting (known: {', '.join(sorted(_TOP))})")
    from hw.priority_config import parse_preemption, parse_transit

    known_lights: set[str] | None = None
    by_id: dict = {}
    network = data.get("network")
    if not isinstance(network, str) or not network:
        problems.append("network: required, a bundled network name or a network folder")
    else:
        try:
            by_id = {i.id: i for i in intersections_of(load_network(network))}
            known_lights = set(by_id)
        except InputError as exc:
            problems.append(f"network: {exc}")
    cycle = data.get("cycle_s", 1.0)
    if isinstance(cycle, bool) or not isinstance(cycle, (int, float)) or not 0.005 <= cycle <= 60:
        problems.append(f"cycle_s: {cycle!r} is not a number of seconds in 0.005..60")
    log = data.get("event_log", "events.sqlite")
    if not isinstance(log, str) or not log:
        problems.append(f"event_log: {log!r} is not a file path")
    night = _window(data["night_flash"], "night_flash", problems) if data.get("night_flash") is not None else None
    health = _health(data.get("detector_health"), "detector_health", HealthSettings(), problems)
    status = None
    if data.get("status") is not None:
        status = _address(data["status"], "status", problems)
    items = data.get("intersections")
    lights: list[IntersectionConfig] = []
    if not isinstance(items, list) or not items:
        problems.append("intersections: required, a list of at least one intersection")
        items = []
    seen: set[str] = set()
    for k, item in enumerate(items):
        where = f"intersections[{k}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: a mapping is expected")
            continue
        for key in sorted(set(item) - _INTERSECTION):
            problems.append(f"{where}.{key}: unknown setting (known: {', '.join(sorted(_INTERSECTION))})")
        light = item.get("id")
        if not isinstance(light, str) or not light:
            problems.append(f"{where}.id: required, the traffic-light id")
        elif light in seen:
            problems.append(f"{where}.id: {light!r} is listed twice")
        elif known_lights is not None and light not in known_lights:
            problems.append(f"{where}.id: no traffic light {light!r} in {network}")
        seen.add(light if isinstance(light, str) else "")
        backend = item.get("backend")
        if backend not in BACKENDS:
            problems.append(f"{where}.backend: {backend!r} is not one of {', '.join(BACKENDS)}")
        address = _address(item.get("address"), f"{where}.address", problems)
        unit = item.get("unit", 1)
        if isinstance(unit, bool) or not isinstance(unit, int) or not 1 <= unit <= 247:
            problems.append(f"{where}.unit: {unit!r} is not a Modbus device id in 1..247")
        policy = item.get("policy", "actuated")
        if policy not in POLICIES and policy != "rl":
            problems.append(f"{where}.policy: {policy!r} is not one of {', '.join(sorted(POLICIES) + ['rl'])}")
        policy_file = item.get("policy_file")
        if policy_file is not None and (not isinstance(policy_file, str) or not Path(policy_file).is_file()):
            problems.append(f"{where}.policy_file: {policy_file!r} is not a file")
        timeout = item.get("timeout_s", 1.0)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 30:
            problems.append(f"{where}.timeout_s: {timeout!r} is not a number of seconds in (0, 30]")
        retries = item.get("retries", 0)
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 5:
            problems.append(f"{where}.retries: {retries!r} is not a whole number in 0..5")
        snmp_data = item.get("snmp", {}) or {}
        snmp = SnmpSettings()
        if not isinstance(snmp_data, dict):
            problems.append(f"{where}.snmp: a mapping is expected")
        else:
            for key in sorted(set(snmp_data) - _SNMP):
                problems.append(f"{where}.snmp.{key}: unknown setting (known: {', '.join(sorted(_SNMP))})")
            if snmp_data.get("version", "v2c") not in ("v1", "v2c", "v3"):
                problems.append(f"{where}.snmp.version: {snmp_data.get('version')!r} is not v1, v2c or v3")
            for key in ("auth_key", "priv_key"):
                if key in snmp_data and (not isinstance(snmp_data[key], str) or len(snmp_data[key]) < 8):
                    problems.append(f"{where}.snmp.{key}: needs at least 8 characters")
            if not any(p.startswith(f"{where}.snmp") for p in problems):
                snmp = SnmpSettings(**{k: str(v) for k, v in snmp_data.items()})
        light_night = (_window(item["night_flash"], f"{where}.night_flash", problems)
                       if item.get("night_flash") is not None else night)
        modbus_map = item.get("modbus_map")
        if modbus_map is not None and (not isinstance(modbus_map, str) or not Path(modbus_map).is_file()):
            problems.append(f"{where}.modbus_map: {modbus_map!r} is not a file")
        radar = _address(item["radar"], f"{where}.radar", problems) if item.get("radar") is not None else None
        radar_unit = item.get("radar_unit", 1)
        if isinstance(radar_unit, bool) or not isinstance(radar_unit, int) or not 1 <= radar_unit <= 247:
            problems.append(f"{where}.radar_unit: {radar_unit!r} is not a Modbus device id in 1..247")
        preemption = parse_preemption(item.get("preemption"), f"{where}.preemption",
                                      by_id.get(light) if isinstance(light, str) else None, problems)
        transit = parse_transit(item.get("transit_priority"), f"{where}.transit_priority", problems)
        light_health = _health(item.get("detector_health"), f"{where}.detector_health", health, problems)
        if address is not None and isinstance(light, str) and backend in BACKENDS:
            lights.append(IntersectionConfig(light, backend, address[0], address[1], unit if isinstance(unit, int)
                                             else 1, policy if isinstance(policy, str) else "actuated",
                                             policy_file, float(timeout) if isinstance(timeout, (int, float))
                                             else 1.0, retries if isinstance(retries, int) else 0, snmp, modbus_map,
                                             light_night, radar, radar_unit if isinstance(radar_unit, int) else 1,
                                             preemption, transit, light_health))
    if problems:
        raise ConfigError(source, problems)
    return DaemonConfig(network, tuple(lights), float(cycle), log, status)


def load_config(path: Path | str) -> DaemonConfig:
    """Read and check a YAML configuration file.

    :raises InputError: for a missing or unreadable file; :class:`ConfigError` listing every problem.
    """
    from hw.yamlfile import read_yaml

    return parse_config(read_yaml(path, "configuration file"), str(path))


def _health(data, where: str, base: HealthSettings, problems: list[str]) -> HealthSettings:
    """Detector health thresholds: ``base`` with the keys given in ``data`` replaced (each checked)."""
    from dataclasses import fields, replace

    if data is None:
        return base
    if not isinstance(data, dict):
        problems.append(f"{where}: a mapping of thresholds is expected")
        return base
    known = {f.name for f in fields(HealthSettings)}
    for key in sorted(set(data) - known):
        problems.append(f"{where}.{key}: unknown setting (known: {', '.join(sorted(known))})")
    values = {}
    for key in sorted(set(data) & known):
        value = data[key]
        if key == "recall":
            if value not in ("min", "max"):
                problems.append(f"{where}.recall: {value!r} is not min or max")
                continue
        elif key in ("chatter_changes", "lane_mate_min_count"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                unit = "changes" if key == "chatter_changes" else "vehicles"
                problems.append(f"{where}.{key}: {value!r} is not a whole number of {unit}, 1 or more")
                continue
        elif key == "lane_mate_ratio":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 1:
                problems.append(f"{where}.lane_mate_ratio: {value!r} is not a ratio above 1")
                continue
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            unit = "mean gaps" if key == "stuck_off_gaps" else "seconds"
            problems.append(f"{where}.{key}: {value!r} is not a positive number of {unit}")
            continue
        values[key] = value if key in ("recall", "chatter_changes", "lane_mate_min_count") else float(value)
    return replace(base, **values)

"""Run metrics read from SUMO output, with the delay contract of ``design/architecture.md``.

The contract: per vehicle ``timeLoss + departDelay`` from SUMO's tripinfo, averaged over every vehicle
*scheduled* to depart inside the horizon ``[begin, end)``. Vehicles still driving at the end are included,
and a vehicle that never entered the network is charged ``end - scheduled depart``. A controller cannot
look good by keeping cars out (a max-pressure that starved a short side entry reported 40 s when only
inserted vehicles counted; the full count was 217 s).

What SUMO 1.28 writes (checked by running it; ``tests/test_metrics.py`` keeps it checked):

* arrived vehicle: ``depart`` = actual insertion time, ``departDelay`` = insertion − scheduled depart,
  ``arrival`` >= 0, ``vaporized=""`` (``"teleport"`` if removed by ``--time-to-teleport.remove``; the
  attribute is absent without ``write-unfinished``).
* still driving at the end (``--tripinfo-output.write-unfinished``): ``arrival="-1.00"``,
  ``duration`` = end − depart, ``timeLoss``/``waitingTime``/``waitingCount`` accumulated up to the end,
  ``vaporized="end"``.
* never inserted (``--tripinfo-output.write-undeparted``): ``depart="-1"``, ``departDelay`` =
  end − *scheduled* depart, ``timeLoss="0.00"``, ``duration="0.00"``, ``arrival="-1.00"``,
  ``vaporized="end"``. The scheduled depart is not written, so it is recovered as
  ``end_of_run - departDelay``; the end of the run comes from the statistic output's
  ``<performance end=…>`` (the time the run stopped, also when libsumo closes early), else from an
  unfinished vehicle's ``depart + duration``, else the horizon end is assumed.
* flow vehicles (``flow.N``) are written exactly like single vehicles; flow members whose depart lies
  after the end of the run are not generated, so they are not in the file.
* vehicles dropped by ``--max-depart-delay`` are **not** written at all, and a vehicle scheduled after the
  run stopped is not written either; :func:`read_metrics` refuses a tripinfo whose embedded configuration
  shows ``max-depart-delay`` or is missing ``write-unfinished`` / ``write-undeparted``.
* tripinfo carries ``vType`` but no vClass; :func:`read_vtype_classes` maps type ids to classes from the
  route/additional files.
* a run stopped before the horizon end (libsumo closed early) has written nothing about vehicles due
  later; :func:`read_metrics` refuses it when traffic was left over at the stop.

One deliberate reading of the contract: every vehicle is charged ``timeLoss + departDelay`` as SUMO
writes it. For a never-inserted vehicle that is ``end_of_run - scheduled depart``, equal to the contract's
``end - scheduled depart`` when the run stops at the horizon end (the normal case). If the run continues
past the horizon (a drain period), a vehicle still outside is charged its full wait, like the vehicles
that did get in and whose delay also accrued past the horizon end.

>>> sumo_output_args(Path("out/trip.xml"), Path("out/stat.xml"))[:2]
['--tripinfo-output', 'out/trip.xml']
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from controller.errors import InputError

#: SUMO's built-in vehicle types and their vClass (used when no mapping names the type).
SUMO_DEFAULT_VTYPE_CLASSES: dict[str, str] = {
    "DEFAULT_VEHTYPE": "passenger",
    "DEFAULT_BIKETYPE": "bicycle",
    "DEFAULT_TAXITYPE": "taxi",
    "DEFAULT_RAILTYPE": "rail",
    "DEFAULT_PEDTYPE": "pedestrian",
    "DEFAULT_CONTAINERTYPE": "ignoring",
}

#: Times in SUMO output have at most a few decimals; schedules are compared after rounding to this.
_TIME_DECIMALS = 6
#: How much of a tripinfo file is searched for the embedded configuration comment (bytes).
_HEADER_BYTES = 65536


def sumo_output_args(tripinfo_path: Path, statistic_path: Path) -> list[str]:
    """The SUMO command-line options every evaluated run must get so :func:`read_metrics` can work.

    :param tripinfo_path: where SUMO writes the tripinfo XML (one ``<tripinfo>`` per vehicle).
    :param statistic_path: where SUMO writes the statistic XML (run end time, teleports).
    :returns: options for ``sumo``/``libsumo.start``: tripinfo with unfinished and undeparted vehicles,
        statistic output, trip statistics on the console, and ``--max-depart-delay -1`` because vehicles
        skipped for waiting too long are written nowhere and would escape the delay contract.
    """
    return [
        "--tripinfo-output", str(tripinfo_path),
        "--tripinfo-output.write-unfinished", "true",
        "--tripinfo-output.write-undeparted", "true",
        "--statistic-output", str(statistic_path),
        "--duration-log.statistics", "true",
        "--max-depart-delay", "-1",
    ]


@dataclass(frozen=True)
class VehicleRecord:
    """One vehicle of a tripinfo file, classified. Times in seconds of simulation time."""

    id: str
    vtype: str
    #: The depart time the demand asked for (``depart - departDelay``; for never-inserted vehicles
    #: ``end_of_run - departDelay``).
    scheduled_depart_s: float
    #: ``"completed"``, ``"unfinished"`` (inserted, still driving at the end) or ``"undeparted"``.
    status: str
    #: Actual insertion time, or ``None`` if never inserted.
    depart_s: float | None
    #: The contract delay: ``timeLoss + departDelay``.
    delay_s: float
    duration_s: float
    waiting_time_s: float
    waiting_count: int
    #: Arrival time, or ``None`` if the vehicle did not arrive.
    arrival_s: float | None


@dataclass(frozen=True)
class RunMetrics:
    """Measures of one run over the horizon ``[begin, end)``; means in seconds, ``nan`` for an empty set.

    ``scheduled`` counts vehicles whose scheduled depart lies in the horizon; every other field except
    ``throughput`` and ``teleports`` is over those vehicles. ``scheduled = completed + unfinished +
    undeparted`` always holds.
    """

    #: Contract delay: mean of ``timeLoss + departDelay`` over all scheduled vehicles (s).
    delay_s: float
    #: Mean ``duration`` over scheduled vehicles that were inserted (unfinished: time up to the end) (s).
    travel_time_s: float
    #: Mean ``waitingTime`` over scheduled vehicles that were inserted (s).
    waiting_time_s: float
    #: Mean ``waitingCount`` (number of stops) over scheduled vehicles that were inserted.
    stops: float
    #: Vehicles (scheduled anywhere) that arrived at a time in ``[begin, end]``.
    throughput: int
    #: Teleports over the whole run, from the statistic output; ``None`` without one.
    teleports: int | None
    scheduled: int
    #: Scheduled vehicles that left the network (possibly after the horizon end, if the run drained);
    #: includes vehicles removed by ``--time-to-teleport.remove`` or TraCI (``vaporized`` set).
    completed: int
    #: Scheduled vehicles inserted but not arrived when the run stopped.
    unfinished: int
    #: Scheduled vehicles never inserted.
    undeparted: int
    #: Contract delay per vehicle class (vClass from the mapping; see :func:`read_metrics`) (s).
    delay_by_vclass: dict[str, float] = field(default_factory=dict)
    #: Persons that set out walking in the horizon (SUMO ``personinfo`` with a depart in ``[begin, end)``).
    pedestrians: int = 0
    #: Their mean ``timeLoss`` (s): time lost against walking freely, waits at crosswalks included, up to the
    #: end of the run for those still walking. Not part of ``delay`` (the contract is over vehicles), shown
    #: beside it so that a controller starving the crosswalks is seen.
    pedestrian_delay_s: float = math.nan

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict; ``nan`` becomes ``None``. Keys: delay, travel_time, waiting_time, stops,
        throughput, teleports, scheduled, completed, unfinished, undeparted, delay_by_vclass, pedestrians,
        pedestrian_delay."""
        return {
            "delay": _json_float(self.delay_s),
            "travel_time": _json_float(self.travel_time_s),
            "waiting_time": _json_float(self.waiting_time_s),
            "stops": _json_float(self.stops),
            "throughput": self.throughput,
            "teleports": self.teleports,
            "scheduled": self.scheduled,
            "completed": self.completed,
            "unfinished": self.unfinished,
            "undeparted": self.undeparted,
            "delay_by_vclass": {k: _json_float(v) for k, v in sorted(self.delay_by_vclass.items())},
            "pedestrians": self.pedestrians,
            "pedestrian_delay": _json_float(self.pedestrian_delay_s),
        }


def _json_float(x: float) -> float | None:
    return None if math.isnan(x) else x


def _mean(total: float, n: int) -> float:
    return total / n if n else math.nan


def read_metrics(
    tripinfo_path: Path,
    statistic_path: Path | None,
    begin_s: float,
    end_s: float,
    vtype_classes: dict[str, str] | None = None,
) -> RunMetrics:
    """Compute :class:`RunMetrics` for the horizon ``[begin_s, end_s)`` from SUMO output files.

    :param tripinfo_path: tripinfo XML written with the options of :func:`sumo_output_args`.
    :param statistic_path: statistic XML of the same run (run end time, teleports), or ``None``; without
        it the run end is taken from an unfinished vehicle (``depart + duration``) or assumed ``end_s``.
    :param begin_s: horizon start, seconds of simulation time (inclusive).
    :param end_s: horizon end, seconds of simulation time (exclusive for scheduled departs).
    :param vtype_classes: vType id -> class name for ``delay_by_vclass`` (see :func:`read_vtype_classes`);
        a type it does not name falls back to SUMO's default types, then to the type id itself.
    :raises InputError: a file is missing, not XML, of the wrong kind, lacks attributes, or was written
        without the options the contract needs, or the run stopped before ``end_s`` with traffic left;
        the message names the file.
    """
    if not end_s > begin_s:
        raise ValueError(f"horizon end {end_s} must be after begin {begin_s}")
    stats = _read_statistics(statistic_path) if statistic_path is not None else None
    run_end = stats[0] if stats else None
    classes = {**SUMO_DEFAULT_VTYPE_CLASSES, **(vtype_classes or {})}

    n = {"completed": 0, "unfinished": 0, "undeparted": 0}
    left_over = 0  # vehicles of any schedule not arrived when the run stopped
    delay_sum = tt_sum = wait_sum = stops_sum = 0.0
    throughput = 0
    by_class: dict[str, list[float]] = {}  # class -> [delay sum, count]
    lo, hi = round(begin_s, _TIME_DECIMALS), round(end_s, _TIME_DECIMALS)
    persons: list[tuple[float, float]] = []
    for rec in iter_vehicle_records(tripinfo_path, run_end, assumed_end_s=end_s, persons=persons):
        if rec.status == "unfinished":
            run_end = rec.depart_s + rec.duration_s if run_end is None else run_end  # type: ignore[operator]
        left_over += rec.status != "completed"
        if rec.arrival_s is not None and begin_s <= rec.arrival_s <= end_s:
            throughput += 1
        if not lo <= rec.scheduled_depart_s < hi:
            continue
        n[rec.status] += 1
        delay_sum += rec.delay_s
        # SUMO names a vehicle's private copy of its type "type@vehicle" (e.g. when a route attribute
        # modifies the type): the class is that of the type before the "@"
        base = rec.vtype.split("@", 1)[0]
        acc = by_class.setdefault(classes.get(base, base), [0.0, 0])
        acc[0] += rec.delay_s
        acc[1] += 1
        if rec.status != "undeparted":
            tt_sum += rec.duration_s
            wait_sum += rec.waiting_time_s
            stops_sum += rec.waiting_count
    if left_over and run_end is not None and run_end < end_s - 1e-6:
        # Stopped with traffic still present: vehicles due in [run_end, end_s) were never written.
        raise InputError(f"{tripinfo_path}: the run stopped at {run_end:g} s, before the horizon end "
                         f"{end_s:g} s; vehicles scheduled after it are missing")
    scheduled = sum(n.values())
    inserted = n["completed"] + n["unfinished"]
    walked = [loss for depart, loss in persons if lo <= round(depart, _TIME_DECIMALS) < hi]
    return RunMetrics(
        delay_s=_mean(delay_sum, scheduled),
        travel_time_s=_mean(tt_sum, inserted),
        waiting_time_s=_mean(wait_sum, inserted),
        stops=_mean(stops_sum, inserted),
        throughput=throughput,
        teleports=stats[1] if stats else None,
        scheduled=scheduled,
        completed=n["completed"],
        unfinished=n["unfinished"],
        undeparted=n["undeparted"],
        delay_by_vclass={c: s / k for c, (s, k) in by_class.items()},
        pedestrians=len(walked),
        pedestrian_delay_s=_mean(sum(walked), len(walked)),
    )


def delay_by_period(tripinfo_path: Path, statistic_path: Path | None, begin_s: float, end_s: float,
                    period_s: float = 3600.0) -> list[tuple[float, int, float]]:
    """The contract delay per period of scheduled departure (e.g. per hour of a day run), in one pass.

    :param tripinfo_path: tripinfo XML written with the options of :func:`sumo_output_args`.
    :param statistic_path: statistic XML of the same run (its end time), or ``None``.
    :param begin_s: first period's start, seconds of simulation time.
    :param end_s: last period's end, seconds of simulation time.
    :param period_s: period length, seconds.
    :return: per period (start s, vehicles scheduled to depart in it, their mean delay s; NaN when none).
    """
    if not end_s > begin_s or not period_s > 0:
        raise ValueError(f"periods of {period_s} s from {begin_s} to {end_s} s")
    stats = _read_statistics(statistic_path) if statistic_path is not None else None
    n = math.ceil((end_s - begin_s) / period_s)
    sums, counts = [0.0] * n, [0] * n
    for rec in iter_vehicle_records(tripinfo_path, stats[0] if stats else None, assumed_end_s=end_s):
        if begin_s <= rec.scheduled_depart_s < end_s:
            k = int((rec.scheduled_depart_s - begin_s) // period_s)
            sums[k] += rec.delay_s
            counts[k] += 1
    return [(begin_s + k * period_s, counts[k], _mean(sums[k], counts[k])) for k in range(n)]


def iter_vehicle_records(
    tripinfo_path: Path, run_end_s: float | None = None, *, assumed_end_s: float | None = None,
    persons: list[tuple[float, float]] | None = None,
) -> Iterator[VehicleRecord]:
    """Stream the vehicles of a tripinfo file (persons and containers are skipped).

    Inserted vehicles are yielded while parsing; never-inserted ones are held until the end of the file,
    because their scheduled depart needs the end of the run.

    :param tripinfo_path: tripinfo XML (see :func:`sumo_output_args`).
    :param run_end_s: time the run stopped (s), e.g. from the statistic output; ``None`` to take it from an
        unfinished vehicle (``depart + duration``), else ``assumed_end_s``.
    :param assumed_end_s: run end (s) assumed when neither source gives one.
    :param persons: if given, (depart s, timeLoss s) of every person that set out is appended to it as the
        file is read (persons never inserted, ``depart="-1"``, are left out).
    :raises InputError: the file is missing, malformed, not a tripinfo file, or written without the
        options of :func:`sumo_output_args`.
    """
    _check_tripinfo_header(tripinfo_path)
    undeparted: list[tuple[str, str, float]] = []
    seen_end: float | None = None
    try:
        context = ET.iterparse(tripinfo_path, events=("start", "end"))
        _, root = next(context)
        if root.tag != "tripinfos":
            raise InputError(f"{tripinfo_path}: root element is <{root.tag}>, expected <tripinfos>")
        for event, elem in context:
            if event != "end" or elem.tag not in ("tripinfo", "personinfo", "containerinfo"):
                continue
            if elem.tag == "personinfo" and persons is not None:
                a = elem.attrib
                depart = _num(a, "depart", tripinfo_path, a.get("id", "?"))
                if depart >= 0 and "timeLoss" in a:  # (older SUMO wrote no timeLoss for persons)
                    persons.append((depart, _num(a, "timeLoss", tripinfo_path, a.get("id", "?"))))
            if elem.tag == "tripinfo":
                a = elem.attrib
                vid = a.get("id", "?")
                if _num(a, "depart", tripinfo_path, vid) < 0:  # SUMO writes depart="-1"
                    undeparted.append((vid, a.get("vType", ""), _num(a, "departDelay", tripinfo_path, vid)))
                else:
                    rec = _inserted_record(a, tripinfo_path, vid)
                    if rec.status == "unfinished":  # it drove from depart until the run stopped
                        seen_end = rec.depart_s + rec.duration_s  # type: ignore[operator]
                    yield rec
            root.clear()  # drop finished elements: files can hold 100k vehicles
    except FileNotFoundError:
        raise InputError(f"{tripinfo_path}: tripinfo file not found") from None
    except (ET.ParseError, StopIteration) as exc:
        raise InputError(f"{tripinfo_path}: malformed tripinfo XML ({exc or 'empty file'})") from None
    except OSError as exc:
        raise InputError(f"{tripinfo_path}: cannot read tripinfo ({exc.strerror})") from None
    end = next((t for t in (run_end_s, seen_end, assumed_end_s) if t is not None), None)
    if undeparted and end is None:
        raise InputError(f"{tripinfo_path}: never-inserted vehicles but no run end to date them")
    for vid, vtype, depart_delay in undeparted:
        yield VehicleRecord(
            id=vid, vtype=vtype, scheduled_depart_s=round(end - depart_delay, _TIME_DECIMALS),
            status="undeparted", depart_s=None, delay_s=depart_delay, duration_s=0.0, waiting_time_s=0.0,
            waiting_count=0, arrival_s=None,
        )


def _inserted_record(a: dict[str, str], path: Path, vid: str) -> VehicleRecord:
    depart = _num(a, "depart", path, vid)
    depart_delay = _num(a, "departDelay", path, vid)
    arrival = _num(a, "arrival", path, vid)
    arrived = arrival >= 0 and a.get("vaporized", "") != "end"
    return VehicleRecord(
        id=vid,
        vtype=a.get("vType", ""),
        scheduled_depart_s=round(depart - depart_delay, _TIME_DECIMALS),
        status="completed" if arrived else "unfinished",
        depart_s=depart,
        delay_s=_num(a, "timeLoss", path, vid) + depart_delay,
        duration_s=_num(a, "duration", path, vid),
        waiting_time_s=_num(a, "waitingTime", path, vid),
        waiting_count=int(_num(a, "waitingCount", path, vid)),
        arrival_s=arrival if arrived else None,
    )


def _num(a: dict[str, str], key: str, path: Path, vid: str) -> float:
    try:
        return float(a[key])
    except KeyError:
        raise InputError(f"{path}: tripinfo '{vid}' lacks attribute '{key}'") from None
    except ValueError:
        raise InputError(f"{path}: tripinfo '{vid}' has {key}={a[key]!r}, not a number") from None


_CONFIG_RE = re.compile(r"<!--.*?<(?:lib)?sumoConfiguration\b(.*?)-->", re.S)
_OPTION_RE = re.compile(r"<([\w.\-]+)\s+value=\"([^\"]*)\"\s*/>")
_TRUE = {"true", "1", "yes", "on", "x"}


def _check_tripinfo_header(path: Path) -> None:
    """Refuse a tripinfo whose embedded SUMO configuration shows vehicles are left out of it.

    Only checked when SUMO's configuration comment is present (hand-written fixtures have none).
    """
    try:
        with open(path, "rb") as f:
            head = f.read(_HEADER_BYTES).decode("utf-8", "replace")
    except FileNotFoundError:
        raise InputError(f"{path}: tripinfo file not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read tripinfo ({exc.strerror})") from None
    root_at = head.find("<tripinfos")
    m = _CONFIG_RE.search(head, 0, root_at if root_at >= 0 else len(head))
    if not m:
        return
    opts = dict(_OPTION_RE.findall(m.group(1)))

    def number(key: str) -> float:
        try:
            return float(opts.get(key, "-1"))
        except ValueError:
            raise InputError(f"{path}: embedded configuration has {key}={opts[key]!r}") from None

    for flag in ("tripinfo-output.write-unfinished", "tripinfo-output.write-undeparted"):
        if opts.get(flag, "false").lower() not in _TRUE:
            raise InputError(f"{path}: written without --{flag}; vehicles are missing from it "
                             "(use envs.metrics.sumo_output_args)")
    if number("max-depart-delay") >= 0:
        raise InputError(f"{path}: written with --max-depart-delay {opts['max-depart-delay']}; "
                         "skipped vehicles are in no output and escape the delay metric")
    if number("device.tripinfo.probability") not in (-1.0, 1.0):
        raise InputError(f"{path}: only a share of vehicles had a tripinfo device "
                         f"(--device.tripinfo.probability {opts['device.tripinfo.probability']})")


def _read_statistics(path: Path) -> tuple[float, int]:
    """(run end time in s, total teleports) from a SUMO ``--statistic-output`` file."""
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise InputError(f"{path}: statistic file not found") from None
    except ET.ParseError as exc:
        raise InputError(f"{path}: malformed statistic XML ({exc})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read statistic file ({exc.strerror})") from None
    if root.tag != "statistics":
        raise InputError(f"{path}: root element is <{root.tag}>, expected <statistics>")
    perf, tele = root.find("performance"), root.find("teleports")
    try:
        return float(perf.attrib["end"]), int(tele.attrib["total"])  # type: ignore[union-attr]
    except (AttributeError, KeyError, ValueError):
        raise InputError(f"{path}: statistic file lacks <performance end> or <teleports total>") from None


def read_vtype_classes(paths: Iterable[Path]) -> dict[str, str]:
    """Map vType id -> vClass from route/additional files (``vClass`` absent means ``passenger``).

    :param paths: SUMO route or additional XML files holding ``<vType>`` elements (also inside
        ``<vTypeDistribution>``).
    :raises InputError: a file is missing or malformed; the message names it.
    """
    out: dict[str, str] = {}
    for path in paths:
        try:
            for _, elem in ET.iterparse(path, events=("end",)):
                if elem.tag == "vType" and "id" in elem.attrib:
                    out[elem.attrib["id"]] = elem.attrib.get("vClass", "passenger")
                elif elem.tag in ("vehicle", "flow", "trip"):
                    elem.clear()
        except FileNotFoundError:
            raise InputError(f"{path}: route/additional file not found") from None
        except ET.ParseError as exc:
            raise InputError(f"{path}: malformed XML ({exc})") from None
    return out

"""Standard ATSPM measures per signal and time bin, computed by the ``atspm`` package (ShawnStrasser/atspm, on
DuckDB) from an :class:`~hw.replay.events.EventTable` and its detector configuration.

What comes from where (one CSV each, :data:`MEASURES`):

* ``volumes`` — atspm ``actuations`` (detector-on counts per channel and bin), joined here with the detector
  configuration (phase, function) and turned into an hourly flow rate;
* ``terminations`` — atspm ``terminations`` (gap-out 4 / max-out 5 / force-off 6 per phase);
* ``splits`` — the split monitor: computed here from atspm's ``timeline`` (its ``Split`` intervals, phase on 0 to
  phase inactive 12, and ``Green`` intervals, 1 to 7): services, mean / 85th percentile / min / max split and mean
  green per phase and bin. atspm's own ``splits`` aggregation reads MAXTIME-only vendor events, so it does not
  serve other controllers or the daemon's logs;
* ``arrivals_on_green`` — atspm ``arrival_on_green`` (advance-detector arrivals during green);
* ``split_failures`` — atspm ``split_failures`` (green and first-5 s red occupancy over 80 %, by approach);
* ``ped_delay`` — atspm ``ped_delay`` (ped call or button to walk, from its timeline);
* ``preemption`` — computed here from atspm's ``timeline`` ``Preempt`` intervals (call on 102 to call off 104):
  calls and mean / max call duration per preempt number and bin; atspm has no binned preemption measure.

Vendor codes (outside the Indiana enumeration) are left out before atspm sees the log.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from controller.errors import InputError
from hw.replay.detector_config import ATSPM_FUNCTION_NAMES, DetectorChannel
from hw.replay.events import KNOWN_CODES, EventTable

#: the measures written, one CSV each
MEASURES = ("volumes", "terminations", "splits", "arrivals_on_green", "split_failures", "ped_delay", "preemption")

# atspm aggregations and their parameters: the package's documented defaults, written out (its SQL templates
# need every parameter). Split failure thresholds 0.80 are atspm's; UDOT ATSPM uses 79 % (standards.md §F).
_AGGREGATIONS = [
    {"name": "has_data", "params": {"no_data_min": 5, "min_data_points": 3}},
    {"name": "actuations", "params": {}},
    {"name": "arrival_on_green", "params": {"latency_offset_seconds": 0}},
    {"name": "split_failures", "params": {"red_time": 5, "red_occupancy_threshold": 0.80,
                                          "green_occupancy_threshold": 0.80, "by_approach": True}},
    {"name": "terminations", "params": {}},
    {"name": "timeline", "params": {"min_duration": 0, "cushion_time": 1, "max_event_gap_seconds": None}},
    {"name": "ped_delay", "params": {}},
]


def atspm_events(table: EventTable):
    """The log as the pyarrow table atspm reads (``TimeStamp, DeviceId, EventId, Parameter``), vendor codes left out.

    :param table: the events.
    """
    import pyarrow as pa

    keep = np.isin(table.code, np.fromiter(KNOWN_CODES, np.int16))
    micros = np.round(table.time_s[keep] * 1e6).astype(np.int64)
    return pa.table({"TimeStamp": pa.array(micros, pa.timestamp("us")),
                     "DeviceId": pa.array(table.signal[keep].tolist(), pa.string()),
                     "EventId": pa.array(table.code[keep].astype(np.int32)),
                     "Parameter": pa.array(table.param[keep].astype(np.int32))})


def atspm_config(config: list[DetectorChannel]):
    """The detector configuration as atspm reads it (``DeviceId, Phase, Parameter, Function``).

    :param config: the channels.
    """
    import pandas as pd

    return pd.DataFrame({"DeviceId": [c.signal for c in config], "Phase": [c.phase for c in config],
                         "Parameter": [c.channel for c in config],
                         "Function": [ATSPM_FUNCTION_NAMES[c.function] for c in config]})


def _run_atspm(table: EventTable, config: list[DetectorChannel], bin_minutes: int) -> dict:
    import pandas as pd
    from atspm import SignalDataProcessor

    raw = atspm_events(table)
    cfg = atspm_config(config)
    out = {}
    with SignalDataProcessor(raw_data=raw, detector_config=cfg, bin_size=bin_minutes, verbose=0,
                             aggregations=_AGGREGATIONS) as proc:
        proc.load()
        proc.aggregate()
        for agg in _AGGREGATIONS:
            out[agg["name"]] = proc.conn.query(f"SELECT * FROM {agg['name']}").df()
    for df in out.values():
        if "DeviceId" in df:
            df["DeviceId"] = df["DeviceId"].astype(str)
    return {k: v if isinstance(v, pd.DataFrame) else pd.DataFrame(v) for k, v in out.items()}


def _bin(times, bin_minutes: int):
    return times.dt.floor(f"{bin_minutes}min")


def _volumes(actuations, config: list[DetectorChannel], bin_minutes: int):
    import pandas as pd

    cfg = pd.DataFrame({"DeviceId": [c.signal for c in config], "Detector": [c.channel for c in config],
                        "Phase": [c.phase for c in config], "Function": [c.function for c in config]})
    df = actuations.astype({"Detector": "int64", "Total": "int64"})
    df = df.merge(cfg, on=["DeviceId", "Detector"], how="left")
    df["Flow_vph"] = df["Total"] * (60.0 / bin_minutes)
    df["Phase"] = df["Phase"].astype("Int64")
    cols = ["TimeStamp", "DeviceId", "Phase", "Detector", "Function", "Total", "Flow_vph"]
    return df[cols].sort_values(["DeviceId", "TimeStamp", "Phase", "Detector"]).reset_index(drop=True)


def _splits(timeline, bin_minutes: int):
    import pandas as pd

    tl = timeline[timeline["IsValid"]]
    split = tl[tl["EventClass"] == "Split"].copy()
    green = tl[tl["EventClass"] == "Green"].copy()
    cols = ["TimeStamp", "DeviceId", "Phase", "Services", "Split_Mean_s", "Split_P85_s", "Split_Min_s",
            "Split_Max_s", "Green_Mean_s"]
    if split.empty:
        return pd.DataFrame(columns=cols)
    for df in (split, green):
        df["TimeStamp"] = _bin(df["StartTime"], bin_minutes)
        df["Phase"] = df["EventValue"].astype("int64")
    g = split.groupby(["TimeStamp", "DeviceId", "Phase"])["Duration"]
    res = pd.DataFrame({"Services": g.size(), "Split_Mean_s": g.mean(), "Split_P85_s": g.quantile(0.85),
                        "Split_Min_s": g.min(), "Split_Max_s": g.max()})
    res["Green_Mean_s"] = green.groupby(["TimeStamp", "DeviceId", "Phase"])["Duration"].mean()
    return res.reset_index()[cols].round(2).sort_values(["DeviceId", "TimeStamp", "Phase"]).reset_index(drop=True)


def _preemption(timeline, bin_minutes: int):
    import pandas as pd

    cols = ["TimeStamp", "DeviceId", "Preempt", "Calls", "Duration_Mean_s", "Duration_Max_s"]
    pre = timeline[(timeline["EventClass"] == "Preempt") & timeline["IsValid"]].copy()
    if pre.empty:
        return pd.DataFrame(columns=cols)
    pre["TimeStamp"] = _bin(pre["StartTime"], bin_minutes)
    pre["Preempt"] = pre["EventValue"].astype("int64")
    g = pre.groupby(["TimeStamp", "DeviceId", "Preempt"])["Duration"]
    res = pd.DataFrame({"Calls": g.size(), "Duration_Mean_s": g.mean(), "Duration_Max_s": g.max()})
    return res.reset_index()[cols].round(2)


def compute_measures(table: EventTable, config: list[DetectorChannel], bin_minutes: int = 15) -> dict:
    """The measures of :data:`MEASURES` for every signal in the table.

    :param table: the events (any number of signals).
    :param config: the detector configuration (channels of signals not in the table are ignored).
    :param bin_minutes: the bin length, minutes (15 is the ATSPM standard).
    :returns: measure name -> pandas DataFrame (a ``TimeStamp`` column holds each bin's start, ``DeviceId`` the
        signal).
    :raises InputError: when the table is empty or no detector channel belongs to its signals.
    """
    if len(table) == 0:
        raise InputError("no events to measure")
    if bin_minutes < 1 or 60 % bin_minutes and bin_minutes % 60:
        raise InputError(f"bin length {bin_minutes} min must divide an hour (or be whole hours)")
    signals = set(table.signals())
    config = [c for c in config if c.signal in signals]
    if not config:
        raise InputError(f"the detector configuration has no channel for signal(s) {', '.join(sorted(signals))}")
    raw = _run_atspm(table, config, bin_minutes)
    timeline = raw["timeline"]
    out = {
        "volumes": _volumes(raw["actuations"], config, bin_minutes),
        "terminations": raw["terminations"],
        "splits": _splits(timeline, bin_minutes),
        "arrivals_on_green": raw["arrival_on_green"],
        "split_failures": raw["split_failures"],
        "ped_delay": raw["ped_delay"],
        "preemption": _preemption(timeline, bin_minutes),
    }
    for name, df in out.items():
        sort = [c for c in ("DeviceId", "TimeStamp", "Phase", "Detector", "Preempt", "PerformanceMeasure")
                if c in df.columns]
        out[name] = df.sort_values(sort).reset_index(drop=True) if len(df) else df
    out["timeline"] = timeline  # for plots; not written
    return out


def write_measures(measures: dict, out_dir: Path | str) -> list[Path]:
    """Write one CSV per measure of :data:`MEASURES` into ``out_dir`` (created).

    :param measures: from :func:`compute_measures`.
    :param out_dir: the folder.
    :returns: the files written.
    """
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out_dir}: cannot create the measures folder ({exc.strerror})") from None
    written = []
    for name in MEASURES:
        path = out_dir / f"{name}.csv"
        measures[name].to_csv(path, index=False, date_format="%Y-%m-%d %H:%M:%S")
        written.append(path)
    return written

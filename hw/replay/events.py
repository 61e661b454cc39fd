"""Recorded hi-res event logs in memory: :class:`EventTable`, what ingest found (:class:`IngestReport`), and
:func:`load_events` for every layout met in practice (``../shared/reference/standards.md`` §F).

Layouts, recognised by their header (CSV) or column names (Parquet):

* ATSPM 4: ``SignalId,Timestamp,EventCode,EventParam`` (also its CsvHelper header ``Signal Id, Timestamp, Event Code,
  Event Parameter``);
* ATSPM 5 Data API: ``EventCode,EventParam,LocationIdentifier,Timestamp``;
* the ``atspm`` Python package: ``TimeStamp,DeviceId,EventId,Parameter``;
* the daemon's own log: its SQLite store (``hw/eventlog.py``) and its CSV export ``Timestamp,SignalId,EventCode,
  EventParam``.

Files are read in chunks (pyarrow's streaming CSV reader, Parquet row groups) so memory stays bounded by the
table itself. Timestamps are wall-clock as written (no time zone applied; a zone suffix is honoured), held as
seconds since the Unix epoch and rounded to 0.1 s.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from controller.detector_health import HealthSettings
from controller.errors import InputError

#: Indiana codes with a published meaning (standards.md §F table); any other code is vendor-specific or unknown.
KNOWN_CODES = frozenset([*range(0, 27), *range(31, 34), *range(41, 57), *range(61, 73), *range(81, 95),
                         *range(101, 120), *range(131, 157), *range(171, 186), *range(200, 219)])
#: more detector changes (82/81) than this in one minute on one channel is chattering: the daemon's default
#: (controller/detector_health), more than a lane at capacity makes (40 actuations a minute)
CHATTER_CHANGES_PER_MINUTE = HealthSettings().chatter_changes
#: rows per chunk read from a CSV or Parquet file
CHUNK_ROWS = 65_536
_CSV_BLOCK_BYTES = 4 << 20

# normalised column name -> role
_ROLES = {
    "signalid": "signal", "locationidentifier": "signal", "deviceid": "signal", "signal": "signal",
    "timestamp": "time",
    "eventcode": "code", "eventid": "code",
    "eventparam": "param", "eventparameter": "param", "parameter": "param",
}
_LAYOUT_NAMES = {
    ("signalid", "timestamp", "eventcode", "eventparam"): "ATSPM 4",
    ("signalid", "timestamp", "eventcode", "eventparameter"): "ATSPM 4 (CsvHelper header)",
    ("eventcode", "eventparam", "locationidentifier", "timestamp"): "ATSPM 5 Data API",
    ("timestamp", "deviceid", "eventid", "parameter"): "atspm package",
    ("timestamp", "signalid", "eventcode", "eventparam"): "ondaverde event log CSV",
}
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?$")


@dataclass
class EventTable:
    """Hi-res events as equal-length arrays, sorted by (signal, time, code, param).

    :param time_s: event time, seconds since the Unix epoch (float64, 0.1 s resolution).
    :param signal: signal (controller, intersection) id of each event (numpy str array).
    :param code: Indiana event code (int16; vendor codes such as 300+ kept).
    :param param: event parameter: phase, detector channel, preempt number, ... (int16).
    """

    time_s: np.ndarray
    signal: np.ndarray
    code: np.ndarray
    param: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.time_s)
        if not (len(self.signal) == len(self.code) == len(self.param) == n):
            raise ValueError("EventTable arrays must have equal length")

    def __len__(self) -> int:
        return len(self.time_s)

    @classmethod
    def empty(cls) -> EventTable:
        """A table with no events."""
        return cls(np.zeros(0), np.zeros(0, dtype=str), np.zeros(0, np.int16), np.zeros(0, np.int16))

    def signals(self) -> list[str]:
        """The signal ids present, sorted."""
        return sorted(np.unique(self.signal).tolist())

    def take(self, index: np.ndarray) -> EventTable:
        """The rows at ``index`` (an integer index or boolean mask array)."""
        return EventTable(self.time_s[index], self.signal[index], self.code[index], self.param[index])

    def for_signal(self, signal: str) -> EventTable:
        """The events of one signal (a view-sized copy; the table is sorted by signal so this is a slice).

        :param signal: the signal id.
        """
        lo = int(np.searchsorted(self.signal, signal, side="left"))
        hi = int(np.searchsorted(self.signal, signal, side="right"))
        return EventTable(self.time_s[lo:hi], self.signal[lo:hi], self.code[lo:hi], self.param[lo:hi])

    def sorted(self) -> EventTable:
        """This table sorted by (signal, time, code, param)."""
        order = np.lexsort((self.param, self.code, self.time_s, self.signal))
        return self.take(order)


@dataclass
class IngestReport:
    """What ingest found in a log: counts per problem. Nothing is dropped silently.

    :param path: the file read.
    :param layout: the layout recognised (e.g. ``"ATSPM 4"``).
    :param rows_read: data rows in the file (before the signal filter).
    :param rows_kept: events in the table returned.
    :param rows_unreadable: rows that could not be read (bad time, code or parameter, wrong field count); skipped.
    :param duplicates_dropped: exact duplicate rows (same signal, time, code, parameter) dropped.
    :param out_of_order: rows whose time was earlier than the previous row of the same signal in the file; sorted.
    :param gaps: stretches with no event for more than ``gap_minutes``: (signal, start s, end s) each.
    :param gap_minutes: the gap threshold, minutes.
    :param unknown_codes: events with codes outside the Indiana enumeration (vendor codes); kept, ignored by measures.
    :param chattering: (signal, detector channel) pairs with more than :data:`CHATTER_CHANGES_PER_MINUTE` on/off
        changes in some minute.
    :param signals: the signals in the table returned.
    """

    path: str
    layout: str
    rows_read: int = 0
    rows_kept: int = 0
    rows_unreadable: int = 0
    duplicates_dropped: int = 0
    out_of_order: int = 0
    gaps: list[tuple[str, float, float]] = field(default_factory=list)
    gap_minutes: float = 5.0
    unknown_codes: int = 0
    chattering: list[tuple[str, int]] = field(default_factory=list)
    signals: list[str] = field(default_factory=list)

    def problems(self) -> dict[str, int]:
        """Counts per problem found (zero counts included)."""
        return {"unreadable rows skipped": self.rows_unreadable,
                "exact duplicates dropped": self.duplicates_dropped,
                "out-of-order rows sorted": self.out_of_order,
                f"gaps > {self.gap_minutes:g} min": len(self.gaps),
                "unknown/vendor codes kept": self.unknown_codes,
                "chattering detector channels": len(self.chattering)}

    def summary(self) -> str:
        """Several lines for the terminal."""
        lines = [f"{self.path}: {self.layout}, {self.rows_read} rows read, {self.rows_kept} events kept, "
                 f"{len(self.signals)} signal(s)"]
        for name, count in self.problems().items():
            lines.append(f"  {name}: {count}")
        for sid, channel in self.chattering[:10]:
            lines.append(f"    chattering: signal {sid} detector channel {channel}")
        return "\n".join(lines)


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


def _roles(columns: list[str], path: Path) -> dict[str, str]:
    """role -> column name, or InputError naming what is missing."""
    roles: dict[str, str] = {}
    for col in columns:
        role = _ROLES.get(_normalise(col))
        if role and role not in roles:
            roles[role] = col
    missing = [r for r in ("signal", "time", "code", "param") if r not in roles]
    if missing:
        shown = ", ".join(columns[:8]) if columns else "none"
        raise InputError(f"{path}: not an event log (no column for {', '.join(missing)}; columns: {shown})")
    return roles


def _layout_name(columns: list[str]) -> str:
    key = tuple(_normalise(c) for c in columns)
    return _LAYOUT_NAMES.get(key, "columns " + ",".join(columns))


def _parse_times(values) -> np.ndarray:
    """Seconds since the epoch for a pyarrow array of strings or timestamps; NaN where unreadable."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_timestamp(values.type):
        tz = values.type.tz
        us = pc.cast(values, pa.timestamp("us", tz=tz)).cast(pa.int64())
        return us.to_numpy(zero_copy_only=False).astype(np.float64) / 1e6 if us.null_count == 0 else \
            np.where(pc.is_null(us).to_numpy(zero_copy_only=False), np.nan,
                     pc.fill_null(us, 0).to_numpy().astype(np.float64) / 1e6)
    if pa.types.is_floating(values.type) or pa.types.is_integer(values.type):
        out = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
        return np.asarray(out, dtype=np.float64)
    text = pc.utf8_trim_whitespace(values.cast(pa.string()))
    iso = pc.match_substring_regex(text, _ISO.pattern)
    iso = pc.fill_null(iso, False)
    out = np.full(len(text), np.nan)
    iso_np = iso.to_numpy(zero_copy_only=False)
    if iso_np.any():
        good = pc.filter(text, iso)
        stamps = pc.cast(good, pa.timestamp("us")).cast(pa.int64()).to_numpy()
        out[iso_np] = stamps.astype(np.float64) / 1e6
    if not iso_np.all():  # other spellings (US dates, MaxTime's dashes, zone suffixes)
        rest_idx = np.flatnonzero(~iso_np)
        rest = _month_first_to_iso(pc.filter(text, pc.invert(iso)))
        ok = pc.fill_null(pc.match_substring_regex(rest, _ISO.pattern), False)
        ok_np = ok.to_numpy(zero_copy_only=False)
        if ok_np.any():
            stamps = pc.cast(pc.filter(rest, ok), pa.timestamp("us")).cast(pa.int64()).to_numpy()
            out[rest_idx[ok_np]] = stamps.astype(np.float64) / 1e6
        if not ok_np.all():
            out[rest_idx[~ok_np]] = _parse_other_times(pc.filter(rest, pc.invert(ok)).to_pandas())
    return out


def _month_first_to_iso(text):
    """``M/D/YYYY hh:mm:ss[.f]`` and MaxTime's ``MM-DD-YYYY ...`` rewritten as ISO (in Arrow, vectorised);
    other strings pass unchanged."""
    import pyarrow.compute as pc

    text = pc.replace_substring_regex(text, r"^(\d)([/-])", r"0\1\2")  # pad the month
    text = pc.replace_substring_regex(text, r"^(\d\d)([/-])(\d)([/-])", r"\1\20\3\4")  # pad the day (RE2: \2 then a literal 0)
    text = pc.replace_substring_regex(text, r"^(\d\d)[/-](\d\d)[/-](\d{4})[ T](\d):", r"\3-\1-\2 0\4:")
    return pc.replace_substring_regex(text, r"^(\d\d)[/-](\d\d)[/-](\d{4})[ T]", r"\3-\1-\2 ")


#: non-ISO timestamp spellings met in controller exports (month first, as US agencies write them)
_OTHER_FORMATS = ("%m/%d/%Y %H:%M:%S.%f", "%m/%d/%Y %H:%M:%S", "%m-%d-%Y %H:%M:%S.%f", "%m-%d-%Y %H:%M:%S",
                  "%m/%d/%Y %I:%M:%S.%f %p", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M", "%Y/%m/%d %H:%M:%S.%f",
                  "%Y/%m/%d %H:%M:%S")


def _parse_other_times(text) -> np.ndarray:
    """Seconds since the epoch of non-ISO timestamps (a pandas Series of str); NaN where unreadable.

    The spelling that reads most of the first 200 values is applied to all at once (fast); what it leaves
    unread goes through pandas' per-value parser (slow, but only for the odd rows)."""
    import pandas as pd

    def seconds(parsed) -> np.ndarray:
        if getattr(parsed.dt, "tz", None) is None:
            parsed = parsed.dt.tz_localize("UTC")
        return (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan)

    head = text.iloc[:200]
    best, hits = None, 0
    for fmt in _OTHER_FORMATS:
        n = int(pd.to_datetime(head, format=fmt, errors="coerce").notna().sum())
        if n > hits:
            best, hits = fmt, n
    out = np.full(len(text), np.nan)
    if best is not None:
        out = seconds(pd.to_datetime(text, format=best, errors="coerce"))
    missing = np.isnan(out)
    if missing.any():
        out[missing] = seconds(pd.to_datetime(text[missing], errors="coerce", format="mixed", utc=True))
    return out


def _parse_ints(values) -> np.ndarray:
    """int64 values (with -1 standing for unreadable) of a pyarrow array of strings or numbers."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_integer(values.type):
        arr = pc.fill_null(values.cast(pa.int64()), -1)
        return arr.to_numpy(zero_copy_only=False)
    if pa.types.is_floating(values.type):
        f = values.to_numpy(zero_copy_only=False).astype(np.float64)
        ok = np.isfinite(f) & (f == np.round(f))
        return np.where(ok, np.nan_to_num(f), -1).astype(np.int64)
    text = pc.utf8_trim_whitespace(values.cast(pa.string()))
    ok = pc.fill_null(pc.match_substring_regex(text, r"^\d{1,5}$"), False)
    safe = pc.if_else(ok, text, "-1")
    return pc.cast(safe, pa.int64()).to_numpy(zero_copy_only=False)


class _Collector:
    """Accumulates chunks of parsed columns, counting unreadable rows and out-of-order rows per signal.

    Signal ids are held as small integers (first-seen order) until the end: sorting strings is slow."""

    def __init__(self, signal: str | None) -> None:
        self.signal = signal
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.rows_read = 0
        self.unreadable = 0
        self.out_of_order = 0
        self.names: dict[str, int] = {}
        self._last_time: dict[int, float] = {}

    def add(self, signal, time_s: np.ndarray, code: np.ndarray, param: np.ndarray) -> None:
        """One chunk: ``signal`` a pyarrow array, the rest numpy."""
        import pyarrow as pa
        import pyarrow.compute as pc

        n = len(time_s)
        self.rows_read += n
        sig = pc.fill_null(pc.utf8_trim_whitespace(signal.cast(pa.string())), "").dictionary_encode()
        local = [str(v) for v in sig.dictionary.to_pylist()]
        lookup = np.array([self.names.setdefault(v, len(self.names)) if v else -1 for v in local] or [-1],
                          dtype=np.int32)
        sig_id = lookup[sig.indices.to_numpy(zero_copy_only=False)]
        good = (np.isfinite(time_s) & (code >= 0) & (code <= 32767) & (param >= 0) & (param <= 32767)
                & (sig_id >= 0))
        self.unreadable += int(n - good.sum())
        if self.signal is not None:
            good &= sig_id == self.names.get(self.signal, -2)
        if not good.all():
            sig_id, time_s, code, param = sig_id[good], time_s[good], code[good], param[good]
        time_s = np.round(time_s * 10.0) / 10.0
        self._count_out_of_order(sig_id, time_s)
        self.parts.append((time_s, sig_id, code.astype(np.int16), param.astype(np.int16)))

    def _count_out_of_order(self, sig: np.ndarray, time_s: np.ndarray) -> None:
        if not len(sig):
            return
        for sid in np.unique(sig).tolist():
            block = time_s if len(self.names) == 1 else time_s[sig == sid]
            prev = self._last_time.get(sid)
            if prev is not None and block[0] < prev:
                self.out_of_order += 1
            self.out_of_order += int((np.diff(block) < 0).sum())
            self._last_time[sid] = float(block[-1])

    def table(self) -> EventTable:
        """The rows collected, sorted by (signal, time, code, param), signal ids as strings."""
        if not self.parts:
            return EventTable.empty()
        cols = list(zip(*self.parts))
        self.parts = []
        time_s, sig_id, code, param = (np.concatenate(c) for c in cols)
        names = np.array(sorted(self.names), dtype=str)
        rank_of = np.empty(len(self.names), dtype=np.int32)
        for rank, name in enumerate(names.tolist()):
            rank_of[self.names[name]] = rank
        rank = rank_of[sig_id]
        order = np.lexsort((param, code, time_s, rank))
        return EventTable(time_s[order], names[rank[order]], code[order], param[order])


def _chunks_parquet(path: Path):
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise InputError(f"{path}: cannot read as Parquet ({str(exc).splitlines()[0]})") from None
    columns = pf.schema_arrow.names
    roles = _roles(columns, path)
    wanted = [roles[r] for r in ("signal", "time", "code", "param")]
    try:
        for batch in pf.iter_batches(batch_size=CHUNK_ROWS, columns=wanted):
            yield _layout_name(columns), roles, batch
    except Exception as exc:
        raise InputError(f"{path}: cannot read as Parquet ({str(exc).splitlines()[0]})") from None


def _read_header(path: Path) -> list[str]:
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
            f.seek(0)
            first = f.readline(65536)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    if b"\x00" in head:
        raise InputError(f"{path}: not an event log (binary content, not CSV, Parquet or the daemon's SQLite)")
    try:
        line = first.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        raise InputError(f"{path}: not an event log (not UTF-8 text)") from None
    if not line:
        raise InputError(f"{path}: not an event log (empty)")
    return [c.strip().strip('"') for c in line.split(",")]


def _chunks_csv(path: Path, unreadable: list[int]):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    columns = _read_header(path)
    roles = _roles(columns, path)

    def bad_row(row) -> str:  # wrong number of fields: counted, skipped
        unreadable[0] += 1
        return "skip"

    convert = pacsv.ConvertOptions(column_types={c: pa.string() for c in columns},
                                   include_columns=[roles[r] for r in ("signal", "time", "code", "param")],
                                   strings_can_be_null=False)
    read = pacsv.ReadOptions(block_size=_CSV_BLOCK_BYTES, column_names=columns, skip_rows=1)
    parse = pacsv.ParseOptions(invalid_row_handler=bad_row, newlines_in_values=False)
    try:
        reader = pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert)
        for batch in reader:
            yield _layout_name(columns), roles, batch
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read as CSV ({str(exc).splitlines()[0]})") from None


def _chunks_sqlite(path: Path):
    import pyarrow as pa

    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        cur = db.execute("SELECT signal_id, timestamp, code, param FROM events ORDER BY id")
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{path}: not an ondaverde event log ({exc})") from None
    roles = {"signal": "signal_id", "time": "timestamp", "code": "code", "param": "param"}
    try:
        while rows := cur.fetchmany(CHUNK_ROWS):
            sig, t, code, param = zip(*rows)
            batch = pa.RecordBatch.from_arrays(
                [pa.array(sig, pa.string()), pa.array(t, pa.float64()), pa.array(code, pa.int64()),
                 pa.array(param, pa.int64())], names=["signal_id", "timestamp", "code", "param"])
            yield "ondaverde event log (SQLite)", roles, batch
    finally:
        db.close()


def _kind(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if head.startswith(b"SQLite format 3\x00"):
        return "sqlite"
    if head.startswith(b"PAR1"):
        return "parquet"
    return "csv"


def load_events(path: Path | str, signal: str | None = None, gap_minutes: float = 5.0,
                progress: bool = False) -> tuple[EventTable, IngestReport]:
    """Read a recorded hi-res log in any supported layout (see the module docstring).

    :param path: the CSV, Parquet or SQLite file.
    :param signal: keep only this signal id (None: all signals).
    :param gap_minutes: report stretches without any event longer than this, minutes.
    :param progress: show a progress bar (rows read) on stderr.
    :returns: the events sorted by (signal, time, code, param) with exact duplicates dropped, and what was found.
    :raises InputError: the file is missing, is not an event log, holds no readable event, or lacks ``signal``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    kind = _kind(path)
    csv_unreadable = [0]
    chunks = {"sqlite": lambda: _chunks_sqlite(path), "parquet": lambda: _chunks_parquet(path),
              "csv": lambda: _chunks_csv(path, csv_unreadable)}[kind]()
    collector = _Collector(signal)
    layout = "?"
    bar = None
    try:
        for layout, roles, batch in chunks:
            if progress and bar is None:  # only once the file is known to be a log: errors stay one clean line
                from tqdm import tqdm

                bar = tqdm(unit=" rows", unit_scale=True, desc=f"reading {path.name}", leave=False, disable=None)
            names = batch.schema.names
            col = {r: batch.column(names.index(roles[r])) for r in roles}
            collector.add(col["signal"], _parse_times(col["time"]), _parse_ints(col["code"]),
                          _parse_ints(col["param"]))
            if bar is not None:
                bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()
    collector.unreadable += csv_unreadable[0]
    collector.rows_read += csv_unreadable[0]
    report = IngestReport(path=str(path), layout=layout, rows_read=collector.rows_read,
                          rows_unreadable=collector.unreadable, out_of_order=collector.out_of_order,
                          gap_minutes=gap_minutes)
    if collector.rows_read == 0:
        raise InputError(f"{path}: holds no event rows ({layout})")
    if collector.rows_read == collector.unreadable:
        raise InputError(f"{path}: not an event log (none of its {collector.rows_read} rows is readable as "
                         f"signal, time, code, parameter)")
    table = collector.table()
    if signal is not None and len(table) == 0:
        raise InputError(f"{path}: signal {signal!r} is not in the log")
    table, report.duplicates_dropped = _drop_duplicates(table)
    report.rows_kept = len(table)
    report.signals = table.signals()
    report.unknown_codes = int((~np.isin(table.code, np.fromiter(KNOWN_CODES, np.int16))).sum())
    report.gaps = _gaps(table, gap_minutes * 60.0)
    report.chattering = _chattering(table)
    return table, report


def _drop_duplicates(table: EventTable) -> tuple[EventTable, int]:
    """Drop exact duplicate rows of a sorted table; returns the table and how many were dropped."""
    n = len(table)
    if n < 2:
        return table, 0
    same = ((table.time_s[1:] == table.time_s[:-1]) & (table.code[1:] == table.code[:-1])
            & (table.param[1:] == table.param[:-1]) & (table.signal[1:] == table.signal[:-1]))
    if not same.any():
        return table, 0
    keep = np.r_[True, ~same]
    return table.take(keep), int(same.sum())


def _gaps(table: EventTable, gap_s: float) -> list[tuple[str, float, float]]:
    if len(table) < 2:
        return []
    dt = np.diff(table.time_s)
    same = table.signal[1:] == table.signal[:-1]
    where = np.flatnonzero(same & (dt > gap_s))
    return [(str(table.signal[i]), float(table.time_s[i]), float(table.time_s[i + 1])) for i in where]


def _chattering(table: EventTable) -> list[tuple[str, int]]:
    """(signal, channel) pairs with more than 40 detector changes (81/82) within some 60 s window."""
    det = (table.code == 81) | (table.code == 82)
    if not det.any():
        return []
    sig, ch, t = table.signal[det], table.param[det].astype(np.int64), table.time_s[det]
    _, sig_idx = np.unique(sig, return_inverse=True)  # few events per table: detector edges only
    group = sig_idx.astype(np.int64) * 65536 + ch
    groups, g = np.unique(group, return_inverse=True)
    rel = t - t.min()
    span = float(rel.max()) + 120.0
    key = np.sort(g * span + rel)
    ahead = np.searchsorted(key, key + 60.0, side="left") - np.arange(len(key))
    hot_groups = np.unique((key[ahead > CHATTER_CHANGES_PER_MINUTE] // span).astype(np.int64))
    names = np.unique(sig)
    return sorted((str(names[groups[k] // 65536]), int(groups[k] % 65536)) for k in hot_groups.tolist())

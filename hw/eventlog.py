"""The durable event log: hi-res events in SQLite (WAL mode, one transaction per append, fsync'd), exported as the
ATSPM CSV layout ``Timestamp,SignalId,EventCode,EventParam``.

A committed append survives the process being killed (``kill -9``): SQLite's write-ahead log holds it on disk
before :meth:`EventLog.append` returns.
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from controller.errors import InputError
from controller.events import Event

_SCHEMA = """CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    timestamp REAL NOT NULL,
    signal_id TEXT NOT NULL,
    code INTEGER NOT NULL CHECK (code BETWEEN 0 AND 255),
    param INTEGER NOT NULL CHECK (param BETWEEN 0 AND 255)
)"""
_SPEEDS = """CREATE TABLE IF NOT EXISTS approach_speeds (
    id INTEGER PRIMARY KEY,
    start REAL NOT NULL,
    signal_id TEXT NOT NULL,
    channel INTEGER NOT NULL,
    vehicles INTEGER NOT NULL,
    mean_mps REAL NOT NULL,
    p85_mps REAL NOT NULL
)"""
#: CSV header of the export (ATSPM 4 order with the daemon's column names)
CSV_HEADER = ("Timestamp", "SignalId", "EventCode", "EventParam")


def format_timestamp(epoch_s: float) -> str:
    """``YYYY-MM-DD HH:MM:SS.f`` (UTC, 0.1 s) of a time in seconds since 1970."""
    tenths = round(epoch_s * 10)
    moment = datetime.fromtimestamp(tenths // 10, tz=timezone.utc)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{tenths % 10}"


class EventLog:
    """An event store.

    :param path: the SQLite file (created with its folder if missing).
    :param epoch_s: added to each event's clock to get its timestamp, seconds since 1970 (0 when events
        already carry wall-clock time).
    :raises InputError: when the file cannot be opened as an event log.
    """

    def __init__(self, path: Path | str, epoch_s: float = 0.0) -> None:
        self.path = Path(path)
        self.epoch_s = epoch_s
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")  # also the first read: a file that is not SQLite fails here
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute(_SCHEMA)
            self.db.execute(_SPEEDS)
        except (sqlite3.DatabaseError, OSError) as exc:
            raise InputError(f"{self.path}: cannot open as an event log ({exc})") from None

    def append(self, events: Iterable[Event]) -> int:
        """Write events in one transaction; returns how many. Committed when this returns."""
        rows = [(self.epoch_s + e.time_s, e.signal_id, int(e.code), int(e.param)) for e in events]
        if rows:
            with self.db:  # BEGIN ... COMMIT
                self.db.execute("BEGIN")
                self.db.executemany("INSERT INTO events (timestamp, signal_id, code, param) VALUES (?, ?, ?, ?)",
                                    rows)
        return len(rows)

    def append_speeds(self, records) -> int:
        """Write approach-speed records (:class:`controller.radar.SpeedRecord`: period start on the controller
        clock, intersection, radar channel, vehicles, mean and 85th-percentile speed in m/s) in one transaction."""
        rows = [(r.start_s, r.signal_id, r.channel, r.vehicles, r.mean_mps, r.p85_mps) for r in records]
        if rows:
            with self.db:
                self.db.execute("BEGIN")
                self.db.executemany("INSERT INTO approach_speeds (start, signal_id, channel, vehicles, mean_mps, "
                                    "p85_mps) VALUES (?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def speeds(self) -> list[tuple[float, str, int, int, float, float]]:
        """Approach-speed records (start, signal id, channel, vehicles, mean m/s, 85th percentile m/s)."""
        return self.db.execute("SELECT start, signal_id, channel, vehicles, mean_mps, p85_mps FROM approach_speeds "
                               "ORDER BY start, id").fetchall()

    def count(self) -> int:
        """Events stored."""
        return self.db.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    def events(self, signal_id: str | None = None) -> list[tuple[float, str, int, int]]:
        """(timestamp, signal id, code, param) rows in time order (ties in the order written)."""
        query = "SELECT timestamp, signal_id, code, param FROM events"
        args: tuple = ()
        if signal_id is not None:
            query += " WHERE signal_id = ?"
            args = (signal_id,)
        return self.db.execute(query + " ORDER BY timestamp, id", args).fetchall()

    def export_csv(self, out: Path | str, signal_id: str | None = None) -> int:
        """Write ``Timestamp,SignalId,EventCode,EventParam`` rows; returns how many."""
        rows = self.events(signal_id)
        with open(out, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(CSV_HEADER)
            for t, sid, code, param in rows:
                w.writerow((format_timestamp(t), sid, code, param))
        return len(rows)

    def close(self) -> None:
        """Close the store (a checkpoint folds the write-ahead log into the file)."""
        if self.db is not None:
            self.db.close()
            self.db = None

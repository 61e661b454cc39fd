"""``ondaverde bench replay``: how fast a recorded day is ingested and replayed.

The day is real field data made long: the atspm package's sample log (two hours of signal 1136, about 18,600
events an hour) repeated back to back for ``hours`` hours and written as ATSPM 4 CSV and as Parquet. Each
measurement runs in a fresh child process (so peak memory is its own):

* **ingest**: :func:`hw.replay.events.load_events` on each file, against a plain pyarrow read of the same file
  (``pyarrow.csv.read_csv`` / ``pyarrow.parquet.read_table``, no parsing of times, no sorting or checks) in the
  same command: events per second and the time ratio; and, in separate runs, the peak memory each allocates
  (Python and numpy through tracemalloc, plus Arrow's memory pool) beside the size of the table ingest returns;
* **decision replay**: the day's detector actuations through the core with ``actuated`` and ``maxpressure``:
  simulated hours per wall second (the loop only; ingest and model building excluded).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from controller.errors import InputError

#: the sample's length, seconds (2024-04-15 12:00 to 14:00)
SAMPLE_SPAN_S = 7200


def sample_paths() -> tuple[Path, Path]:
    """The atspm package's sample log and detector configuration."""
    import atspm

    data = Path(atspm.__file__).parent / "data"
    return data / "sample_raw_data.parquet", data / "sample_config.parquet"


def write_day(out_dir: Path, hours: int) -> tuple[Path, Path, int]:
    """Write the long log as ``day.csv`` (ATSPM 4) and ``day.parquet`` (atspm layout); returns both and the
    number of rows.

    :param out_dir: the folder.
    :param hours: length, hours (a multiple of 2).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    raw, _ = sample_paths()
    t = pq.read_table(raw)
    micros = t.column("TimeStamp").cast(pa.int64())
    parts = []
    for k in range(max(1, hours // 2)):
        shifted = pc.add(micros, k * SAMPLE_SPAN_S * 1_000_000).cast(pa.timestamp("us"))
        parts.append(t.set_column(0, "TimeStamp", shifted))
    day = pa.concat_tables(parts)
    for name, rows in (("day", day), ("warm", day.slice(0, 500))):  # warm: the warm-up file of each child
        pq.write_table(rows, out_dir / f"{name}.parquet")
        csv_table = pa.table({"SignalId": rows["DeviceId"],
                              "Timestamp": pc.strftime(rows["TimeStamp"], format="%Y-%m-%d %H:%M:%S"),
                              "EventCode": rows["EventId"], "EventParam": rows["Parameter"]})
        pacsv.write_csv(csv_table, out_dir / f"{name}.csv", write_options=pacsv.WriteOptions(quoting_style="none"))
    return out_dir / "day.csv", out_dir / "day.parquet", day.num_rows


def _peak_mb(pool) -> float:
    """Peak memory since the last reset: what Python and numpy allocated (tracemalloc) plus Arrow's pool."""
    import tracemalloc

    return (tracemalloc.get_traced_memory()[1] + pool.max_memory()) / 2**20


def _child(task: str, path: str, extra: str = "", warm: str = "") -> dict:
    """One measurement in this (fresh) process, after a warm-up on ``warm`` (a small file of the same kind: every
    lazy import and first-call cost is paid before the clock starts)."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from hw.replay.decisions import replay_signal
    from hw.replay.detector_config import load_detector_config
    from hw.replay.events import load_events

    import tracemalloc

    import pyarrow as pa

    if warm:
        load_events(warm)
        pacsv.read_csv(warm) if warm.endswith(".csv") else pq.read_table(warm)
    pool = pa.default_memory_pool()
    memory = task.endswith("-memory")  # tracemalloc slows allocation: memory is measured in runs of its own
    task = task.removesuffix("-memory")
    if memory:
        tracemalloc.start()
    if task == "ingest":
        started = time.perf_counter()
        table, report = load_events(path)
        took = time.perf_counter() - started
        return {"seconds": took, "events": len(table), "rows": report.rows_read, "peak_mb": _peak_mb(pool) if memory else None,
                "table_mb": sum(a.nbytes for a in (table.time_s, table.signal, table.code, table.param)) / 2**20}
    if task == "plain":
        started = time.perf_counter()
        t = pacsv.read_csv(path) if path.endswith(".csv") else pq.read_table(path)
        took = time.perf_counter() - started
        return {"seconds": took, "rows": t.num_rows, "peak_mb": _peak_mb(pool) if memory else None, "table_mb": t.nbytes / 2**20}
    if task == "replay":
        table, _ = load_events(path)
        _, config_path = sample_paths()
        result = replay_signal(table, load_detector_config(config_path), extra)
        return {"seconds": result.wall_s, "simulated_s": result.seconds, "violations": result.violations}
    raise ValueError(task)


def _run_child(task: str, path: Path, extra: str = "") -> dict:
    warm = path.with_name("warm" + path.suffix)
    proc = subprocess.run([sys.executable, "-m", "hw.replay.bench", task, str(path), extra, str(warm)],
                          capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise InputError(f"bench replay: the {task} child failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_replay(hours: int = 24, repeats: int = 3, controllers: tuple[str, ...] = ("actuated", "maxpressure"),
                 progress=None) -> dict:
    """Measure ingest and decision replay on a long real log (see the module docstring).

    :param hours: log length, hours (rounded down to a multiple of 2, at least 2).
    :param repeats: child runs per measurement; the fastest is kept.
    :param controllers: policies to replay with.
    :param progress: called with a short label before each measurement.
    """
    if hours < 2:
        raise InputError(f"--hours {hours}: the log is built from 2-hour pieces, give at least 2")
    if repeats < 1:
        raise InputError(f"--repeats {repeats} must be at least 1")
    out: dict = {"hours": hours // 2 * 2, "repeats": repeats}
    with tempfile.TemporaryDirectory(prefix="ondaverde-bench-replay-") as tmp:
        csv_path, pq_path, rows = write_day(Path(tmp), hours)
        out["events"] = rows
        for name, path in (("csv", csv_path), ("parquet", pq_path)):
            best = {}
            for task in ("ingest", "plain"):
                if progress:
                    progress(f"{task} {name}")
                runs = [_run_child(task, path) for _ in range(repeats)]
                best[task] = min(runs, key=lambda r: r["seconds"])
                best[task]["peak_mb"] = _run_child(f"{task}-memory", path)["peak_mb"]
            ing, plain = best["ingest"], best["plain"]
            out[name] = {"bytes": path.stat().st_size, "ingest_s": ing["seconds"], "plain_read_s": plain["seconds"],
                         "events_per_s": ing["rows"] / ing["seconds"], "ratio_to_plain": ing["seconds"] / plain["seconds"],
                         "ingest_peak_mb": ing["peak_mb"], "plain_peak_mb": plain["peak_mb"],
                         "table_mb": ing["table_mb"]}
        out["replay"] = {}
        for controller in controllers:
            if progress:
                progress(f"replay {controller}")
            runs = [_run_child("replay", pq_path, controller) for _ in range(repeats)]
            r = min(runs, key=lambda r: r["seconds"])
            out["replay"][controller] = {"wall_s": r["seconds"], "simulated_h": r["simulated_s"] / 3600,
                                         "sim_h_per_wall_s": r["simulated_s"] / 3600 / r["seconds"],
                                         "realtime_factor": r["simulated_s"] / r["seconds"],
                                         "violations": r["violations"]}
    return out


def format_bench_replay(r: dict) -> str:
    """The result as lines of text."""
    lines = [f"log: the atspm sample (signal 1136) repeated to {r['hours']} h, {r['events']:,} events; best of "
             f"{r['repeats']} runs, each in a fresh process"]
    for name in ("csv", "parquet"):
        x = r[name]
        lines.append(f"ingest {name:<7} ({x['bytes'] / 1e6:.1f} MB): {x['ingest_s']:.2f} s = "
                     f"{x['events_per_s'] / 1e6:.2f} M events/s; plain pyarrow read {x['plain_read_s']:.2f} s "
                     f"(ingest {x['ratio_to_plain']:.1f}x its time); peak memory {x['ingest_peak_mb']:.0f} MB for a "
                     f"{x['table_mb']:.0f} MB table (plain read {x['plain_peak_mb']:.0f} MB)")
    for controller, x in r["replay"].items():
        lines.append(f"replay {controller:<11}: {x['simulated_h']:.0f} simulated h in {x['wall_s']:.2f} s = "
                     f"{x['sim_h_per_wall_s']:.1f} simulated h per wall s ({x['realtime_factor']:,.0f}x real time), "
                     f"{x['violations']} safety faults")
    return "\n".join(lines)


if __name__ == "__main__":  # a child measurement: python -m hw.replay.bench TASK PATH CONTROLLER WARM-UP-FILE
    print(json.dumps(_child(*sys.argv[1:5])))

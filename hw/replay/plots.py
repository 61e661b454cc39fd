"""Plots a traffic engineer expects from a hi-res log (PNG, matplotlib): the Purdue coordination diagram and the
split monitor, one figure per signal with one panel per phase.

Purdue coordination diagram (ATSPM convention): each cycle of a phase starts at the end of its yellow (code 9, the
start of red); a dot per vehicle arrival (detector on, 82, at the phase's advance detectors, else its stop-bar
count or presence detectors) at its time into the cycle, and the green (1) and yellow (8) starts as lines.
Split monitor: each service's split (phase on 0 to phase inactive 12), coloured by how it ended (gap-out 4,
max-out 5, force-off 6, or unknown when the log names none).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hw.replay.detector_config import DetectorChannel
from hw.replay.events import EventTable

_TERMINATION_COLOURS = {4: ("gap-out", "tab:green"), 5: ("max-out", "tab:red"), 6: ("force-off", "tab:blue"),
                        0: ("no 4/5/6 logged", "tab:gray")}


def _phases(table: EventTable) -> list[int]:
    return sorted(set(table.param[table.code == 1].tolist()))


def _arrival_channels(config: list[DetectorChannel], phase: int) -> list[int]:
    mine = [c for c in config if c.phase == phase]
    for kind in ("advance", "stop_bar_count", "presence"):
        chosen = [c.channel for c in mine if c.function == kind]
        if chosen:
            return chosen
    return []


def _hours(t: np.ndarray, t0: float) -> np.ndarray:
    return (t - t0) / 3600.0


def _grid(n: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 2 if n > 1 else 1
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(7.5 * cols, 3.6 * rows), squeeze=False)
    return fig, axes.ravel(), plt


def _clock_label(t0: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(t0, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def purdue_coordination_diagram(table: EventTable, config: list[DetectorChannel], out: Path | str) -> Path | None:
    """Write the PCD of one signal's log (all its phases) as a PNG.

    :param table: the events of one signal.
    :param config: its detector channels.
    :param out: the PNG file.
    :returns: the file, or None when the log has no phase that turned green.
    """
    phases = _phases(table)
    if not phases:
        return None
    sid = str(table.signal[0])
    t0 = float(table.time_s[0])
    fig, axes, plt = _grid(len(phases))
    for ax, phase in zip(axes, phases):
        of_phase = table.param == phase
        red_starts = table.time_s[(table.code == 9) & of_phase]
        greens = table.time_s[(table.code == 1) & of_phase]
        yellows = table.time_s[(table.code == 8) & of_phase]
        channels = _arrival_channels(config, phase)
        arrivals = table.time_s[(table.code == 82) & np.isin(table.param, channels)]
        if len(red_starts) < 2:
            ax.set_title(f"phase {phase}: fewer than two cycles")
            continue

        def into_cycle(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            k = np.searchsorted(red_starts, t, side="right") - 1
            ok = (k >= 0) & (k < len(red_starts) - 1)
            return t[ok], t[ok] - red_starts[k[ok]]

        ta, ya = into_cycle(arrivals)
        in_green = np.zeros(len(ta), dtype=bool)
        gk = np.searchsorted(greens, ta, side="right") - 1
        yk = np.searchsorted(yellows, ta, side="right") - 1
        has_g = gk >= 0
        in_green[has_g] = greens[gk[has_g]] > np.where(yk[has_g] >= 0, yellows[np.maximum(yk[has_g], 0)], -np.inf)
        ax.scatter(_hours(ta[in_green], t0), ya[in_green], s=3, c="tab:green", label="arrival on green")
        ax.scatter(_hours(ta[~in_green], t0), ya[~in_green], s=3, c="tab:red", label="arrival on red/yellow")
        tg, yg = into_cycle(greens)
        ty, yy = into_cycle(yellows)
        tc = red_starts[1:]
        ax.plot(_hours(tg, t0), yg, c="darkgreen", lw=1, label="begin green")
        ax.plot(_hours(ty, t0), yy, c="goldenrod", lw=1, label="begin yellow")
        ax.plot(_hours(tc, t0), np.diff(red_starts), c="black", lw=0.6, alpha=0.6, label="cycle end")
        aog = 100.0 * in_green.mean() if len(ta) else float("nan")
        ax.set_title(f"phase {phase}: {len(ta)} arrivals (channels {','.join(map(str, channels)) or 'none'}), "
                     f"{aog:.0f} % on green", fontsize=9)
        ax.set_xlabel(f"hours since {_clock_label(t0)}")
        ax.set_ylabel("seconds into cycle")
        ax.set_ylim(0, float(np.percentile(np.diff(red_starts), 99)) * 1.05)
    axes[0].legend(fontsize=7, loc="upper right", markerscale=3)
    for ax in axes[len(phases):]:
        ax.axis("off")
    fig.suptitle(f"Purdue coordination diagram, signal {sid}")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return Path(out)


def split_monitor(table: EventTable, out: Path | str) -> Path | None:
    """Write the split monitor of one signal's log (all its phases) as a PNG.

    :param table: the events of one signal.
    :param out: the PNG file.
    :returns: the file, or None when the log has no complete phase service (0 then 12).
    """
    phases = sorted(set(table.param[table.code == 0].tolist()))
    if not phases:
        return None
    sid = str(table.signal[0])
    t0 = float(table.time_s[0])
    fig, axes, plt = _grid(len(phases))
    for ax, phase in zip(axes, phases):
        of_phase = table.param == phase
        on = table.time_s[(table.code == 0) & of_phase]
        off = table.time_s[(table.code == 12) & of_phase]
        k = np.searchsorted(off, on, side="left")
        ok = k < len(off)
        start, end = on[ok], off[k[ok]]
        if ok.any():  # a service ends at the first 12 after it; drop services whose 12 belongs to a later 0
            nxt = np.r_[start[1:], np.inf]
            keep = end <= nxt
            start, end = start[keep], end[keep]
        term_kind = np.zeros(len(start), dtype=int)
        for code in (4, 5, 6):
            t = table.time_s[(table.code == code) & of_phase]
            j = np.searchsorted(t, start, side="left")
            hit = (j < len(t))
            hit[hit] &= t[j[hit]] <= end[hit]
            term_kind[hit] = code
        for code, (label, colour) in _TERMINATION_COLOURS.items():
            m = term_kind == code
            if m.any():
                ax.scatter(_hours(start[m], t0), (end - start)[m], s=6, c=colour, label=f"{label} ({m.sum()})")
        ax.set_title(f"phase {phase}: {len(start)} services, mean split {np.mean(end - start):.1f} s"
                     if len(start) else f"phase {phase}: no complete service", fontsize=9)
        ax.set_xlabel(f"hours since {_clock_label(t0)}")
        ax.set_ylabel("split (s)")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7, loc="best")
    for ax in axes[len(phases):]:
        ax.axis("off")
    fig.suptitle(f"Split monitor, signal {sid}")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return Path(out)


def write_plots(table: EventTable, config: list[DetectorChannel], out_dir: Path | str) -> list[Path]:
    """Both plots for every signal of the table: ``pcd_SIGNAL.png`` and ``split_monitor_SIGNAL.png``.

    :param table: the events.
    :param config: the detector configuration.
    :param out_dir: the folder (created).
    :returns: the files written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for sid in table.signals():
        one = table.for_signal(sid)
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in sid)
        mine = [c for c in config if c.signal == sid]
        for path in (purdue_coordination_diagram(one, mine, out_dir / f"pcd_{safe}.png"),
                     split_monitor(one, out_dir / f"split_monitor_{safe}.png")):
            if path is not None:
                written.append(path)
    return written

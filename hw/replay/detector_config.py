"""Detector configuration of recorded logs: which detector channel of which signal serves which phase, and how.

Layouts: ``SignalId,Phase,DetectorChannel,Function`` (CSV or Parquet) and the ``atspm`` package's
``DeviceId,Phase,Parameter,Function``. Functions, spelled either way (case, spaces and underscores ignored):
``advance``, ``presence``, ``stop_bar_count`` (atspm: ``stop bar count``), ``yellow_red`` (atspm: ``Yellow_Red``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from controller.errors import InputError

#: the functions a detector channel may have
FUNCTIONS = ("advance", "presence", "stop_bar_count", "yellow_red")
#: the atspm package's spelling of each function (its queries match on these strings)
ATSPM_FUNCTION_NAMES = {"advance": "Advance", "presence": "Presence", "stop_bar_count": "stop bar count",
                        "yellow_red": "Yellow_Red"}
_ALIASES = {"advance": "advance", "advancecount": "advance", "presence": "presence", "stopbarpresence": "presence",
            "stopbarcount": "stop_bar_count", "stopbar": "stop_bar_count", "lanebylanecount": "stop_bar_count",
            "yellowred": "yellow_red", "yellowredactivations": "yellow_red"}
_COLUMN_ROLES = {"signalid": "signal", "deviceid": "signal", "locationidentifier": "signal", "signal": "signal",
                 "phase": "phase", "phasenumber": "phase",
                 "detectorchannel": "channel", "parameter": "channel", "channel": "channel", "detchannel": "channel",
                 "function": "function", "detectionfunction": "function", "detectiontype": "function"}


@dataclass(frozen=True)
class DetectorChannel:
    """One detector channel of one signal.

    :param signal: signal id, as in the event log.
    :param phase: NEMA phase (1-16) the detector calls and extends.
    :param channel: detector channel number (the parameter of its 81/82 events).
    :param function: one of :data:`FUNCTIONS`.
    """

    signal: str
    phase: int
    channel: int
    function: str


def _norm(text: str) -> str:
    return re.sub(r"[^a-z]", "", str(text).lower())


def _frame(path: Path):
    import pandas as pd

    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        if head == b"PAR1":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str, skipinitialspace=True)
    except Exception as exc:  # pandas/pyarrow raise many types for a file that is not a table
        raise InputError(f"{path}: not a detector configuration ({str(exc).splitlines()[0]})") from None


def load_detector_config(path: Path | str) -> list[DetectorChannel]:
    """Read a detector configuration (CSV or Parquet, either layout).

    :param path: the file.
    :returns: the channels, sorted by (signal, phase, channel).
    :raises InputError: a missing column, a bad phase or channel number, an unknown function, a channel given
        twice for one signal, or no rows; the message names the row.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    df = _frame(path)
    roles: dict[str, str] = {}
    for col in df.columns:
        role = _COLUMN_ROLES.get(_norm(col))
        if role and role not in roles:
            roles[role] = col
    missing = [r for r in ("signal", "phase", "channel", "function") if r not in roles]
    if missing:
        raise InputError(f"{path}: not a detector configuration (no column for {', '.join(missing)}; "
                         f"columns: {', '.join(map(str, df.columns[:8]))})")
    channels: list[DetectorChannel] = []
    seen: dict[tuple[str, int], int] = {}
    for row, rec in enumerate(df[[roles[r] for r in ("signal", "phase", "channel", "function")]].itertuples(
            index=False), start=2):
        sig, phase, channel, function = (str(v).strip() for v in rec)
        where = f"{path}: row {row}"
        if not sig or sig == "nan":
            raise InputError(f"{where}: no signal id")
        try:
            phase_n, channel_n = int(float(phase)), int(float(channel))
        except ValueError:
            raise InputError(f"{where}: phase {phase!r} and channel {channel!r} must be whole numbers") from None
        if not 1 <= phase_n <= 16:
            raise InputError(f"{where}: phase {phase_n} is not a NEMA phase 1-16")
        if not 1 <= channel_n <= 255:
            raise InputError(f"{where}: detector channel {channel_n} is outside 1-255")
        kind = _ALIASES.get(_norm(function))
        if kind is None:
            raise InputError(f"{where}: unknown detector function {function!r} (expected one of "
                             f"{', '.join(FUNCTIONS)})")
        if (sig, channel_n) in seen:
            raise InputError(f"{where}: detector channel {channel_n} of signal {sig} already given on row "
                             f"{seen[(sig, channel_n)]}")
        seen[(sig, channel_n)] = row
        channels.append(DetectorChannel(sig, phase_n, channel_n, kind))
    if not channels:
        raise InputError(f"{path}: detector configuration has no rows")
    return sorted(channels, key=lambda c: (c.signal, c.phase, c.channel))


def channels_for(config: list[DetectorChannel], signal: str) -> list[DetectorChannel]:
    """The channels of one signal.

    :param config: the whole configuration.
    :param signal: the signal id.
    """
    return [c for c in config if c.signal == signal]


#: how an ondaverde detector kind appears in an ATSPM configuration (zones have no ATSPM function: not listed)
_KIND_FUNCTIONS = {"stopbar": "presence", "advance": "advance"}


def detector_config_for(intersection) -> list[DetectorChannel]:
    """The ATSPM detector configuration of an ondaverde intersection's own event log.

    The core logs detector ``k`` (0-based in ``intersection.detectors``) as channel ``k + 1`` and phase index
    ``p`` as phase ``p + 1`` (``controller/events.py``), so the configuration uses the same numbers. Stop-bar loops
    become ``presence`` detectors and advance loops ``advance`` detectors of the first phase that shows one of
    their links a protected green (``G``), else a permissive one; radar and exit zones are left out (a zone's
    on/off is "not empty", not a vehicle count).

    :param intersection: a :class:`controller.intersection.Intersection`.
    """
    out = []
    for k, det in enumerate(intersection.detectors):
        function = _KIND_FUNCTIONS.get(det.kind)
        if function is None:
            continue
        phase = next((p for p, ph in enumerate(intersection.phases) if any(ph.state[i] == "G" for i in det.links)),
                     None)
        if phase is None:
            phase = next((p for p, ph in enumerate(intersection.phases) if ph.greens & set(det.links)), None)
        if phase is not None:
            out.append(DetectorChannel(intersection.id, phase + 1, k + 1, function))
    return out

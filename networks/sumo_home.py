"""Locate SUMO from the eclipse-sumo wheel; nothing assumes a system SUMO.

``import libsumo`` sets ``SUMO_HOME`` to the ``sumo-data`` package when it is unset, a folder with no
binaries or tools; whatever was imported first, the wheel's folder is the one used here and handed to
child processes.
"""

from __future__ import annotations

import os
from pathlib import Path


def sumo_home() -> Path:
    """SUMO's home directory from the ``eclipse-sumo`` wheel; also sets SUMO_HOME and PROJ_LIB for child tools."""
    import sumo  # the wheel; importing it sets SUMO_HOME if unset

    home = Path(sumo.SUMO_HOME)
    os.environ["SUMO_HOME"] = str(home)
    os.environ["PROJ_LIB"] = str(home / "data" / "proj")
    return home


def sumo_binary(name: str = "sumo") -> str:
    """Path of a real SUMO binary (not the wheel's Python wrapper script), e.g. ``sumo``, ``sumo-gui``, ``netconvert``."""
    return str(sumo_home() / "bin" / name)

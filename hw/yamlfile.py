"""Reading the field side's YAML files (daemon configuration, Modbus site maps) with one-line errors."""

from __future__ import annotations

from pathlib import Path

from controller.errors import InputError


def read_yaml(path: Path | str, what: str):
    """The parsed document of ``path``.

    :param path: the file.
    :param what: what the file is, for messages ("configuration file", "Modbus map file").
    :raises InputError: for a missing, unreadable or malformed file.
    """
    import yaml

    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: not a YAML {what} ({str(exc).splitlines()[0]})") from None

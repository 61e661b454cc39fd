"""The Modbus register map: defaults, per-site YAML overrides, and one-line refusals of bad maps; the
virtual controller's command line refuses bad input the same way."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from controller.errors import InputError
from hw.modbus_map import DETECTORS, PHASES, ModbusMap


def test_default_map_blocks_do_not_overlap_and_follow_the_documented_layout():
    m = ModbusMap()
    assert (m.hold, m.force_off, m.vehicle_call, m.heartbeat, m.greens, m.detector_count) == (0, 8, 16, 0, 0, 16)
    assert m.size("coils") == m.preempt_request + 8  # preempt coils 1-8 close the coil table
    assert m.size("input_registers") == m.detector_occupancy + DETECTORS
    assert PHASES == 8


def test_a_site_file_moves_blocks(tmp_path):
    f = tmp_path / "site.yaml"
    f.write_text("hold: 100\nheartbeat: 40\n")
    m = ModbusMap.load(f)
    assert m.hold == 100 and m.heartbeat == 40 and m.force_off == 8


@pytest.mark.parametrize("text, words", [
    ("hold: 4\n", "overlaps"),
    ("holdd: 4\n", "unknown Modbus block 'holdd'"),
    ("hold: four\n", "integer address"),
    ("- 1\n- 2\n", "mapping"),
    ("hold: [\n", "not a YAML"),
    ("greens: 70000\n", "0..65535"),
])
def test_bad_site_files_are_refused_with_one_line(tmp_path, text, words):
    f = tmp_path / "site.yaml"
    f.write_text(text)
    with pytest.raises(InputError, match=words) as exc:
        ModbusMap.load(f)
    assert "\n" not in str(exc.value)


def test_a_missing_site_file_is_named(tmp_path):
    with pytest.raises(InputError, match="not found"):
        ModbusMap.load(tmp_path / "nope.yaml")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ondaverde.cli", "virtual-controller", *args], capture_output=True,
                          text=True, timeout=60)


def test_virtual_controller_bad_input_gives_one_line_and_exit_2(tmp_path):
    bad_map = tmp_path / "m.yaml"
    bad_map.write_text("omit: 0\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = str(taken.getsockname()[1])
        for args, words in [(("--port", "70000"), "not a TCP port"),
                            (("--port", busy, "--seconds", "1"), "cannot serve Modbus on 127.0.0.1"),
                            (("--intersection", "nope", "--seconds", "1"), "no traffic light 'nope'"),
                            (("--modbus-map", str(bad_map), "--seconds", "1"), "overlaps"),
                            (("--time-scale", "0", "--seconds", "1"), "time scale"),
                            (("--local-policy", "magic", "--seconds", "1"), "unknown controller 'magic'")]:
            proc = _cli(*args)
            assert proc.returncode == 2, (args, proc.stderr)
            assert words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)

"""The core stays pure: controller/ imports only numpy and the standard library, and nothing happens on import."""

import ast
import doctest
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "controller"
ALLOWED_THIRD_PARTY = {"numpy"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_imports_only_numpy_stdlib_and_itself():
    offenders = {}
    for path in CORE.rglob("*.py"):
        bad = {n for n in _imports(path)
               if n not in sys.stdlib_module_names and n not in ALLOWED_THIRD_PARTY and n != "controller"}
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def test_import_walker_sees_a_forbidden_import(tmp_path):
    # guard against a walker that finds nothing: it must flag a planted SUMO import
    planted = tmp_path / "bad.py"
    planted.write_text("import os\nfrom libsumo import simulation\n")
    assert "libsumo" in _imports(planted)


def test_importing_the_core_loads_no_simulator_or_protocol_library():
    code = ("import sys, controller.signal_controller, controller.policies.registry; "
            "bad=[m for m in ('libsumo','traci','sumolib','pymodbus','pysnmp','gymnasium','torch') if m in sys.modules]; "
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("module", sorted(p.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
                                          for p in CORE.rglob("*.py")))
def test_core_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0

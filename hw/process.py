"""A virtual controller in its own process, on a free loopback port (for tests and benchmarks)."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager


def free_port() -> int:
    """A TCP port nobody listens on at 127.0.0.1 (high, chosen by the kernel)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def virtual_controller(port: int, *args: str, timeout_s: float = 60.0):
    """``ondaverde virtual-controller --port PORT ARGS`` in a child process, up until the block ends.

    Yields the process once it prints that it listens; stdout stays readable for its final summary.
    """
    errors = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a chatty child never blocks on it
    proc = subprocess.Popen([sys.executable, "-m", "ondaverde.cli", "virtual-controller", "--port", str(port), *args],
                            stdout=subprocess.PIPE, stderr=errors, text=True)
    try:
        line = proc.stdout.readline()
        if not line.startswith("listening on"):
            proc.kill()
            proc.wait()
            errors.seek(0)
            raise RuntimeError(f"virtual controller did not start: {line!r} {errors.read()[-2000:]}")
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        errors.close()


def wait_until(predicate, timeout_s: float, step_s: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout_s`` passes; returns its last value."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step_s)
    return bool(predicate())

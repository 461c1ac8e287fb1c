"""A legacy system stand-in in a process of its own, so a test can kill it and bring it back."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import IO

__all__ = ["LegacyProcess", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LegacyProcess:
    """``python <argv...>`` listening on ``127.0.0.1:port``: :meth:`start`, :meth:`kill`.

    The port stays the same across restarts, as a real system's address does.
    """

    def __init__(self, argv: Sequence[str], port: int, *, ready_timeout: float = 20.0) -> None:
        self.argv = [sys.executable, *argv]
        self.port = port
        self._ready_timeout = ready_timeout
        self._popen: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        """True while the process lives."""
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> None:
        """Start it and return once the port accepts connections."""
        if self.running:
            return
        # A file, not a pipe: a chatty server must never block on a full pipe.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by kill()
        # The argv is the test's own stand-in script, run with this interpreter.
        self._popen = subprocess.Popen(  # noqa: S603
            self.argv, stdout=subprocess.DEVNULL, stderr=self._log, env=dict(os.environ)
        )
        deadline = time.monotonic() + self._ready_timeout
        while not _accepts(self.port):
            if self._popen.poll() is not None or time.monotonic() > deadline:
                err = self._output()
                self.kill()
                raise RuntimeError(f"legacy stand-in {self.argv} did not start:\n{err[-2000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: the system is gone at once (connections refused from now on)."""
        if self._popen is None:
            return
        if self._popen.poll() is None:
            self._popen.send_signal(signal.SIGKILL)
            self._popen.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None
        self._popen = None

    def _output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def __enter__(self) -> LegacyProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0

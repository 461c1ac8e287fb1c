"""Operating-system chores of the local broker: ports, child processes, a start lock.

Kept apart from the broker's life cycle in ``_local_broker`` so each stays small.
"""

from __future__ import annotations

import asyncio
import ctypes
import fcntl
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from exchange._errors import BrokerError, LocalBrokerError
from exchange._kafka_probe import check_reachable


@contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file``: two starts of one broker run one at a time."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def parent_death_signal() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking Linux to SIGTERM the child when the starting thread dies.

    A test session killed hard (SIGKILL, a crashed interpreter) then leaves no broker behind.
    prctl is looked up here, in the parent: between fork and exec the child only calls it.
    The thread that starts the child must outlive it (the main thread, in pytest).
    """
    if sys.platform != "linux":
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1  # from <sys/prctl.h>

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return preexec


def terminate_child(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM a child process, SIGKILL it if it outlives ``timeout``, and reap it."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def answers(bootstrap: str, options: dict[str, Any] | None = None) -> bool:
    """Whether the broker at ``bootstrap`` accepts connections and describes its cluster.

    ``options``: the aiokafka security arguments the listener needs (secured broker).
    """
    try:
        with socket.create_connection(host_port(bootstrap), timeout=1.0):
            pass
    except OSError:
        return False  # Not listening yet: skip the client, which would log every refusal.

    async def probe() -> bool:
        try:
            info = await check_reachable(bootstrap, 5.0, options)
        except BrokerError:
            return False
        return info.broker_count > 0

    # In a thread of its own: callers may already run an event loop (pytest, async CLIs).
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, probe()).result()


def check_port_free(port: int, role: str) -> None:
    """Raise ``LocalBrokerError`` naming the port and the way out if it is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the JVM does: a port left in TIME_WAIT by an earlier run is free to reuse.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise LocalBrokerError(
                f"port 127.0.0.1:{port} for the {role} is in use ({exc.strerror}); stop what "
                "uses it, or choose another with `exchange broker start --fresh --port N`"
            ) from exc


def free_ports(count: int, avoid: int | None = None) -> list[int]:
    """Distinct ports free right now (all sockets held open together, so no repeats)."""
    with ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < count:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
            if port != avoid:
                ports.append(port)
        return ports


def host_port(bootstrap: str) -> tuple[str, int]:
    """``"127.0.0.1:9092"`` -> ``("127.0.0.1", 9092)``."""
    host, _, port = bootstrap.rpartition(":")
    return host, int(port)

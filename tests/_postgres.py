"""A real PostgreSQL server for tests: a fresh cluster in a temporary folder, on loopback.

::

    with PostgresServer.started() as pg:          # initdb, start, wait until ready
        pg.create_database("orders")
        url = pg.url("orders")                    # postgresql+asyncpg://exchange@127.0.0.1:port/orders
        pg.stop(); pg.start()                     # the legacy system down for a while, then back
                                                  # (same data, same port)

The postmaster runs as a direct child (not daemonised by ``pg_ctl``), so a test session that
dies takes it along (Linux parent-death signal) and ``stop`` can wait for its exit: no server
outlives the tests. PostgreSQL refuses to run as root, so under root the cluster belongs to
the ``postgres`` system user that the Debian package creates, in a folder of its own under the
system temporary directory (pytest's are private to root). TCP on 127.0.0.1 only, trust
authentication for the one superuser ``exchange``, unix sockets inside the cluster's folder.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from exchange._local_broker_os import parent_death_signal

__all__ = ["PostgresServer", "find_bin_dir"]

USER = "exchange"
#: initdb plus start-up on two busy cores.
START_TIMEOUT = 60.0


def find_bin_dir() -> Path:
    """The folder with ``initdb`` and ``postgres``: Debian's newest, else the PATH's."""
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1].parent
    found = shutil.which("postgres") or shutil.which("initdb")
    if found is None:
        raise RuntimeError(
            "PostgreSQL is not installed (no initdb/postgres); `make test` installs it, or "
            "apt-get install postgresql"
        )
    return Path(found).resolve().parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """One throw-away PostgreSQL cluster; ``start``/``stop`` any number of times."""

    def __init__(self, root: Path, *, bin_dir: Path | None = None) -> None:
        self.root = root
        self.data = root / "data"
        self.bin = bin_dir or find_bin_dir()
        self.port = _free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._run_as = "postgres" if os.geteuid() == 0 else None

    @classmethod
    @contextlib.contextmanager
    def started(cls) -> Iterator[PostgresServer]:
        """A fresh cluster, running; stopped and removed on exit."""
        root = Path(tempfile.mkdtemp(prefix="exchange-pg-"))
        server = cls(root)
        try:
            server.init()
            server.start()
            yield server
        finally:
            server.stop()
            shutil.rmtree(root, ignore_errors=True)

    # --- lifecycle ----------------------------------------------------------------------------

    def init(self) -> None:
        """``initdb`` the cluster (owned by the ``postgres`` user when running as root)."""
        if self._run_as is not None:
            owner = pwd.getpwnam(self._run_as)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self._run(
            "initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8",
            "--no-sync", "--locale=C",
        )  # fmt: skip

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the postmaster on the same port as before; return once it accepts queries."""
        if self.running:
            return
        command = [
            str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=200", "-c", "shared_buffers=32MB",
        ]  # fmt: skip
        log = (self.root / "postgres.log").open("ab")
        with log:
            self._proc = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                user=self._run_as,
                cwd=self.root,
                preexec_fn=parent_death_signal(),  # noqa: PLW1509 - only prctl, see its docstring
            )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited at start-up:\n{self.log_tail()}")
            ready = subprocess.run(
                [str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                check=False,
            )
            if ready.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL not ready in {timeout} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, close clients), then reap."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGQUIT)  # immediate shutdown
            proc.wait(10)

    def kill(self) -> None:
        """Immediate shutdown (SIGQUIT: no checkpoint, clients cut off, as in a crash); the
        next :meth:`start` recovers from the WAL. The conformance kit's "legacy down"."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGQUIT)
            proc.wait(30)

    @property
    def running(self) -> bool:
        """True while the postmaster runs."""
        return self._proc is not None and self._proc.poll() is None

    # --- use ----------------------------------------------------------------------------------

    def url(self, database: str = "postgres", driver: str = "asyncpg") -> str:
        """A SQLAlchemy URL for ``database`` over TCP on loopback."""
        return f"postgresql+{driver}://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create a database; return its SQLAlchemy URL."""
        self.psql("postgres", f'CREATE DATABASE "{name}"')
        return self.url(name)

    def psql(self, database: str, sql: str) -> str:
        """Run SQL with ``psql`` (set-up and checks outside the code under test)."""
        command = [
            str(self.bin / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", database, "-c", sql,
        ]  # fmt: skip
        done = subprocess.run(
            command,
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode()

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log, for failure messages."""
        log = self.root / "postgres.log"
        if not log.exists():
            return "(no log)"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [str(self.bin / tool), *args],
            capture_output=True,
            user=self._run_as,
            cwd=self.root,
            check=False,
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")
            raise RuntimeError(f"{tool} failed ({done.returncode}):\n{output}")

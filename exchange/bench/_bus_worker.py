"""``python -m exchange.bench._bus_worker [worker options]``: the real ``exchange worker``,
started by the benchmark, that also stops when the benchmark's runner is gone.

The command line is the one an operator runs (``exchange worker``, same settings, same code);
a daemon thread only watches the parent and sends this process SIGTERM once it has died, so
a killed benchmark run leaves no worker behind holding the run's partitions.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time


def _exit_with_parent() -> None:
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


def main() -> None:
    """Run ``exchange worker`` with this process's arguments."""
    threading.Thread(target=_exit_with_parent, name="orphan-guard", daemon=True).start()
    from exchange.cli import main as cli

    sys.argv = ["exchange", "worker", *sys.argv[1:]]
    cli()


if __name__ == "__main__":
    main()

"""PySpark's Python worker daemon, quiet about a worker whose socket Spark has already closed.

When a task fails in the JVM while its Python worker is at work (a CSV line Spark's FAILFAST read refuses, fed to the
`mapInArrow` that stages the rows), Spark closes that worker's socket and reports the task's failure, which
riskconsole says in one line. The worker's last flush then meets the closed socket, and PySpark's daemon printed that
`BrokenPipeError`'s traceback to the terminal Spark's driver runs in, above riskconsole's line. Here such a worker
ends without a word, as the daemon's own worker would after the traceback (not reused); any other failure is
PySpark's as before. `engines.spark.session_conf` names this module as `spark.python.daemon.module` in local mode,
where that terminal is the user's (a cluster's executors log it apart; their daemon stays PySpark's).

Imports nothing heavy: the daemon forks a worker per task, and must start no thread before it does (pyspark.daemon).
"""

from __future__ import annotations

import socket

from pyspark import daemon

_pyspark_worker = daemon.worker


def worker(sock: socket.socket, authenticated: bool) -> int:
    """PySpark's `daemon.worker`; a socket the JVM closed under it ends the worker with exit code 1, quietly."""
    try:
        return _pyspark_worker(sock, authenticated)
    except (BrokenPipeError, ConnectionResetError):
        return 1  # not 0: the daemon's fork then stops serving tasks and exits, as after PySpark's traceback


if __name__ == "__main__":
    daemon.worker = worker  # `manager` looks it up in its module at each fork
    daemon.manager()

"""`riskconsole daemon`: one resident process that keeps a workspace's database open and runs the CLI's read-only
commands for it (issue 14), as dmypy or Gradle's daemon do.

A new CLI process pays ~0.3 s before a line of riskconsole runs (importing DuckDB and numpy, opening the database,
its first scan cold): 3.7x one warm scan at 2M events. Through the daemon a command costs the client's start and
one round trip; the daemon has everything imported and the database's blocks in DuckDB's buffers.

What keeps its answers equal to an in-process run's (docs/cli.md "The daemon"):
- only the user who started it is served (a private socket folder, mode 0600, the peer's uid checked);
- the client's code identity (`daemon_client.identity`), settings (RISKCONSOLE_ variables, TZ, warning filters) and
  workspace must equal the daemon's, else it refuses and the client runs the command itself; a daemon whose own
  files changed on disk stops;
- every command runs in a new `Session`, in the client's current folder and umask, with the client's output
  encoding; files (strategies, lists, dataset.yaml, cards) are read again, as in a new process;
- the database is reopened when its file changed (a load publishes a new file, a train writes it), and a load or
  a train, from any face, first asks the daemon to let go of it where it opens the file for writing
  (`Workspace.connect` -> `daemon_client.let_go`), so DuckDB's file lock never blocks them.
"""

from __future__ import annotations

import io
import json
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path

from riskconsole import daemon_client as wire
from riskconsole.errors import RiskConsoleError
from riskconsole.workspace import Workspace

IDLE_MINUTES = 60.0
GREETING_SECONDS = 5.0  # a client that has not sent its whole request by then is dropped
GONE = signal.SIGUSR1  # sent to the daemon's main thread when the client of the running command went away


class ClientGone(BaseException):
    """The client of the running command is gone (Ctrl-C, killed): the command stops where it is, as it would have
    in the client's own process, writing no more files. A BaseException, like KeyboardInterrupt: no `except
    Exception` of a command swallows it."""


class _Sink(io.RawIOBase):
    """A stream's bytes, sent to the client as frames of one kind as they are written."""

    def __init__(self, sock: socket.socket, kind: bytes, lost: list[bool]) -> None:
        super().__init__()
        self.sock, self.kind, self.lost = sock, kind, lost

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if not self.lost[0]:
            try:
                wire.send(self.sock, self.kind, bytes(data))
            except OSError:  # the client went away (Ctrl-C): the command finishes, unheard
                self.lost[0] = True
        return len(data)


def _stream(sock: socket.socket, kind: bytes, encoding: str, errors: str, lost: list[bool]) -> io.TextIOWrapper:
    """A text stream like the client's own stdout or stderr (its encoding and error handler), not a terminal."""
    return io.TextIOWrapper(_Sink(sock, kind, lost), encoding=encoding, errors=errors, write_through=True)


def _stamp(ws: Workspace) -> tuple:
    """What identifies the database's content: device, inode, size, modification and change time of the file and
    its WAL (a load replaces the file, a train writes it; the change time is the one no `touch -d` or `cp -p` sets
    back, and moves with any write of the file in place)."""
    out = []
    for path in (ws.db_path, Path(f"{ws.db_path}.wal")):
        try:
            info = os.stat(path)
            out.append((info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


class Daemon:
    """The daemon of one workspace: its read-only connection and what it answers."""

    def __init__(self, ws: Workspace, idle_minutes: float = IDLE_MINUTES) -> None:
        self.ws, self.idle = ws, idle_minutes * 60
        self.identity = wire.identity()
        self.con, self.stamp = None, None
        self.served, self.since, self.stopping = 0, time.time(), False
        self._engines: dict[tuple, str] = {}  # (--engine, dataset.yaml's bytes) -> the engine a command runs on
        self.stoppable = False  # `serve` handles GONE: a command whose client leaves is stopped
        self.running = False  # a command runs on the main thread, and GONE may stop it

    # ------------------------------------------------------------ the database

    def database(self):
        """The read-only connection, (re)opened when the file changed since it was opened; None where it cannot be
        opened (no database yet, a load holding it): the command's own session then says why, as in-process."""
        stamp = _stamp(self.ws)
        if self.con is None or stamp != self.stamp:
            self.release()
            try:
                self.con = self.ws.connect_safe()
            except Exception:  # noqa: BLE001 - the command opens it again and reports the problem itself
                self.con = None
            self.stamp = stamp
        return self.con

    def warm(self) -> None:
        """Import what the commands run and open the database, so that the first command answers as fast as the
        next ones (with stdout not a terminal: DuckDB then draws no progress bar, as for every command)."""
        import importlib

        for module in ("session", "gate", "sweep", "optimize", "monitor", "config", "expressions"):
            importlib.import_module(f"riskconsole.{module}")
        saved, sys.stdout = sys.stdout, io.StringIO()
        try:
            self.database()
        finally:
            sys.stdout = saved

    def release(self) -> None:
        """Close the connection (DuckDB's file lock goes with it): a load or a train may write."""
        if self.con is not None:
            self.con.close()
        self.con, self.stamp = None, None

    # ------------------------------------------------------------ requests

    def refusal(self, req: dict, args) -> str | None:
        """Why this daemon must not run `req` (the client then runs it itself); None: it may."""
        if req.get("identity") != self.identity:
            if wire.identity() != self.identity:  # this daemon's own files changed: it serves nobody any more
                self.stopping = True
                return "the daemon's code changed on disk since it started (it stops)"
            return "the client runs other code (version, files or installed packages) than the daemon"
        if req.get("root") != str(self.ws.root):
            return f"the daemon serves {self.ws.root}"
        if {key: req.get(key) for key in ("env", "warnoptions", "encoding")} != wire.settings():
            return "the client's RISKCONSOLE_ settings, TZ, warning filters or locale encoding differ from the daemon's"
        if args.command not in wire.DELEGATED or not os.path.isdir(req.get("cwd", "")):
            return f"{args.command} runs in the client's process"
        if self._engine(args) != "duckdb":
            return "engine spark: commands run in the client's process"
        return None

    def _engine(self, args) -> str:
        """The engine the command would run on (`engines.choose`, as its session decides); a dataset.yaml that does
        not parse: duckdb (the command reports the problem itself)."""
        from riskconsole.engines import choose

        try:
            text = self.ws.dataset_path.read_bytes()
        except OSError:
            text = b""
        key = (args.engine, text)
        if key not in self._engines:
            try:
                self._engines[key] = choose(args.engine, self.ws.dataset())
            except (RiskConsoleError, OSError):
                self._engines[key] = "duckdb" if args.engine in (None, "duckdb") else args.engine
        return self._engines[key]

    def answer(self, conn: socket.socket, req: dict) -> None:
        """Run one client request and send its output and exit code (or the refusal)."""
        from riskconsole import cli

        lost = [False]
        try:
            args = cli.parse(req["argv"])
            reason = self.refusal(req, args)
            if not 0 <= req["umask"] <= 0o777:
                raise ValueError("umask")
            streams = [_stream(conn, kind, *req["streams"][i], lost) for i, kind in enumerate((b"o", b"e"))]
        except (SystemExit, Exception) as err:  # noqa: BLE001 - a request this daemon cannot read: in-process
            reason = f"unreadable request ({type(err).__name__})"
        if reason:
            wire.send(conn, b"r", reason.encode())
            return
        done = threading.Event()
        if self.stoppable:
            threading.Thread(target=self._watch, args=(conn, done), daemon=True).start()
        try:
            code = self._run(cli, args, req, streams)
        except ClientGone:  # nobody to tell
            lost[0] = True
        finally:
            done.set()
        self.served += 1
        if not lost[0]:
            wire.send(conn, b"x", str(code).encode())

    def _watch(self, conn: socket.socket, done: threading.Event) -> None:
        """Until `done`: once the client's end of `conn` closes (it sends nothing after its request), stop the
        command: GONE to the main thread, whose handler raises ClientGone at the command's next step (a blocking
        read, of a FIFO say, is interrupted for it)."""
        poller = select.poll()
        poller.register(conn, select.POLLIN | select.POLLHUP)
        while not done.is_set():
            if poller.poll(100) and not done.is_set():
                signal.pthread_kill(threading.main_thread().ident, GONE)
                return

    def gone(self, signum, frame) -> None:
        """GONE's handler: the command running stops (never the daemon between commands)."""
        if self.running:
            self.running = False
            raise ClientGone

    def _run(self, cli, args, req: dict, streams: list[io.TextIOWrapper]) -> int:
        """`args` run as the client's process would run them: its folder, umask and output streams."""
        saved, mask = (sys.stdout, sys.stderr), os.umask(req["umask"])
        try:
            os.chdir(req["cwd"])
            sys.stdout, sys.stderr = streams
            _fresh_warnings()
            args.connection = self.database()
            self.running = self.stoppable  # from here to `finally`, GONE stops the command (ClientGone)
            return cli.run_parsed(args, self.ws)
        except SystemExit as err:  # the daemon goes on; the client exits as the command asked
            if isinstance(err.code, int) or err.code is None:
                return err.code or 0
            print(err.code, file=sys.stderr)  # as Python prints `sys.exit("message")`
            return 1
        except Exception:  # noqa: BLE001 - what a new process would print for a bug: the traceback, exit 1
            traceback.print_exc()
            return 1
        finally:
            self.running = False  # first: what restores the daemon's state below is never cut short
            for stream in streams:
                stream.flush()
            sys.stdout, sys.stderr = saved
            os.chdir("/")  # no folder of a client's is kept busy (or needed: the next one may be deleted)
            os.umask(mask)

    def handle(self, conn: socket.socket) -> None:
        """One connection: the greeting, then a request (`q`) or a question (`l`, `s`, `t`)."""
        try:
            if wire.peer_uid(conn) != os.getuid():
                return
            conn.settimeout(GREETING_SECONDS)
            wire.send(conn, b"h", json.dumps({"protocol": wire.PROTOCOL, "pid": os.getpid()}).encode())
            kind, payload = wire.receive(conn, time.monotonic() + GREETING_SECONDS)
            conn.settimeout(None)
            if kind == b"q":
                self.answer(conn, json.loads(payload))
                return
            if kind == b"l":
                self.release()
            elif kind == b"t":
                self.stopping = True
            elif kind != b"s":
                return
            wire.send(conn, b"x", json.dumps(self.status()).encode())
        except (OSError, EOFError, ValueError, wire.ProtocolError):
            return

    def status(self) -> dict:
        return {"root": str(self.ws.root), "served": self.served, "since": self.since, "idle_minutes": self.idle / 60,
                "open": self.con is not None, "stopping": self.stopping}


def _fresh_warnings() -> None:
    """Warnings already shown by an earlier command are shown again, as a new process would show them."""
    mutated = getattr(warnings, "_filters_mutated", None)
    if mutated is not None:
        mutated()  # every module's registry of warnings shown is out of date
    warnings.onceregistry.clear()


def listen(ws: Workspace) -> tuple[socket.socket, Path]:
    """The daemon's socket, bound at the workspace's socket path (mode 0600, in a private folder).

    Raises:
        RiskConsoleError: no private folder for it, not Linux, or a daemon already serves the workspace."""
    if not hasattr(socket, "SO_PEERCRED"):
        raise RiskConsoleError("daemon: needs Linux (it checks which user connects with SO_PEERCRED); run commands "
                               "without it")
    folder = wire.runtime_dir(create=True)
    if folder is None:
        raise RiskConsoleError("daemon: no private folder for its socket ($XDG_RUNTIME_DIR/riskconsole or "
                               f"/tmp/riskconsole-{os.getuid()} must be a folder of yours with mode 0700)")
    path = wire.socket_path(ws.root, folder)
    running = wire.ask(ws.root, b"s")
    pid = running.get("pid") if running is not None else wire.listener(ws.root)  # a busy one greets nobody
    if pid is not None:
        raise RiskConsoleError(f"daemon: one already serves {ws.root} (PID {pid}); stop it with "
                               f"`riskconsole daemon --stop --workspace {ws.root}`")
    staging = path.with_name(f"{path.name}.{os.getpid()}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    staging.unlink(missing_ok=True)
    old = os.umask(0o177)
    try:
        sock.bind(str(staging))
    finally:
        os.umask(old)
    os.chmod(staging, 0o600)
    sock.listen(16)
    os.replace(staging, path)  # the path never names a socket nobody listens on
    return sock, path


def serve(ws: Workspace, idle_minutes: float = IDLE_MINUTES, say=print) -> None:
    """Answer requests for `ws` until stopped: Ctrl-C, SIGTERM, `riskconsole daemon --stop`, `idle_minutes`
    without a request, or its own code changing on disk."""
    sock, path = listen(ws)
    mine = os.stat(path).st_ino
    wire.SERVING = True
    daemon = Daemon(ws, idle_minutes)
    try:  # from here on every stop removes the socket: a SIGTERM right after the line below included
        signal.signal(signal.SIGTERM, _terminate)
        signal.signal(GONE, daemon.gone)
        daemon.stoppable = True
        daemon.warm()
        say(f"riskconsole daemon (PID {os.getpid()}) serves {ws.root} at {path} for {', '.join(wire.DELEGATED)}; "
            f"it stops after {idle_minutes:g} minutes without a request, on Ctrl-C, or on `riskconsole daemon --stop`")
        sys.stdout.flush()
        last = time.monotonic()
        while not daemon.stopping:
            left = daemon.idle - (time.monotonic() - last)
            if left <= 0 or not _still_ours(path, mine):
                break
            sock.settimeout(min(left, 30.0))
            try:
                conn, _ = sock.accept()
            except socket.timeout:
                continue
            with conn:
                daemon.handle(conn)
            last = time.monotonic()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        if _still_ours(path, mine):
            path.unlink(missing_ok=True)
        daemon.release()
    say(f"riskconsole daemon (PID {os.getpid()}) stopped after {daemon.served:,} commands")


def _still_ours(path: Path, inode: int) -> bool:
    try:
        return os.stat(path).st_ino == inode
    except OSError:
        return False


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt  # the same clean stop as Ctrl-C: the socket file removed

"""The CLI's side of `riskconsole daemon` (`daemon.py`): a read-only command asks the workspace's daemon to run it.

Imported by `cli.main` after the arguments are parsed and before any data library (DuckDB, numpy) is: what it
costs is what a delegated command costs beyond Python's start (issue 14). Every failure is silent and means "run
the command in this process, as without a daemon": no socket, a stale socket file, a daemon of other code or other
settings, a protocol error. Only once the daemon has started answering (output was relayed) is a failure an error.

The wire: frames of one kind byte, a 4-byte big-endian length and a payload. The daemon greets (`h`, JSON: protocol,
pid); the client sends one request (`q`, JSON) or a question (`l`: let go of the database, `s`: status, `t`: stop);
the daemon answers `r` (refused, a reason: run in-process), or `o`/`e` (bytes of stdout/stderr, in the order the
command wrote them) then `x` (the exit code).
"""

from __future__ import annotations

import codecs
import json
import os
import socket
import stat
import struct
import sys
import time
import zlib
from pathlib import Path

from riskconsole.names import DELEGATED as DELEGATED  # re-exported: the commands a daemon answers

PROTOCOL = 1
ENV_SWITCH = "RISKCONSOLE_DAEMON"  # 0: never delegate
HELLO_SECONDS = 1.0  # a daemon busy with another command longer than this: run in-process instead
SERVING = False  # True in a daemon's own process: it never asks itself (`let_go`)
MAX_FRAME = 1 << 30
_HEAD = struct.Struct(">cI")


class ProtocolError(Exception):
    """The other side spoke something else than this protocol."""


OTHER_FOLDERS = ("/run/user/{uid}/riskconsole", "/tmp/riskconsole-{uid}")  # where a daemon started elsewhere is


def runtime_dir(create: bool = False) -> Path | None:
    """The per-user folder of daemon sockets: $XDG_RUNTIME_DIR/riskconsole, else /tmp/riskconsole-UID; None where it
    is missing (and not `create`d) or is not a folder of this user that only this user may open (mode 0700)."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    folder = Path(base) / "riskconsole" if base and os.path.isabs(base) and os.path.isdir(base) \
        else Path(f"/tmp/riskconsole-{os.getuid()}")
    if create:
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
        except OSError:
            return None
    return folder if _private(folder) else None


def _private(folder: Path) -> bool:
    """A folder (not a link) of this user that only this user may open."""
    try:
        info = os.lstat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077


def socket_of(root: Path) -> Path | None:
    """The socket file of the daemon of `root`, in this environment's folder (`runtime_dir`) or where a daemon
    started in another environment of this user's put it (a login session has XDG_RUNTIME_DIR, usually
    /run/user/UID; a cron job, `sudo -u` or `env -i` has none): a load from cron must find a daemon started in a
    terminal to ask it to let go. None: no socket there."""
    for folder in _folders():
        path = socket_path(root, folder)
        if os.path.exists(path):
            return path
    return None


def _folders() -> list[Path]:
    """The private folders this user's daemons may have put their sockets in."""
    folders = [runtime_dir(), *(Path(f.format(uid=os.getuid())) for f in OTHER_FOLDERS)]
    return [f for f in dict.fromkeys(f for f in folders if f is not None) if _private(f)]


def socket_path(root: Path, folder: Path) -> Path:
    """The socket of the daemon of workspace `root` (resolved): named by a checksum of the path (a socket path is
    limited to ~107 bytes); the daemon checks the root it is asked for is its own."""
    raw = os.fsencode(str(root))
    return folder / f"{zlib.crc32(raw):08x}{zlib.adler32(raw):08x}.sock"


def identity() -> list:
    """What the code answering a command is: riskconsole's version, folder and the newest change of its .py files
    (with their count: a deleted file), the interpreter, and the distributions installed on the import path (a
    pip upgrade of DuckDB renames its .dist-info). A daemon serves only a client whose identity equals its own."""
    from riskconsole import __version__

    package = Path(__file__).resolve().parent
    newest, count = 0, 0
    for folder, dirs, files in os.walk(package):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if name.endswith(".py"):
                newest = max(newest, os.stat(os.path.join(folder, name)).st_mtime_ns)
                count += 1
    installed = []
    for entry in sys.path[1:]:  # [0] is the script's folder, or the current one: not what is imported from
        try:
            installed.append([entry, sorted(n for n in os.listdir(entry) if n.endswith(".dist-info"))])
        except OSError:
            continue
    return [__version__, str(package), newest, count, sys.executable, sys.version, installed]


def settings() -> dict:
    """The environment that changes a command's answer: every RISKCONSOLE_ variable (engine, memory limit, compiled
    cache, query time limit...) but the workspace (the request names it resolved) and this switch, TZ, Python's
    warning filters and the encoding files are written in where none is named (the locale's)."""
    import locale

    env = {k: v for k, v in os.environ.items()
           if k.startswith("RISKCONSOLE_") and k not in (ENV_SWITCH, "RISKCONSOLE_WORKSPACE")}
    env.update({k: os.environ[k] for k in ("TZ", "PYTHONWARNINGS") if k in os.environ})
    return {"env": env, "warnoptions": list(sys.warnoptions), "encoding": locale.getpreferredencoding(False)}


def _special(arg: str) -> bool:
    """An argument naming a device or a process file (/dev/stdin, /proc/self/fd/0): the daemon would read its own."""
    value = arg.partition("=")[2] if arg.startswith("--") and "=" in arg else arg
    return value == "-" or os.path.abspath(value).startswith(("/dev/", "/proc/"))


def send(sock: socket.socket, kind: bytes, payload: bytes = b"") -> None:
    sock.sendall(_HEAD.pack(kind, len(payload)) + payload)


def _exactly(sock: socket.socket, size: int, deadline: float | None = None) -> bytes:
    parts, left = [], size
    while left:
        if deadline is not None:  # the whole frame by then, not each piece within a timeout (a trickling peer)
            sock.settimeout(max(deadline - time.monotonic(), 1e-3))
        part = sock.recv(min(left, 1 << 20))
        if not part:
            raise EOFError("the other side closed the connection")
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def receive(sock: socket.socket, deadline: float | None = None) -> tuple[bytes, bytes]:
    """One frame: (kind, payload), whole by `deadline` (`time.monotonic()`; else socket.timeout) if one is given.
    Raises EOFError at the end of the stream, ProtocolError on a malformed frame."""
    kind, size = _HEAD.unpack(_exactly(sock, _HEAD.size, deadline))
    if size > MAX_FRAME:
        raise ProtocolError(f"a frame of {size:,} bytes")
    return kind, _exactly(sock, size, deadline)


def peer(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket (Linux SO_PEERCRED)."""
    return struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))


def peer_uid(sock: socket.socket) -> int:
    """The user id of the process at the other end of a Unix socket."""
    return peer(sock)[1]


def listener(root: Path) -> int | None:
    """The PID of this user's process listening on the daemon socket of `root`, found without waiting for its
    greeting: a daemon busy with a command greets nobody until the command ends (`ask` then says None). None:
    nobody listens there."""
    path = socket_of(root) if hasattr(socket, "SO_PEERCRED") else None
    return None if path is None else _listening(path)


def _listening(path: Path) -> int | None:
    """The PID of this user's process listening on socket `path`, without waiting for its greeting; None: nobody
    listens there, or another user's process does."""
    try:
        with _dial(path) as sock:
            pid, uid, _ = peer(sock)
    except OSError:
        return None
    return pid if uid == os.getuid() else None


def _dial(path: Path) -> socket.socket:
    """A socket connected to `path` (within HELLO_SECONDS); raises OSError (ConnectionRefusedError: nobody listens)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(HELLO_SECONDS)
        sock.connect(str(path))
    except OSError:
        sock.close()
        raise
    return sock


def connect(root: Path, remove_stale: bool = False) -> tuple[socket.socket, dict] | None:
    """A connection to the daemon of `root`, greeted, and its greeting; None where no daemon of this user answers
    (a socket file nobody listens on is removed with `remove_stale`)."""
    if not hasattr(socket, "SO_PEERCRED"):  # no way to check who listens: Linux only
        return None
    path = socket_of(root)
    return None if path is None else _greeted(path, remove_stale)


def _greeted(path: Path, remove_stale: bool = False) -> tuple[socket.socket, dict] | None:
    """A connection to the daemon listening on socket `path`, greeted, and its greeting (see `connect`)."""
    try:
        sock = _dial(path)
    except ConnectionRefusedError:
        try:
            if remove_stale and stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)  # its daemon died without removing it
        except OSError:  # removed meanwhile
            pass
        return None
    except OSError:
        return None
    try:
        if peer_uid(sock) != os.getuid():  # the folder is private: only a bug or a race gets here
            raise ProtocolError("the socket's process is another user's")
        kind, payload = receive(sock)
        hello = json.loads(payload) if kind == b"h" else None
        if not isinstance(hello, dict) or hello.get("protocol") != PROTOCOL:
            raise ProtocolError("not a riskconsole daemon of this version")
        sock.settimeout(None)
        return sock, hello
    except (OSError, EOFError, ValueError, ProtocolError):
        sock.close()
        return None


def request(argv: list[str], root: Path) -> dict:
    """What the daemon needs to run `argv` as this process would: the code's identity, the workspace, the current
    folder, the umask, the settings, and how this process's stdout and stderr encode text."""
    mask = os.umask(0)
    os.umask(mask)
    streams = [[s.encoding, s.errors] for s in (sys.stdout, sys.stderr)]
    return {"protocol": PROTOCOL, "identity": identity(), "root": str(root), "argv": argv, "cwd": os.getcwd(),
            "umask": mask, "streams": streams, **settings()}


def delegate(argv: list[str], root: Path) -> int | None:
    """Run the command `argv` on the daemon of workspace `root`: its exit code, its output written to this process's
    stdout and stderr; None (nothing written) where no daemon serves it: run it in this process."""
    if os.environ.get(ENV_SWITCH) == "0" or sys.stdout is None or sys.stderr is None:
        return None
    try:
        if any(_special(arg) for arg in argv):
            return None
        sys.stdout.flush()
        sys.stderr.flush()
        message = json.dumps(request(argv, root)).encode()
        outs = {kind: (stream, codecs.getincrementaldecoder(stream.encoding)(errors="surrogateescape"))
                for kind, stream in ((b"o", sys.stdout), (b"e", sys.stderr))}
    except (OSError, ValueError, AttributeError, TypeError, LookupError):  # an odd stream, a deleted current folder
        return None
    found = connect(root, remove_stale=True)
    if found is None:
        return None
    sock, hello = found
    with sock:
        return _relay(sock, message, outs, hello)


def _relay(sock: socket.socket, message: bytes, outs: dict, hello: dict) -> int | None:
    """Send the request, write what the daemon answers; None where it refused before writing anything.

    Each frame is one write() of the command's to its stdout or stderr (encoded as this process's streams encode):
    it is written as text to this process's own sys.stdout or sys.stderr, so that their buffering (a file or a pipe:
    stdout in blocks, stderr by lines; a terminal, or PYTHONUNBUFFERED) orders the two streams' bytes in `> log 2>&1`
    exactly as in-process. A stream of this process that cannot be written (stdout piped into `head -1`) is written
    no more, as the command's own output would have failed in-process; the command's exit code is still returned
    (Python's exit then reports the unflushed stream, as it would have in-process)."""
    started, broken = False, set()

    def write(kind: bytes, data: bytes | None) -> None:  # data None: flush
        stream, decoder = outs[kind]
        if kind not in broken:
            try:
                stream.write(decoder.decode(data)) if data is not None else stream.flush()
            except OSError:  # our own stdout or stderr, not the daemon, failed
                broken.add(kind)

    try:
        send(sock, b"q", message)
        while True:
            kind, payload = receive(sock)
            if kind == b"x":
                for out in outs:
                    write(out, None)
                return int(payload)
            if kind == b"r" and not started:
                return None
            if kind not in outs:
                raise ProtocolError(f"unexpected frame {kind!r}")
            started = True
            write(kind, payload)
    except (OSError, EOFError, ValueError, ProtocolError) as err:
        if not started:
            return None
        print(f"error: the riskconsole daemon (PID {hello.get('pid')}) stopped answering in the middle of the "
              f"command ({err}); run it again", file=sys.stderr)
        return 1


def let_go(root: Path) -> None:
    """Ask the daemon of `root`, if one runs, to close its database (its next request reopens it): this process is
    about to open the file for writing, which DuckDB's lock refuses while another process holds it. No daemon
    socket: ~40 µs (three folders looked in)."""
    if not SERVING:
        ask(root, b"l")


def let_go_process(pid: int) -> bool:
    """Ask this user's daemon whose process is `pid` to close its database, wherever its workspace is now: DuckDB's
    lock names the process holding a file, and a workspace moved (`mv`) while its daemon runs is no longer at the
    path the daemon's socket is named by. True: a daemon of that PID let go."""
    if not hasattr(socket, "SO_PEERCRED") or SERVING:
        return False
    for folder in _folders():
        for path in folder.glob("*.sock"):
            if _listening(path) == pid:
                found = _greeted(path)
                return found is not None and _asked(*found, b"l") is not None
    return False


def ask(root: Path, kind: bytes) -> dict | None:
    """A question to the daemon of `root` without a command (`l`: let go of the database, `s`: status, `t`: stop):
    its JSON answer, None where no daemon answers."""
    found = connect(root, remove_stale=True)
    return None if found is None else _asked(*found, kind)


def _asked(sock: socket.socket, hello: dict, kind: bytes) -> dict | None:
    with sock:
        try:
            send(sock, kind)
            answer, payload = receive(sock)
            return {**hello, **json.loads(payload)} if answer == b"x" else None
        except (OSError, EOFError, ValueError, ProtocolError):
            return None

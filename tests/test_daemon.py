"""`riskconsole daemon` (issue 14): a command it answers prints, writes and exits exactly as the same command run in
its own process, on the data as it is now; anything it must not answer runs in-process, silently."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_STRATEGY as TINY
from conftest import query, random_events, write_workspace

from riskconsole import daemon_client as wire
from riskconsole.daemon import Daemon
from riskconsole.workspace import REPO_ROOT, Workspace

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_PEERCRED"), reason="the daemon needs Linux")

LOOSE = {**TINY, "name": "loose", "params": {"burst": 3, "big": 100}}
BAD = {**TINY, "name": "bad", "rules": [{"name": "typo", "when": "amount > 1 AND user_ordrs_1h > 2", "action": "block"}]}
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
ENV.pop("RISKCONSOLE_DAEMON", None)


def _workspace(root: Path) -> Workspace:
    from riskconsole.ingest import load

    ws = write_workspace(root, random_events(days=14), strategies={"tiny": TINY, "loose": LOOSE, "bad": BAD})
    load(ws)
    return ws


def _start(ws: Workspace) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "riskconsole", "daemon", "--workspace", str(ws.root), "--idle",
                                "10"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV,
                               cwd=ws.root.parent)
    line = process.stdout.readline()
    assert "serves" in line, line + process.stderr.read()
    return process


def _stop(process: subprocess.Popen, ws: Workspace) -> None:
    if process.poll() is None:
        done = subprocess.run([sys.executable, "-m", "riskconsole", "daemon", "--stop", "--workspace", str(ws.root)],
                              capture_output=True, text=True, env=ENV)
        assert "stopped the riskconsole daemon" in done.stdout, done.stdout + done.stderr
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert not wire.socket_path(ws.root, wire.runtime_dir()).exists()  # it removes its socket


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A tiny loaded workspace and its daemon (stopped after the module)."""
    ws = _workspace(tmp_path_factory.mktemp("served") / "ws")
    process = _start(ws)
    yield ws
    _stop(process, ws)


def served_count(ws: Workspace) -> int:
    return wire.ask(ws.root, b"s")["served"]


def cli(cwd: Path, *argv, **env) -> tuple[int, bytes, bytes]:
    """`riskconsole ARGV` as a process of its own in `cwd`: exit code, stdout, stderr (bytes)."""
    cwd.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "riskconsole", *map(str, argv)], capture_output=True, cwd=cwd,
                          env={**ENV, **env})
    return done.returncode, done.stdout, done.stderr


def both(ws: Workspace, tmp_path: Path, *argv, delegated: bool = True, **env) -> tuple[tuple, tuple]:
    """The command run through the daemon (in tmp/d) and in-process (in tmp/p, RISKCONSOLE_DAEMON=0), the
    in-process run's folder written as the delegated one's; asserts whether the daemon answered. Run once before
    (in tmp/w), so both runs find the compiled-query cache as the first one left it ("compiled queries from ...")."""
    cli(tmp_path / "w", *argv, **{**env, "RISKCONSOLE_DAEMON": "0"})
    before = served_count(ws)
    through = cli(tmp_path / "d", *argv, **env)
    assert served_count(ws) - before == (1 if delegated else 0), through
    alone = cli(tmp_path / "p", *argv, **{**env, "RISKCONSOLE_DAEMON": "0"})
    mine = [part.replace(os.fsencode(tmp_path / "p"), os.fsencode(tmp_path / "d")) for part in alone[1:]]
    return through, (alone[0], *mine)


def same_files(a: Path, b: Path) -> None:
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir()) and names
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.parametrize("command, code", [
    (["backtest", "strategies/tiny.yaml", "--baseline", "strategies/loose.yaml", "--format", "json,csv,md",
      "--out", "out"], 0),
    (["gate", "strategies/tiny.yaml", "--baseline", "strategies/loose.yaml", "--require", "recall>=-1.00"], 0),
    (["gate", "strategies/tiny.yaml", "--baseline", "strategies/loose.yaml", "--require", "recall>=+0.00",
      "--require", "review_overflow_days<=0"], 1),
    (["sweep", "strategies/tiny.yaml", "--param", "big", "--values", "50:250:100", "--out", "out"], 0),
    (["optimize", "strategies/tiny.yaml", "--param", "big", "--values", "big=50,150,250", "--max-overflow-days",
      "14", "--out", "out"], 0),
    (["monitor", "strategies/tiny.yaml", "--reference", "2026-03-01:2026-03-07", "--from", "2026-03-08", "--out",
      "out"], 0),
])
def test_a_delegated_command_prints_writes_and_exits_as_in_process(served, tmp_path, command, code):
    """Relative paths (the strategy, --out) are the client's: each run's folder holds a copy of the strategies."""
    for side in ("w", "d", "p"):
        (tmp_path / side).mkdir()
        os.symlink(served.strategies_dir, tmp_path / side / "strategies")
    through, alone = both(served, tmp_path, *command, "--workspace", served.root)
    assert through == alone and through[0] == code, through
    if "--out" in command:
        same_files(tmp_path / "d" / "out", tmp_path / "p" / "out")


def test_a_bad_strategy_gets_the_same_one_line_error_and_exit_code(served, tmp_path):
    through, alone = both(served, tmp_path, "backtest", served.strategies_dir / "bad.yaml", "--workspace",
                          served.root, "--out", "out")
    assert through == alone
    code, out, err = through
    assert code == 1 and out == b"" and err.count(b"\n") == 1 and b"did you mean 'user_orders_1h'" in err
    assert not (tmp_path / "d" / "out").exists()


def test_what_the_daemon_must_not_answer_runs_in_process(served, tmp_path):
    """RISKCONSOLE_DAEMON=0; other settings (a memory limit); a command that is not read-only (validate); a
    strategy read from a device the daemon would read its own of."""
    argv = ("backtest", served.strategies_dir / "tiny.yaml", "--workspace", served.root, "--format", "json",
            "--out", "out")
    through, alone = both(served, tmp_path / "a", *argv, delegated=False, RISKCONSOLE_DAEMON="0")
    assert through == alone and through[0] == 0
    through, alone = both(served, tmp_path / "b", *argv, delegated=False, RISKCONSOLE_MEMORY_LIMIT="1GB")
    assert through[1].decode().splitlines() == alone[1].decode().splitlines()
    assert through == alone and through[0] == 0
    through, alone = both(served, tmp_path / "c", "validate", served.strategies_dir / "tiny.yaml", "--workspace",
                          served.root, delegated=False)
    assert through == alone and through[0] == 0
    piped = subprocess.run([sys.executable, "-m", "riskconsole", "backtest", "/dev/stdin", "--workspace",
                            str(served.root), "--format", "json", "--out", str(tmp_path / "piped")], env=ENV,
                           input=(served.strategies_dir / "tiny.yaml").read_bytes(), capture_output=True)
    assert piped.returncode == 0, piped.stderr
    assert (tmp_path / "piped" / "report.json").exists()


def test_a_client_of_other_code_runs_in_process(served, tmp_path):
    """An extra folder on the import path holding another distribution: the daemon refuses, the client runs it."""
    other = tmp_path / "site"
    (other / "something-1.0.dist-info").mkdir(parents=True)
    through, alone = both(served, tmp_path, "backtest", served.strategies_dir / "tiny.yaml", "--workspace",
                          served.root, "--format", "json", "--out", "out", delegated=False,
                          PYTHONPATH=f"{REPO_ROOT}{os.pathsep}{other}")
    assert through == alone and through[0] == 0


def test_a_daemon_whose_own_code_changed_stops(tmp_path):
    from riskconsole import cli

    ws = Workspace(tmp_path)
    daemon = Daemon(ws)
    request = {"identity": wire.identity(), "root": str(ws.root), **wire.settings(), "cwd": str(tmp_path)}
    args = cli.parse(["backtest", "s.yaml"])
    assert daemon.refusal(request, args) is None  # the engine: no dataset.yaml, duckdb
    daemon.identity = [*daemon.identity[:2], daemon.identity[2] - 1, *daemon.identity[3:]]  # older files
    assert "changed on disk" in daemon.refusal(request, args) and daemon.stopping
    other = Daemon(ws)
    assert "other code" in other.refusal({**request, "identity": ["0"]}, args) and not other.stopping
    assert "settings" in other.refusal({**request, "env": {"RISKCONSOLE_ENGINE": "duckdb"}}, args)
    assert "runs in the client" in other.refusal(request, cli.parse(["validate", "s.yaml"]))
    assert "engine spark" in other.refusal(request, cli.parse(["backtest", "s.yaml", "--engine", "spark"]))


def test_a_stale_socket_file_is_removed_and_the_command_runs_in_process(tmp_path):
    ws = _workspace(tmp_path / "ws")
    path = wire.socket_path(ws.root, wire.runtime_dir(create=True))
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))  # a daemon killed with SIGKILL leaves its socket file: nobody listens
    dead.close()
    try:
        code, out, err = cli(tmp_path, "backtest", ws.strategies_dir / "tiny.yaml", "--workspace", ws.root,
                             "--format", "json", "--out", "out")
        assert code == 0, err
        assert b"computed on duckdb" in out and (tmp_path / "out" / "report.json").exists()
        assert not path.exists()
    finally:
        path.unlink(missing_ok=True)


def _changed_under(ws: Workspace, tmp_path: Path, change, rows: int) -> None:
    """A backtest through the daemon of `ws` before and after `change()` (from another process, or by hand): after
    it, the delegated run equals an in-process one (stdout, stderr, exit code, every file) on the new data."""
    process = _start(ws)
    try:
        argv = ("backtest", ws.strategies_dir / "tiny.yaml", "--workspace", ws.root, "--format", "json,csv",
                "--out", "out")
        first, _ = both(ws, tmp_path / "before", *argv)
        change()
        through, alone = both(ws, tmp_path / "after", *argv)
        assert through == alone and through[0] == 0
        same_files(tmp_path / "after" / "d" / "out", tmp_path / "after" / "p" / "out")
        assert query(ws, "SELECT count(*) FROM events") == [(rows,)]  # the new data is live
        old, new = (json.loads((tmp_path / when / "d" / "out" / "report.json").read_text())["overall"]
                    for when in ("before", "after"))
        assert old != new and first[1] != through[1]  # and the daemon answered on it
    finally:
        _stop(process, ws)


def test_a_load_from_another_process_is_seen_by_the_next_delegated_command(tmp_path):
    """The load asks the daemon to let go of the database (else DuckDB's lock refuses it) and publishes a new
    file."""
    ws = _workspace(tmp_path / "ws")

    def load() -> None:
        random_events(n=300, seed=5, days=14).to_csv(ws.root / "data" / "events.csv", index=False)
        code, _, err = cli(tmp_path, "load", "--workspace", ws.root)
        assert code == 0, err

    _changed_under(ws, tmp_path, load, 300)


def test_a_load_in_a_console_or_notebook_process_is_not_refused_for_the_daemons_lock(tmp_path):
    """`ingest.load` called in this process (as the console's Data page and a notebook do, not through the CLI)
    while the daemon holds the database: it asks the daemon to let go, loads, and the next delegated command reads
    the new data."""
    from riskconsole.ingest import load

    ws = _workspace(tmp_path / "ws")

    def in_process() -> None:
        random_events(n=280, seed=7, days=14).to_csv(ws.root / "data" / "events.csv", index=False)
        load(ws)

    _changed_under(ws, tmp_path, in_process, 280)


def test_a_load_of_a_workspace_moved_while_its_daemon_runs_is_not_refused(tmp_path):
    """A daemon's socket is named by its workspace's path: after `mv` a load at the new path found no daemon to ask,
    and DuckDB's lock (the daemon's, naming its PID) refused it. The load asks the process the lock names, if it is
    one of this user's daemons, to let go."""
    from riskconsole.ingest import load

    ws = _workspace(tmp_path / "ws")
    process = _start(ws)
    try:
        code, _, err = cli(tmp_path, "backtest", ws.strategies_dir / "tiny.yaml", "--workspace", ws.root, "--out",
                           tmp_path / "out")
        assert code == 0 and served_count(ws) == 1 and wire.ask(ws.root, b"s")["open"], err  # it holds the file
        moved = Workspace(tmp_path / "moved")
        ws.root.rename(moved.root)
        random_events(n=260, seed=3, days=14).to_csv(moved.root / "data" / "events.csv", index=False)
        assert load(moved).loaded == 260
        assert query(moved, "SELECT count(*) FROM events") == [(260,)] and not wire.ask(ws.root, b"s")["open"]
    finally:
        moved_back = not ws.root.exists() and (tmp_path / "moved").exists()
        if moved_back:
            (tmp_path / "moved").rename(ws.root)
        _stop(process, ws)


def test_a_database_file_replaced_under_the_daemon_is_read_anew(tmp_path):
    """A database file swapped in by hand while the daemon holds the old one open: the next command reopens it."""
    from riskconsole.ingest import load

    ws, other = _workspace(tmp_path / "ws"), _workspace(tmp_path / "other")

    def swap() -> None:
        random_events(n=250, seed=9, days=14).to_csv(other.root / "data" / "events.csv", index=False)
        load(other)
        shutil.copy(other.db_path, ws.root / "data" / "swap.duckdb")
        os.replace(ws.root / "data" / "swap.duckdb", ws.db_path)

    _changed_under(ws, tmp_path, swap, 250)


def test_another_user_is_not_answered(tmp_path, monkeypatch):
    """The daemon reads the peer's uid from the socket (SO_PEERCRED) and says nothing to another user's process."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with ours, theirs:
        assert wire.peer_uid(ours) == os.getuid()
        monkeypatch.setattr(wire, "peer_uid", lambda sock: os.getuid() + 1)
        Daemon(Workspace(tmp_path)).handle(ours)
        ours.shutdown(socket.SHUT_RDWR)
        assert theirs.recv(16) == b""  # no greeting, no answer


def test_status_and_stop_say_when_no_daemon_serves(tmp_path):
    code, out, _ = cli(tmp_path, "daemon", "--status", "--workspace", tmp_path)
    assert code == 1 and out.decode().startswith("no riskconsole daemon serves")
    code, out, _ = cli(tmp_path, "daemon", "--stop", "--workspace", tmp_path)
    assert code == 0 and out.decode().startswith("no riskconsole daemon serves")


def test_the_compiled_query_cache_key_ignores_where_a_command_runs(monkeypatch):
    """A command the daemon answers finds the entries an in-process run of it left (and prints what it would):
    the daemon switch and the workspace variable are not in the key; a setting that changes an answer is."""
    from riskconsole import querycache

    for name in ("RISKCONSOLE_DAEMON", "RISKCONSOLE_WORKSPACE", "RISKCONSOLE_MEMORY_LIMIT"):
        monkeypatch.delenv(name, raising=False)
    plain = querycache.key("backtest", b"rules")
    monkeypatch.setenv("RISKCONSOLE_DAEMON", "0")
    monkeypatch.setenv("RISKCONSOLE_WORKSPACE", "/elsewhere")
    assert querycache.key("backtest", b"rules") == plain
    monkeypatch.setenv("RISKCONSOLE_MEMORY_LIMIT", "1GB")
    assert querycache.key("backtest", b"rules") != plain


@pytest.mark.parametrize("bad", [{"streams": [["no-such-codec", "strict"], ["utf-8", "strict"]]}, {"umask": -1},
                                 {"argv": ["backtest"]}, {"argv": ["load"]}, {"argv": None}])
def test_a_request_the_daemon_cannot_run_is_refused(tmp_path, bad):
    """An unreadable or undelegable request gets a refusal (the client then runs it), never a dead daemon."""
    import json as json_
    import threading

    ws = Workspace(tmp_path)
    request = {"identity": wire.identity(), "root": str(ws.root), **wire.settings(), "cwd": str(tmp_path),
               "argv": ["backtest", "s.yaml"], "umask": 0o22, "streams": [["utf-8", "strict"]] * 2, **bad}
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with ours, theirs:
        daemon = Daemon(ws)
        served = threading.Thread(target=daemon.handle, args=(ours,))
        served.start()
        assert wire.receive(theirs)[0] == b"h"
        wire.send(theirs, b"q", json_.dumps(request).encode())
        kind, reason = wire.receive(theirs)
        served.join(timeout=10)
    assert kind == b"r" and reason and daemon.served == 0 and not daemon.stopping


def test_a_delegated_command_loads_no_data_library(served, tmp_path):
    """What a command answered by the daemon costs its own process: no DuckDB, numpy or pyarrow import."""
    probe = ("import sys\nfrom riskconsole.cli import main\ncode = main(sys.argv[1:])\n"
             "print(code, sorted(m for m in ('duckdb', 'numpy', 'pyarrow', 'pandas') if m in sys.modules))\n")
    before = served_count(served)
    done = subprocess.run([sys.executable, "-c", probe, "gate", str(served.strategies_dir / "tiny.yaml"),
                           "--workspace", str(served.root), "--require", "recall>=0"], capture_output=True, text=True,
                          env=ENV, cwd=tmp_path)
    assert served_count(served) == before + 1, done.stderr
    assert done.stdout.splitlines()[-1] == "0 []"


@pytest.mark.parametrize("how", ["idle", "sigterm"])
def test_the_daemon_stops_by_itself_and_on_sigterm_removing_its_socket(tmp_path, how):
    ws = _workspace(tmp_path / "ws")
    process = subprocess.Popen([sys.executable, "-m", "riskconsole", "daemon", "--workspace", str(ws.root),
                                "--idle", "0.02" if how == "idle" else "10"], stdout=subprocess.PIPE, text=True,
                               env=ENV)
    try:
        assert "serves" in process.stdout.readline()
        path = wire.socket_path(ws.root, wire.runtime_dir())
        assert path.exists() and oct(path.stat().st_mode & 0o777) == "0o600"
        assert oct(path.parent.stat().st_mode & 0o777) == "0o700" and path.parent.stat().st_uid == os.getuid()
        if how == "sigterm":
            process.terminate()
        assert process.wait(timeout=30) == 0  # idle: after 1.2 s without a request
        assert "stopped after 0 commands" in process.stdout.read() and not path.exists()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_socket_folder_others_may_open_is_not_used(tmp_path, monkeypatch):
    """$XDG_RUNTIME_DIR/riskconsole readable or writable by others (or a link): no daemon is asked, none may start."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    (tmp_path / "riskconsole").mkdir(mode=0o755)
    os.chmod(tmp_path / "riskconsole", 0o755)
    assert wire.runtime_dir() is None and wire.runtime_dir(create=True) is None
    assert wire.delegate(["backtest", "s.yaml"], tmp_path) is None
    os.chmod(tmp_path / "riskconsole", 0o700)
    assert wire.runtime_dir() == tmp_path / "riskconsole"
    (tmp_path / "riskconsole").rename(tmp_path / "real")
    (tmp_path / "riskconsole").symlink_to(tmp_path / "real")
    assert wire.runtime_dir() is None


def test_a_writable_connection_to_the_live_file_first_asks_the_daemon_to_let_go(tmp_path, monkeypatch):
    """Where a load or a train opens the database to write (`Workspace.connect`, whichever face runs it: CLI,
    console, notebook), the workspace's daemon is asked to close its connection (`l`); a read-only connection, a
    file other than the live one, and the daemon's own process ask nothing; the read-only commands are handed to
    it (`delegate`) before anything else runs."""
    from riskconsole import cli

    ws, asked = Workspace(tmp_path), []
    monkeypatch.setattr(wire, "ask", lambda root, kind: asked.append((root, kind)))
    ws.connect().close()
    assert asked == [(tmp_path, b"l")]
    ws.connect(read_only=True).close()
    ws.connect(database=tmp_path / "data" / "other.duckdb").close()
    monkeypatch.setattr(wire, "SERVING", True)
    ws.connect().close()
    assert asked == [(tmp_path, b"l")]
    ran = []
    monkeypatch.setattr(cli, "_run", lambda args, ws=None: ran.append(args.command) or 0)
    monkeypatch.setattr(wire, "delegate", lambda argv, root: asked.append((root, argv)) or 3)
    assert cli.main(["gate", "s.yaml", "--workspace", str(tmp_path)]) == 3 and ran == []
    assert asked[-1] == (tmp_path.resolve(), ["gate", "s.yaml", "--workspace", str(tmp_path)])


def _rewrite_keeping_size_and_mtime(path: Path, data: bytes) -> None:
    """`path` written in place with other bytes of its size, its mtime set back (as `touch -d` or `cp -p` would)."""
    import time

    before = path.stat()
    assert len(data) == before.st_size
    time.sleep(0.02)  # past the clock tick of the first write: the change time moves
    path.write_bytes(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_files_edited_keeping_size_and_mtime_are_read_anew(tmp_path):
    """What the daemon (or a console) keeps from one command to the next is keyed by what a new process would read:
    a list, a detector card and the database rewritten in place with the same size and mtime are read again."""
    from riskconsole.daemon import _stamp
    from riskconsole.lists import load_list
    from riskconsole.report import _card

    listed = tmp_path / "countries.csv"
    listed.write_bytes(b"value\nUS\n")
    assert load_list(listed, "lists/countries.csv").table.column("__value").to_pylist() == ["US"]
    _rewrite_keeping_size_and_mtime(listed, b"value\nGB\n")
    assert load_list(listed, "lists/countries.csv").table.column("__value").to_pylist() == ["GB"]
    card = tmp_path / "card.json"
    card.write_text('{"train": {"from": "2026-01-01"}}')
    assert _card(card)["train"]["from"] == "2026-01-01"
    _rewrite_keeping_size_and_mtime(card, b'{"train": {"from": "2026-02-02"}}')
    assert _card(card)["train"]["from"] == "2026-02-02"
    ws = Workspace(tmp_path)
    ws.db_path.parent.mkdir(parents=True)
    ws.db_path.write_bytes(b"a" * 4096)
    opened = _stamp(ws)
    _rewrite_keeping_size_and_mtime(ws.db_path, b"b" * 4096)
    assert _stamp(ws) != opened


def _waiting_on_a_fifo(ws: Workspace, tmp_path: Path, **popen) -> tuple[subprocess.Popen, int]:
    """A backtest whose strategy is a FIFO, started through the daemon, and the FIFO's write end, once the daemon
    has opened it: the command waits on it until the test writes the strategy (or its client is gone)."""
    import errno
    import time

    fifo = tmp_path / "s.yaml"
    os.mkfifo(fifo)
    client = subprocess.Popen([sys.executable, "-m", "riskconsole", "backtest", str(fifo), "--workspace",
                               str(ws.root), "--out", "out"], cwd=tmp_path, env=ENV, **popen)
    deadline = time.monotonic() + 20
    while True:
        try:
            return client, os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as err:  # ENXIO: nobody reads it yet
            assert err.errno == errno.ENXIO and time.monotonic() < deadline and client.poll() is None
            time.sleep(0.05)


def test_a_command_whose_client_is_killed_stops_and_writes_nothing(served, tmp_path):
    """Ctrl-C or a kill of the client stops the command in the daemon, as it would have stopped in-process: no
    report is written after, and the daemon answers the next command. (The strategy is a FIFO the test holds open:
    the command waits on it until its client is gone.)"""
    import time

    before = served_count(served)
    client, writer = _waiting_on_a_fifo(served, tmp_path)
    deadline = time.monotonic() + 20
    client.kill()
    client.wait()
    time.sleep(0.5)
    try:
        os.write(writer, (served.strategies_dir / "tiny.yaml").read_bytes())
    except BrokenPipeError:  # the daemon stopped reading
        pass
    finally:
        os.close(writer)
    while served_count(served) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served_count(served) == before + 1 and not (tmp_path / "out").exists()
    code, out, _ = cli(tmp_path, "gate", served.strategies_dir / "tiny.yaml", "--workspace", served.root,
                       "--require", "recall>=0")
    assert code == 0 and b"PASSED" in out and served_count(served) == before + 2


def test_a_closed_stdout_pipe_ends_the_client_as_it_ends_an_in_process_run(served, tmp_path):
    """`riskconsole backtest ... | head -1`: the client's stdout fails, not the daemon; it exits with what Python
    says of an unflushable stdout, as the same run in-process does (not with a word about the daemon)."""
    def run(**env) -> tuple[int, bytes]:
        read, write = os.pipe()
        os.close(read)
        try:
            done = subprocess.run([sys.executable, "-m", "riskconsole", "backtest", str(served.strategies_dir /
                                   "tiny.yaml"), "--workspace", str(served.root), "--out", "out"], stdout=write,
                                  stderr=subprocess.PIPE, cwd=tmp_path, env={k: v for k, v in {**ENV, **env}.items()
                                                                             if k != "PYTHONUNBUFFERED"})
        finally:
            os.close(write)
        return done.returncode, done.stderr

    before = served_count(served)
    through = run()
    assert served_count(served) == before + 1
    assert through == run(RISKCONSOLE_DAEMON="0") and b"daemon" not in through[1]


def test_a_peer_that_trickles_its_request_is_dropped_in_time(tmp_path, monkeypatch):
    """A connection gets GREETING_SECONDS for its whole request, not for each byte: a peer sending one byte at a
    time never holds the daemon (which answers one connection at a time) longer."""
    import threading
    import time

    from riskconsole import daemon

    monkeypatch.setattr(daemon, "GREETING_SECONDS", 0.4)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with ours, theirs:
        served = threading.Thread(target=Daemon(Workspace(tmp_path)).handle, args=(ours,))
        started = time.monotonic()
        served.start()
        assert wire.receive(theirs)[0] == b"h"
        for byte in b"q\x00\x00\x00\x10{\"argv\": []}":
            if not served.is_alive():
                break
            theirs.send(bytes([byte]))
            time.sleep(0.15)
        served.join(timeout=5)
        assert time.monotonic() - started < 1.2 and not served.is_alive()  # the trickle would take 2.5 s


def test_a_command_run_in_a_deleted_folder_runs_in_process(served, tmp_path):
    """The current folder removed under the shell (`getcwd` fails): with --workspace and absolute paths the command
    runs as without a daemon, never a traceback of the client's."""
    gone, before = tmp_path / "gone", served_count(served)

    def run(**env) -> tuple[int, bytes, bytes]:
        gone.mkdir()
        done = subprocess.run([sys.executable, "-m", "riskconsole", "gate", str(served.strategies_dir / "tiny.yaml"),
                               "--workspace", str(served.root), "--require", "recall>=0"], capture_output=True,
                              env={**ENV, **env}, preexec_fn=lambda: (os.chdir(gone), os.rmdir(gone)))
        return done.returncode, done.stdout, done.stderr

    through = run()
    assert through == run(RISKCONSOLE_DAEMON="0") and through[0] == 0 and served_count(served) == before


def test_a_daemon_busy_with_a_command_is_still_said_to_serve(served, tmp_path):
    """While it runs a command the daemon greets nobody: --status says it is busy (not that none serves), a second
    daemon for the workspace is refused, and the command then ends as usual."""

    client, writer = _waiting_on_a_fifo(served, tmp_path, stdout=subprocess.PIPE)
    try:
        code, out, _ = cli(tmp_path, "daemon", "--status", "--workspace", served.root)
        assert code == 0 and b"busy with a command" in out, out
        code, _, err = cli(tmp_path, "daemon", "--workspace", served.root)
        assert code == 1 and b"one already serves" in err, err
    finally:
        os.write(writer, (served.strategies_dir / "tiny.yaml").read_bytes())
        os.close(writer)
    assert client.wait(timeout=20) == 0 and b"wrote" in client.stdout.read()
    assert (tmp_path / "out" / "report.json").exists()


def test_stop_ends_a_busy_daemon_now(tmp_path, monkeypatch, capsys):
    """--stop where the daemon is busy (no greeting, but a process of ours listens): SIGTERM to it."""
    import signal

    from riskconsole import cli

    killed = []
    monkeypatch.setattr(wire, "ask", lambda root, kind: None)
    monkeypatch.setattr(wire, "listener", lambda root: 4242)
    monkeypatch.setattr(os, "kill", lambda pid, sig: killed.append((pid, sig)))
    assert cli.main(["daemon", "--stop", "--workspace", str(tmp_path)]) == 0
    assert killed == [(4242, signal.SIGTERM)] and "stopped the riskconsole daemon (PID 4242)" in capsys.readouterr().out


def test_stdout_and_stderr_into_one_file_interleave_as_in_process(served, tmp_path):
    """`> log 2>&1` without PYTHONUNBUFFERED: in-process, stdout (a file: written in blocks) lands after the
    stderr line written later; the client replays the command's writes through its own streams, so the log's
    bytes are the same (an optimize with no feasible setting: its table on stdout, then an error on stderr)."""
    argv = ["optimize", served.strategies_dir / "tiny.yaml", "--param", "big", "--values", "big=50,150,250",
            "--workspace", served.root, "--out", tmp_path / "out"]
    env = {k: v for k, v in ENV.items() if k != "PYTHONUNBUFFERED"}

    def run(**switch) -> tuple[int, bytes]:
        with open(tmp_path / "log", "wb") as log:
            done = subprocess.run([sys.executable, "-m", "riskconsole", *map(str, argv)], stdout=log,
                                  stderr=subprocess.STDOUT, cwd=tmp_path, env={**env, **switch})
        return done.returncode, (tmp_path / "log").read_bytes()

    run(RISKCONSOLE_DAEMON="0")  # the compiled-query cache as both runs find it
    before = served_count(served)
    through = run()
    assert served_count(served) == before + 1
    assert through == run(RISKCONSOLE_DAEMON="0") and through[0] == 1 and b"error: " in through[1]


def test_a_daemon_started_in_another_environment_is_found(tmp_path, monkeypatch, request):
    """A daemon started in a login session (its socket under XDG_RUNTIME_DIR) is found by a process without one (a
    cron job's load must ask it to let go, else DuckDB's lock refuses the load)."""
    import tempfile

    short = Path(tempfile.mkdtemp(prefix="rc-", dir="/tmp"))  # a socket's path is limited to ~107 bytes: under
    elsewhere = short / "riskconsole"  # xdist, tmp_path's own is longer than that
    elsewhere.mkdir(mode=0o700)
    request.addfinalizer(lambda: shutil.rmtree(short, ignore_errors=True))
    os.chmod(elsewhere, 0o700)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(wire, "OTHER_FOLDERS", (str(elsewhere),))
    root = tmp_path / "ws"
    assert wire.socket_of(root) is None and wire.listener(root) is None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(wire.socket_path(root, elsewhere)))
        sock.listen(1)
        assert wire.socket_of(root) == wire.socket_path(root, elsewhere) and wire.listener(root) == os.getpid()
        os.chmod(elsewhere, 0o755)  # a folder others may open is never used
        assert wire.socket_of(root) is None

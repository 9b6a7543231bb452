"""Benchmark (issue 14): what the CLI costs beyond its own start, against one bare DuckDB scan.

    .venv/bin/python bench/bench_cli.py --workspace /tmp/demo2m

One process at a time, medians of `--runs`: `riskconsole --help` (the process start), `riskconsole backtest
bench/strategy_20.yaml --format json` on the workspace, and in-process one bare DuckDB scan evaluating the same
20 rule expressions (`SELECT sum(CASE WHEN <rule> THEN 1 ELSE 0 END), ... FROM frame`). The target: what the
backtest adds to `--help` is <= 3x that scan. Also timed (`scan_script_*`): the smallest program doing that scan in a
process of its own (import DuckDB, open the database, scan once with its blocks read cold), less Python's start: the
part of a CLI run no code of ours can remove, against which `*_over_scan_script_*` says what riskconsole adds. The backtest is timed twice: `cold_*`, every run compiling
(`RISKCONSOLE_COMPILED_CACHE=0`: what a first run of a strategy costs), and the plain keys, every run after the first
served from the compiled-query cache (docs/cli.md); with `--daemon`, also through `riskconsole daemon` (the
`daemon_*` keys: the same backtest answered by a resident process, alternating with the in-process runs, its CPU
counted with the client's). On a busy machine read the CPU ratio (user + sys of the processes
against the scan's process CPU, all DuckDB threads counted on both sides): wall time then measures the load. Compile the venv first (`python -m compileall -q .venv/lib` with
PYTHONDONTWRITEBYTECODE unset), or imports are timed from source.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STRATEGY = HERE / "strategy_20.yaml"
ENTRY = "import sys; from riskconsole.cli import main; sys.exit(main())"  # what the console script runs


CPU: dict[str, list[float]] = {}  # command -> CPU seconds (user + sys) of each timed run


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}, **extra}


def _run(args: list[str], label: str | None = None, daemon: Daemon | None = None, **extra: str) -> float:
    """Wall seconds of one CLI process; run in-process (RISKCONSOLE_DAEMON=0) unless `daemon` serves it."""
    env = _env(**extra) if daemon else _env(RISKCONSOLE_DAEMON="0", **extra)
    started, cpu, served = time.perf_counter(), _cpu(), daemon.cpu() if daemon else 0.0
    subprocess.run([sys.executable, "-c", ENTRY, *args], check=True, stdout=subprocess.DEVNULL, env=env)
    # the machine is shared: CPU time is what load does not inflate (the daemon's own counted with it)
    CPU.setdefault(label or args[0], []).append(_cpu() - cpu + (daemon.cpu() - served if daemon else 0.0))
    return time.perf_counter() - started


class Daemon:
    """`riskconsole daemon` on the workspace, for `--daemon`: started, asked how many commands it served, stopped."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.process = subprocess.Popen([sys.executable, "-m", "riskconsole", "daemon", "--workspace", str(root),
                                         "--idle", "30"], stdout=subprocess.PIPE, text=True, env=_env())
        self.line = self.process.stdout.readline().strip()  # printed once it listens
        if "serves" not in self.line:
            self.stop()
            raise SystemExit(f"the daemon did not start: {self.line}")

    def served(self) -> int:
        from riskconsole.daemon_client import ask

        return ask(self.root.resolve(), b"s")["served"]

    def cpu(self) -> float:
        """CPU seconds (user + sys) the daemon has used (/proc/PID/stat, clock ticks)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def scan_sql() -> str:
    """The bare scan: the 20 rule expressions (params filled in) counted over the frame."""
    import yaml

    body = yaml.safe_load(STRATEGY.read_text())
    cases = []
    for rule in body["rules"]:
        when = rule["when"]
        for key, value in body["params"].items():
            when = when.replace(f"${key}", str(value))
        cases.append(f"sum(CASE WHEN {when} THEN 1 ELSE 0 END)")
    return f"SELECT {', '.join(cases)} FROM frame"


def script_cpu(root: Path, runs: int) -> float:
    """Median CPU seconds of the smallest program doing the scan: a process that imports DuckDB, opens the database
    and runs the bare scan once (its blocks read cold, as any new process reads them), less `python -c pass`."""
    code = (f"import duckdb; duckdb.connect({str(root / 'data' / 'console.duckdb')!r}, read_only=True)"
            f".execute({scan_sql()!r}).fetchall()")
    used, empty = [], []
    for _ in range(runs):
        for program, into in ((code, used), ("pass", empty)):
            cpu = _cpu()
            subprocess.run([sys.executable, "-c", program], check=True)
            into.append(_cpu() - cpu)
    return statistics.median(used) - statistics.median(empty)


def scan_seconds(root: Path, runs: int) -> tuple[float, float]:
    import duckdb

    sql = scan_sql()
    con = duckdb.connect(str(root / "data" / "console.duckdb"), read_only=True)
    times, cpu = [], []
    for _ in range(runs):
        started, used = time.perf_counter(), time.process_time()
        con.execute(sql).fetchall()
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - used)  # every DuckDB thread's CPU, as the CLI's CPU counts its threads
    con.close()
    return statistics.median(times), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workspace", default="/tmp/demo2m")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--daemon", action="store_true",
                        help="also time the backtest answered by `riskconsole daemon` on the workspace (started and "
                             "stopped here), alternating with in-process runs")
    args = parser.parse_args()
    root = Path(args.workspace)
    daemon = Daemon(root) if args.daemon else None
    try:
        with tempfile.TemporaryDirectory() as out:
            backtest = ["backtest", "--workspace", str(root), str(STRATEGY), "--format", "json", "--out", out]
            _run(["--help"]), _run(backtest)  # warm the page cache (write .pyc files and the cache entry if missing)
            bare = [_run_python() for _ in range(args.runs)]
            helps = [_run(["--help"]) for _ in range(args.runs)]
            colds = [_run(backtest, "cold", RISKCONSOLE_COMPILED_CACHE="0") for _ in range(args.runs)]
            backtests, delegated = _alternating(backtest, args.runs, daemon)
        scan, scan_cpu = scan_seconds(root, args.runs)
    finally:
        if daemon:
            daemon.stop()
    script = script_cpu(root, args.runs)
    help_s, backtest_s, cold_s = statistics.median(helps), statistics.median(backtests), statistics.median(colds)
    help_cpu, backtest_cpu = statistics.median(CPU["--help"][1:]), statistics.median(CPU["backtest"][1:])
    cold_cpu = statistics.median(CPU["cold"])
    print(json.dumps({"python_start_s": round(statistics.median(bare), 3), "help_s": round(help_s, 3),
                      "cold_backtest_json_s": round(cold_s, 3), "cold_backtest_cpu_s": round(cold_cpu, 3),
                      "cold_added_cpu_over_scan_cpu_ratio": round((cold_cpu - help_cpu) / scan_cpu, 2),
                      "cold_added_over_scan_ratio": round((cold_s - help_s) / scan, 2),
                      "backtest_json_s": round(backtest_s, 3), "bare_scan_s": round(scan, 3),
                      "help_cpu_s": round(help_cpu, 3), "backtest_cpu_s": round(backtest_cpu, 3),
                      "bare_scan_cpu_s": round(scan_cpu, 3),
                      "load_average": [round(x, 2) for x in os.getloadavg()],
                      "added_over_help_s": round(backtest_s - help_s, 3),
                      "added_over_scan_ratio": round((backtest_s - help_s) / scan, 2),
                      "added_cpu_over_scan_cpu_ratio": round((backtest_cpu - help_cpu) / scan_cpu, 2),
                      "scan_script_cpu_s": round(script, 3),
                      "added_cpu_over_scan_script_cpu_ratio": round((backtest_cpu - help_cpu) / script, 2),
                      "cold_added_cpu_over_scan_script_cpu_ratio": round((cold_cpu - help_cpu) / script, 2),
                      **(_daemon_keys(delegated, help_s, help_cpu, scan, scan_cpu) if daemon else {})},
                     indent=2))


def _alternating(backtest: list[str], runs: int, daemon: Daemon | None) -> tuple[list[float], list[float]]:
    """The cached backtest `runs` times in-process and, with a daemon, as many times through it, alternating (the
    machine's load then weighs on both alike). Exits if the daemon did not answer every delegated run."""
    plain, delegated = [], []
    if daemon:
        _run(backtest, "daemon", daemon)  # its first answer reads the database's blocks into DuckDB's buffers
        before = daemon.served()
    for _ in range(runs):
        plain.append(_run(backtest))
        if daemon:
            delegated.append(_run(backtest, "daemon", daemon))
    if daemon and daemon.served() - before != runs:
        raise SystemExit(f"the daemon answered {daemon.served() - before} of {runs} runs: the others ran in-process")
    return plain, delegated


def _daemon_keys(delegated: list[float], help_s: float, help_cpu: float, scan: float, scan_cpu: float) -> dict:
    wall, cpu = statistics.median(delegated), statistics.median(CPU["daemon"][1:])
    return {"daemon_backtest_json_s": round(wall, 3), "daemon_backtest_spread_s": [round(min(delegated), 3),
                                                                                  round(max(delegated), 3)],
            "daemon_backtest_cpu_s": round(cpu, 3),  # the client's and the daemon's
            "daemon_added_over_scan_ratio": round((wall - help_s) / scan, 2),
            "daemon_added_cpu_over_scan_cpu_ratio": round((cpu - help_cpu) / scan_cpu, 2)}


def _run_python() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()

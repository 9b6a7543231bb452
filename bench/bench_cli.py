"""Benchmark (issue 14): what the CLI costs beyond its own start, against one bare DuckDB scan.

    .venv/bin/python bench/bench_cli.py --workspace /tmp/demo2m

One process at a time, medians of `--runs`: `riskconsole --help` (the process start), `riskconsole backtest
bench/strategy_20.yaml --format json` on the workspace, and in-process one bare DuckDB scan evaluating the same
20 rule expressions (`SELECT sum(CASE WHEN <rule> THEN 1 ELSE 0 END), ... FROM frame`). The target: what the
backtest adds to `--help` is <= 3x that scan. Also timed (`scan_script_*`): the smallest program doing that scan in a
process of its own (import DuckDB, open the database, scan once with its blocks read cold), less Python's start: the
part of a CLI run no code of ours can remove, against which `*_over_scan_script_*` says what riskconsole adds. The backtest is timed twice: `cold_*`, every run compiling
(`RISKCONSOLE_COMPILED_CACHE=0`: what a first run of a strategy costs), and the plain keys, every run after the first
served from the compiled-query cache (docs/cli.md). On a busy machine read the CPU ratio (user + sys of the processes
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


def _run(args: list[str], label: str | None = None, **extra: str) -> float:
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}, **extra}
    started, cpu = time.perf_counter(), _cpu()
    subprocess.run([sys.executable, "-c", ENTRY, *args], check=True, stdout=subprocess.DEVNULL, env=env)
    # the machine is shared: CPU time is what load does not inflate
    CPU.setdefault(label or args[0], []).append(_cpu() - cpu)
    return time.perf_counter() - started


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
    args = parser.parse_args()
    root = Path(args.workspace)
    with tempfile.TemporaryDirectory() as out:
        backtest = ["backtest", "--workspace", str(root), str(STRATEGY), "--format", "json", "--out", out]
        _run(["--help"]), _run(backtest)  # warm the page cache (and write .pyc files and the cache entry if missing)
        bare = [_run_python() for _ in range(args.runs)]
        helps = [_run(["--help"]) for _ in range(args.runs)]
        colds = [_run(backtest, "cold", RISKCONSOLE_COMPILED_CACHE="0") for _ in range(args.runs)]
        backtests = [_run(backtest) for _ in range(args.runs)]
    scan, scan_cpu = scan_seconds(root, args.runs)
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
                      "cold_added_cpu_over_scan_script_cpu_ratio": round((cold_cpu - help_cpu) / script, 2)},
                     indent=2))


def _run_python() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()

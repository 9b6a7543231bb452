"""Benchmark (issue 12): what the outcome blocks (observability, bounds, estimate) cost a console slider move.

    .venv/bin/python bench/bench_outcomes.py WORKSPACE   (a demo: riskconsole demo --events 200000 --workspace DIR)

Per move of `Session.interactive` on candidate.yaml (20 threshold moves, every day): "old" without the outcome
blocks, "naive" with a second SQL outcomes pass each move (`outcomes.run_outcomes`), "warm" the cached path."""
import statistics, sys, time
from pathlib import Path

from riskconsole.backtest import make_window
from riskconsole.outcomes import describe, run_outcomes
from riskconsole.session import Session
from riskconsole.workspace import Workspace

ws = Workspace(Path(sys.argv[1]))
path = ws.strategies_dir / "candidate.yaml"
window = make_window()
moves = [{"model_review": v} for v in (0.5, 0.45, 0.4, 0.35, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.55)] + \
        [{"bnpl_amount": v} for v in (300, 280, 260, 240, 260, 280, 300, 320)]


def run(label, fn):
    with Session(ws) as s:
        fn(s, moves[0]); fn(s, moves[1])  # warm up (evaluator, tables)
        for ev in s._evaluators.values():
            ev.wait()
        times = []
        for m in moves:
            t = time.perf_counter(); fn(s, m); times.append(time.perf_counter() - t)
            for ev in s._evaluators.values():
                ev.wait()
    times.sort()
    print(f"{label:8s} median {statistics.median(times)*1e3:7.1f} ms  p90 {times[int(0.9*(len(times)-1))]*1e3:7.1f} ms")


def old(s, m):
    saved = s.dataset.columns.prod_action
    object.__setattr__(s.dataset.columns, "prod_action", None)
    try:
        return s.interactive(path, window, m)
    finally:
        object.__setattr__(s.dataset.columns, "prod_action", saved)


def naive(s, m):
    report = old(s, m)
    compiled = s.compile(path, m)
    with s.cursor() as cur:
        describe(report, run_outcomes(cur, compiled, s.frame, s.dataset, window), compiled, s.dataset)
    return report


def warm(s, m):
    return s.interactive(path, window, m)


for label, fn in (("old", old), ("naive", naive), ("warm", warm)):
    run(label, fn)
with Session(ws) as s:
    a = s.interactive(path, window, moves[3]); b = s.backtest(path, window, moves[3]).report
    print("warm == backtest:", a.keys() == b.keys(), a["overall"]["bounds"]["precision"], b["overall"]["bounds"]["precision"])

"""Mutation check for the metric code: each hand-written bug below must make some fast test fail.

How to add an entry: append `Mutation(file, old, new, why, tests)` to MUTATIONS.
  - `file` is relative to the `riskconsole` package; `old` is copied from it verbatim (whitespace included) and
    must occur there exactly once (`test_each_mutation_still_applies` fails loudly when code moves: re-point
    `file`/`old` at the new home, e.g. after metrics get one home, never delete the entry to make it pass);
  - `new` is the broken version of `old`; `why` says which contract it breaks (DESIGN.md §6);
  - `tests` are the fastest test node ids (relative to tests/) that should catch it; a mutation that
    survives is a missing assertion: add it to the metric tests, not here.

How it runs: the package is copied into a tmp dir, one mutation applied, and the chosen tests run with that copy
first on the path (the run prints and checks `riskconsole.__file__`). The runs are forked from one server process
that has imported numpy, pandas, duckdb, pyarrow, sqlglot, pydantic and pytest once: a fresh interpreter per
mutation spends ~3.5 s of CPU importing them, which would put this file far above its ~90 s budget.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "riskconsole"

OVERALL = "test_backtest.py::test_overall_matches_an_independent_computation"
RULES_DAILY = "test_backtest.py::test_rules_daily_and_decisions"
CAPACITY = "test_backtest.py::test_review_capacity_is_exceeded_only_when_strictly_more"
WINDOW = "test_backtest.py::test_as_of_and_window"
OVERRIDES = "test_backtest.py::test_set_overrides_params"
DETECTOR_WARNING = "test_backtest.py::test_detector_warning_whenever_a_training_window_overlaps"
DAY_SUMS = "test_compare.py::test_day_sums_and_the_metrics_rebuilt_from_them"
PAIRED = "test_compare.py::test_bootstrap_resamples_the_same_days_for_both_sides"
COMPARE = "test_compare.py::test_compare_equals_two_separate_backtests"
CURVE = "test_optimize.py::test_score_curve_on_data_known_by_construction"


@dataclass(frozen=True)
class Mutation:
    file: str
    old: str
    new: str
    why: str
    tests: tuple[str, ...]


MUTATIONS = [
    # ------------------------------------------------------------ metrics.py: decisions and `overall`
    Mutation("metrics.py", 'block = hits[:, rules.mask("block")].any(axis=1) & ~allow',
             'block = hits[:, rules.mask("block")].any(axis=1)',
             "allow must beat block", (OVERRIDES,)),
    Mutation("metrics.py", "tp, fp = int(n[flagged & fraud].sum()), int(n[flagged & good].sum())",
             "fp, tp = int(n[flagged & fraud].sum()), int(n[flagged & good].sum())",
             "tp and fp swapped", (OVERALL,)),
    Mutation("metrics.py", "precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)",
             "precision, recall = ratio(tp, tp + fp), ratio(tp, tp)",
             "recall denominator without fn", (OVERALL,)),
    Mutation("metrics.py", "precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)",
             "precision, recall = ratio(tp, int(n[flagged].sum())), ratio(tp, tp + fn)",
             "precision counts unlabelled flagged events", (OVERALL,)),
    Mutation("metrics.py",
             "stopped = float(amt[block & fraud].sum() + business.review_catch_rate * amt[review & fraud].sum())",
             "stopped = float(amt[block & fraud].sum() + amt[review & fraud].sum())",
             "review_catch_rate dropped from fraud_amount_stopped", (OVERALL,)),
    Mutation("metrics.py", '"net_benefit": stopped - business.good_block_cost * good_blocked - review_cost,',
             '"net_benefit": stopped - good_blocked - review_cost,',
             "good_block_cost dropped from net_benefit", (OVERALL,)),
    Mutation("metrics.py", '"amount_recall": ratio(amt[flagged & fraud].sum(), amt[fraud].sum()),',
             '"amount_recall": ratio(stopped, amt[fraud].sum()),',
             "amount_recall uses the stopped amount instead of the flagged fraud amount", (OVERALL,)),
    Mutation("metrics.py", '"review_overflow_days": int((daily_reviews > business.review_capacity).sum()),',
             '"review_overflow_days": int((daily_reviews >= business.review_capacity).sum()),',
             "a day at exactly the capacity counted as over it", (CAPACITY,)),
    # ------------------------------------------------------------ metrics.py: by_action, rules, daily
    Mutation("metrics.py", '"fp": int(g.count[sel & (g.label == 0)].sum()),',
             '"fp": int(g.count[sel & (g.label != 1)].sum()),',
             "by_action fp counts unlabelled events", (RULES_DAILY,)),
    Mutation("metrics.py", "unique = caught & hit & (n_deciding == 1) if deciding[i] else np.zeros_like(hit)",
             "unique = caught & hit if deciding[i] else np.zeros_like(hit)",
             "unique_tp ignores the other rules", (RULES_DAILY,)),
    Mutation("metrics.py", '"recall": ratio(tp, total_fraud),', '"recall": ratio(tp, int(g.count[caught].sum())),',
             "rule recall over caught fraud instead of all fraud", (RULES_DAILY,)),
    Mutation("metrics.py", 'row = {"day": day.isoformat(), **{k: int(v[i]) for k, v in columns.items()}}',
             'row = {"day": day.isoformat(), **{k: int(v[i - 1]) for k, v in columns.items()}}',
             "daily rows off by one day", (RULES_DAILY,)),
    Mutation("metrics.py", 'row["over_capacity"] = bool(columns["review_cases"][i] > business.review_capacity)',
             'row["over_capacity"] = bool(columns["review_cases"][i] >= business.review_capacity)',
             "daily over_capacity at exactly the capacity", (CAPACITY,)),
    Mutation("backtest.py", "return [start + timedelta(days=i) for i in range((stop - start).days + 1)]",
             "return [start + timedelta(days=i) for i in range((stop - start).days)]",
             "the window loses its last day", (RULES_DAILY,)),
    # ------------------------------------------------------------ compare.py: day sums, CI metrics, bootstrap
    Mutation("compare.py", 'recall = f["tp"] / (f["tp"] + f["fn"])', 'recall = f["tp"] / f["tp"]',
             "bootstrapped recall without fn", (DAY_SUMS,)),
    Mutation("compare.py", 'precision = f["tp"] / (f["tp"] + f["fp"])', 'precision = f["fp"] / (f["tp"] + f["fp"])',
             "bootstrapped precision with tp and fp swapped", (DAY_SUMS,)),
    Mutation("compare.py", '"net_benefit": f["stopped"] - business.good_block_cost * f["good_blocked"]',
             '"net_benefit": f["stopped"] - f["good_blocked"]',
             "bootstrapped net benefit without good_block_cost", (DAY_SUMS,)),
    Mutation("compare.py",
             '"stopped": amt * (block & fraud) + business.review_catch_rate * amt * (review & fraud),',
             '"stopped": amt * (block & fraud) + amt * (review & fraud),',
             "day sums drop review_catch_rate", (DAY_SUMS,)),
    Mutation("compare.py", "np.bincount(g.day, weights=weights[f], minlength=len(g.days))",
             "np.bincount(np.maximum(g.day - 1, 0), weights=weights[f], minlength=len(g.days))",
             "day sums shifted by one day", (DAY_SUMS,)),
    Mutation("compare.py", "base = metrics_from_sums(weights @ baseline_days, business)",
             "base = metrics_from_sums(rng.multinomial(days, np.full(days, 1 / days), size=n).astype(float)"
             " @ baseline_days, business)",
             "bootstrap not paired: the baseline resamples other days", (PAIRED,)),
    Mutation("compare.py", "out[key] = value - other", "out[key] = other - value",
             "deltas are baseline - candidate", (COMPARE,)),
    # ------------------------------------------------------------ optimize.py: every threshold at once
    Mutation("optimize.py",
             '"stopped": amt * (action == BLOCK) * fraud + business.review_catch_rate * amt * (action == REVIEW) * fraud,',
             '"stopped": amt * (action == BLOCK) * fraud + amt * (action == REVIEW) * fraud,',
             "threshold curve drops review_catch_rate", (CURVE,)),
    Mutation("optimize.py", '"good_blocked": amt * (action == BLOCK) * good,',
             '"good_blocked": amt * (action != ALLOW) * good,',
             "threshold curve counts reviewed good money as blocked", (CURVE,)),
    Mutation("optimize.py", '"review_overflow_days": int((daily[:, j] > business.review_capacity).sum()),',
             '"review_overflow_days": int((daily[:, j] >= business.review_capacity).sum()),',
             "threshold curve: a day at exactly the capacity counted as over it", (CURVE,)),
    Mutation("optimize.py", "precision, recall = ratio(tp, tp + fp), ratio(tp, fraud)",
             "precision, recall = ratio(tp, tp + fp), ratio(tp, tp)",
             "threshold curve recall without fn", (CURVE,)),
    Mutation("optimize.py", "return np.flip(np.cumsum(np.flip(per_bucket)))[1:]",
             "return np.flip(np.cumsum(np.flip(per_bucket)))[:-1]",
             "a threshold takes the gains of one score interval too many", (CURVE,)),
    # ------------------------------------------------------------ report.py: warnings
    Mutation("report.py", "if start and end and start <= hi and lo <= end:",
             "if start and end and start <= lo and hi <= end:",
             "the overlap warning only when training covers the whole window", (DETECTOR_WARNING,)),
    Mutation("report.py", "if unlabeled / total > UNLABELED_WARN:", "if unlabeled / total < UNLABELED_WARN:",
             "the unlabelled warning inverted", (WINDOW,)),
]

SERVER = r"""
import json, os, sys
import numpy, pandas, pyarrow, pyarrow.parquet, duckdb, sqlglot, sqlglot.dialects, pydantic, yaml, pytest
print("ready", flush=True)
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        try:
            log = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(log, 1)
            os.dup2(log, 2)
            sys.path.insert(0, job["root"])
            import riskconsole
            print("imported", riskconsole.__file__, flush=True)
            code = int(pytest.main(job["args"]))
        except BaseException as err:
            print("mutation runner failed:", repr(err), flush=True)
            code = 99
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"code": os.waitstatus_to_exitcode(status)}), flush=True)
"""


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    """run(root, tests) -> (exit code, output): the tests, in a fresh fork, importing riskconsole from `root`."""
    if not hasattr(os, "fork"):
        pytest.skip("the mutation runner forks (POSIX only)")
    work = tmp_path_factory.mktemp("mutations")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # the chosen tests need no plugin
    env.pop("PYTHONPATH", None)
    server = subprocess.Popen([sys.executable, "-P", "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=work, env=env)
    assert server.stdout.readline().strip() == "ready"
    runs = iter(range(10**6))

    def run(root: Path, tests: tuple[str, ...]) -> tuple[int, str]:
        log = work / f"run{next(runs)}.log"
        args = ["-x", "-q", "-p", "no:cacheprovider", *[str(ROOT / "tests" / t) for t in tests]]
        server.stdin.write(json.dumps({"root": str(root), "log": str(log), "args": args}) + "\n")
        server.stdin.flush()
        ready, _, _ = select.select([server.stdout], [], [], 300)
        assert ready, f"no answer in 300 s from the run of {tests}"
        code = json.loads(server.stdout.readline())["code"]
        output = log.read_text()
        imported = output.splitlines()[0] if output else ""
        assert imported == f"imported {root / 'riskconsole' / '__init__.py'}", output[-2000:]
        return code, output

    yield run
    server.stdin.close()
    server.wait(timeout=30)


def _copy(dest: Path, mutation: Mutation | None = None) -> Path:
    """The package copied under `dest` (compiled files kept: only the mutated module recompiles)."""
    shutil.copytree(PACKAGE, dest / "riskconsole")
    if mutation is not None:
        target = dest / "riskconsole" / mutation.file
        target.write_text(target.read_text().replace(mutation.old, mutation.new))
        for stale in (target.parent / "__pycache__").glob(f"{target.stem}.*.pyc"):
            stale.unlink()
    return dest


def _id(mutation: Mutation) -> str:
    return f"{mutation.file}:{mutation.why}"


@pytest.mark.parametrize("mutation", MUTATIONS, ids=_id)
def test_each_mutation_still_applies(mutation):
    text = (PACKAGE / mutation.file).read_text()
    assert text.count(mutation.old) == 1, (
        f"{mutation.file}: the snippet of mutation '{mutation.why}' occurs {text.count(mutation.old)} times; the "
        "metric code moved: point the entry at its new home (see the top of this file)")
    assert mutation.new != mutation.old and mutation.tests


def test_the_chosen_tests_pass_without_a_mutation(runner, tmp_path):
    """Otherwise a 'killed' mutation would mean nothing."""
    tests = tuple(dict.fromkeys(t for m in MUTATIONS for t in m.tests))
    code, output = runner(_copy(tmp_path), tests)
    assert code == 0, output[-3000:]


@pytest.mark.parametrize("mutation", MUTATIONS, ids=_id)
def test_mutation_is_killed(runner, tmp_path, mutation):
    if (PACKAGE / mutation.file).read_text().count(mutation.old) != 1:
        pytest.fail("the mutation no longer applies (see test_each_mutation_still_applies)")
    code, output = runner(_copy(tmp_path, mutation), mutation.tests)
    assert code == 1 and "FAILED " in output, (
        f"mutation survived ({mutation.why}) or broke something else (exit {code}): add the missing assertion "
        f"to {', '.join(mutation.tests)}\n{output[-3000:]}")

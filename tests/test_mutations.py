"""Mutation check for the metric code: each hand-written bug below must make some fast test fail.

How to add an entry: append `Mutation(file, old, new, why, tests)` to MUTATIONS.
  - `file` is relative to the `riskconsole` package; `old` is copied from it verbatim (whitespace included) and
    must occur there exactly once (`test_each_mutation_still_applies` fails loudly when code moves: re-point
    `file`/`old` at the formula's new home; never delete an entry just to make it pass);
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
    # ------------------------------------------------------------ metrics.py: the one home of every formula
    # (parts -> rates -> overall_from_sums serve the report, the bootstrap and the threshold curve alike)
    Mutation("metrics.py", 'block = hits[:, rules.mask("block")].any(axis=1) & ~allow',
             'block = hits[:, rules.mask("block")].any(axis=1)',
             "allow must beat block", (OVERRIDES,)),
    Mutation("metrics.py", '"tp": n * (flagged & fraud), "fp": n * (flagged & good),',
             '"fp": n * (flagged & fraud), "tp": n * (flagged & good),',
             "tp and fp swapped", (OVERALL,)),
    Mutation("metrics.py", 'recall = s["tp"] / (s["tp"] + s["fn"])', 'recall = s["tp"] / s["tp"]',
             "recall denominator without fn", (OVERALL,)),
    Mutation("metrics.py", 'precision = s["tp"] / (s["tp"] + s["fp"])',
             'precision = s["tp"] / (s["tp"] + s["fp"] + s["unlabeled_flagged"])',
             "precision counts unlabelled flagged events", (OVERALL,)),
    Mutation("metrics.py", '"f1": 2 * precision * recall / (precision + recall),',
             '"f1": precision * recall / (precision + recall),',
             "f1 is not the harmonic mean", (OVERALL,)),
    Mutation("metrics.py", '"stopped": amount * (block & fraud) + catch_rate * amount * (review & fraud),',
             '"stopped": amount * (block & fraud) + amount * (review & fraud),',
             "review_catch_rate dropped from fraud_amount_stopped", (OVERALL, CURVE)),
    Mutation("metrics.py", '"net_benefit": s["stopped"] - business.good_block_cost * s["good_blocked"] - review_cost,',
             '"net_benefit": s["stopped"] - s["good_blocked"] - review_cost,',
             "good_block_cost dropped from net_benefit", (OVERALL,)),
    Mutation("metrics.py", 'review_cost = s["reviews"] * business.review_cost', 'review_cost = s["reviews"]',
             "review cost per case ignored", (OVERALL,)),
    Mutation("metrics.py", '"amount_recall": s["caught_amount"] / s["fraud_amount"],',
             '"amount_recall": s["stopped"] / s["fraud_amount"],',
             "amount_recall uses the stopped amount instead of the flagged fraud amount", (OVERALL,)),
    Mutation("metrics.py", '"alert_rate": s["flagged"] / s["population"],',
             '"alert_rate": s["flagged"] / (s["population"] - s["unlabeled_total"]),',
             "alert_rate over labelled events only", (OVERALL,)),
    Mutation("metrics.py", "return int((np.asarray(daily_reviews) > capacity).sum())",
             "return int((np.asarray(daily_reviews) >= capacity).sum())",
             "a day at exactly the capacity counted as over it", (CAPACITY, CURVE)),
    Mutation("metrics.py", 'daily_reviews = np.bincount(g.day, weights=p["reviews"], minlength=len(g.days))',
             'daily_reviews = np.bincount(np.maximum(g.day - 1, 0), weights=p["reviews"], minlength=len(g.days))',
             "review load counted on the wrong day", (OVERALL,)),
    # ------------------------------------------------------------ metrics.py: by_action, rules, daily
    Mutation("metrics.py", '"tp": int(n[code, 2]), "fp": int(n[code, 1]),',
             '"tp": int(n[code, 2]), "fp": int(n[code, 1] + n[code, 0]),',
             "by_action fp counts unlabelled events", (RULES_DAILY,)),
    Mutation("metrics.py", "return (action != ALLOW) & (g.hits[:, deciding].sum(axis=1) == 1)",
             "return action != ALLOW",
             "unique_tp ignores the other rules", (RULES_DAILY,)),
    Mutation("metrics.py", '"recall": ratio(tp, total_fraud),',
             '"recall": ratio(tp, int(g.count[(action != ALLOW) & fraud].sum())),',
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
    # ------------------------------------------------------------ compare.py: day sums, bootstrap, deltas
    Mutation("compare.py", "np.bincount(g.day, weights=p[f], minlength=len(g.days))",
             "np.bincount(np.maximum(g.day - 1, 0), weights=p[f], minlength=len(g.days))",
             "day sums shifted by one day", (DAY_SUMS,)),
    Mutation("compare.py", "return rates({name: sums[..., i] for i, name in enumerate(DAILY_FIELDS)}, business)",
             "return rates({name: sums[..., i - 1] for i, name in enumerate(DAILY_FIELDS)}, business)",
             "resampled metrics read the neighbouring day-sum column", (DAY_SUMS,)),
    Mutation("compare.py", "base = metrics_from_sums(weights @ baseline_days, business)",
             "base = metrics_from_sums(rng.multinomial(days, np.full(days, 1 / days), size=n).astype(float)"
             " @ baseline_days, business)",
             "bootstrap not paired: the baseline resamples other days", (PAIRED,)),
    Mutation("compare.py", "out[key] = value - other", "out[key] = other - value",
             "deltas are baseline - candidate", (COMPARE,)),
    # ------------------------------------------------------------ optimize.py: every threshold at once
    Mutation("optimize.py", "return np.flip(np.cumsum(np.flip(per_bucket)))[1:]",
             "return np.flip(np.cumsum(np.flip(per_bucket)))[:-1]",
             "a threshold takes the gains of one score interval too many", (CURVE,)),
    Mutation("optimize.py", "np.flip(np.cumsum(np.flip(per_day, 1), 1), 1)[:, 1:]",
             "np.flip(np.cumsum(np.flip(per_day, 1), 1), 1)[:, :-1]",
             "a threshold's daily review load takes one score interval too many", (CURVE,)),
    Mutation("optimize.py", "gains = {k: v - base[k] for k, v in parts(a1, y, n, amt, business.review_catch_rate).items()}",
             "gains = {k: v - base[k] for k, v in parts(a1, y, n, amt, 1.0).items()}",
             "threshold gains count a reviewed fraud as fully caught", (CURVE,)),
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

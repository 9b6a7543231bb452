"""Outcomes production hid (DESIGN §6.2): bounds contain the truth, the IPW interval covers it, the gate is honest."""

from __future__ import annotations

import os

import numpy as np
import pytest
import yaml

from outcome_sim import simulate
from riskconsole.config import Business
from riskconsole.errors import RiskConsoleError
from riskconsole.gate import judge, parse_guardrail
from riskconsole.metrics import RuleSet, decide, parts, rates
from riskconsole.outcomes import EXPLORED, LET_THROUGH, PROD_BLOCKED, bounds, delta_bounds, estimate, parse_assumption
from tests.conftest import random_events, write_workspace

BUSINESS = Business(review_cost=2.0, review_catch_rate=0.8, good_block_cost=0.3)
CANDIDATE = RuleSet(["hi", "mid", "ok"], ["block", "review", "allow"], [True, True, True])
LENIENT = RuleSet(["hi", "mid", "ok"], ["review", "review", "allow"], [False, True, True])  # blocks nothing
METRICS = ("precision", "recall", "f1", "amount_recall", "net_benefit", "fraud_amount_stopped", "good_amount_blocked")


def true_metrics(h, action: np.ndarray) -> dict:
    """Every metric with the true label of every event (what production hid, revealed)."""
    p = parts(action, h.truth, h.outcomes.count, h.outcomes.amount, BUSINESS.review_catch_rate)
    return rates({k: v.sum() for k, v in p.items()}, BUSINESS)


def inside(value: float, pair: list) -> bool:
    lo, hi = min(pair), max(pair)
    return lo - 1e-9 * max(1.0, abs(lo)) <= value <= hi + 1e-9 * max(1.0, abs(hi))


@pytest.mark.parametrize("seed", range(25))
def test_bounds_always_contain_the_truth(seed):
    h = simulate(seed, days=10, per_day=300, negative_amounts=seed % 2 == 1)
    for rules in (CANDIDATE, LENIENT):
        action = decide(h.outcomes.hits, rules)
        found, truth = bounds(h.outcomes, action, BUSINESS), true_metrics(h, action)
        for m in METRICS:
            assert inside(float(truth[m]), found[m]), (m, truth[m], found[m])


@pytest.mark.parametrize("seed", range(25))
def test_delta_bounds_contain_the_true_delta(seed):
    h = simulate(seed, days=10, per_day=300, negative_amounts=seed % 3 == 0)
    cand, base = decide(h.outcomes.hits, LENIENT), decide(h.outcomes.hits, CANDIDATE)
    found = delta_bounds(h.outcomes, cand, base, BUSINESS)
    tc, tb = true_metrics(h, cand), true_metrics(h, base)
    for m in METRICS:
        assert inside(float(tc[m] - tb[m]), found[m]), (m, tc[m] - tb[m], found[m])


def test_bounds_are_the_extreme_corners():
    """Recall's worst: the strategy's flagged unobservable events all good AND its allowed ones all fraud."""
    h = simulate(3, days=5, per_day=300)
    o, action = h.outcomes, decide(h.outcomes.hits, CANDIDATE)
    u, flagged = o.unobservable, action != 0
    tp = o.count[(o.label == 1) & flagged].sum()
    fn = o.count[(o.label == 1) & ~flagged].sum()
    fp = o.count[(o.label == 0) & flagged].sum()
    n_uf, n_ua = o.count[u & flagged].sum(), o.count[u & ~flagged].sum()
    found = bounds(o, action, BUSINESS)
    assert found["recall"] == pytest.approx([tp / (tp + fn + n_ua), (tp + n_uf) / (tp + n_uf + fn)])
    assert found["precision"] == pytest.approx([tp / (tp + fp + n_uf), (tp + n_uf) / (tp + fp + n_uf)])
    blocked_u = o.amount[u & (action == 2)].sum()
    assert found["good_amount_blocked"][0] - found["good_amount_blocked"][1] == pytest.approx(blocked_u)


def test_nothing_hidden_gives_points():
    h = simulate(4, days=5, per_day=200, explore=1.0)  # production let every would-be block through
    action = decide(h.outcomes.hits, CANDIDATE)
    for m, (worst, best) in bounds(h.outcomes, action, BUSINESS).items():
        assert worst == pytest.approx(best), m


def test_ipw_interval_covers_the_truth_at_about_the_nominal_rate():
    covered, runs = {m: 0 for m in ("precision", "recall", "net_benefit")}, 200
    for seed in range(runs):
        h = simulate(1000 + seed, days=30, per_day=250, explore=0.05)
        action = decide(h.outcomes.hits, CANDIDATE)
        est, truth = estimate(h.outcomes, action, BUSINESS, n=300, seed=seed), true_metrics(h, action)
        for m in covered:
            lo, hi = est[m]["interval"]
            covered[m] += lo <= truth[m] <= hi
    for m, hits in covered.items():
        assert 0.85 <= hits / runs <= 0.99, (m, hits / runs)


def test_estimate_needs_explore_rows():
    h = simulate(5, days=5, per_day=200, explore=0.0)
    assert estimate(h.outcomes, decide(h.outcomes.hits, CANDIDATE), BUSINESS) is None


def _report(h, cand, base) -> dict:
    """A comparison report as `outcomes.attach` writes it (labelled-only points, bounds on the deltas)."""
    o = h.outcomes
    pc = rates({k: v.sum() for k, v in parts(cand, o.label, o.count, o.amount, 0.8).items()}, BUSINESS)
    pb = rates({k: v.sum() for k, v in parts(base, o.label, o.count, o.amount, 0.8).items()}, BUSINESS)
    delta = {m: float(pc[m] - pb[m]) for m in METRICS}
    return {"overall": {**{m: float(pc[m]) for m in METRICS}, "bounds": bounds(o, cand, BUSINESS)},
            "compare": {"delta": delta, "intervals": {"delta": {}, "candidate": {}},
                        "baseline": {m: float(pb[m]) for m in METRICS},
                        "bounds": {"delta": delta_bounds(o, cand, base, BUSINESS)}},
            "outcomes": {"assumption": "worst", "assumed": None, "assumption_text": ""}}


@pytest.mark.parametrize("seed", range(10))
def test_the_gate_never_shows_a_candidate_that_allows_production_blocks_better_than_its_worst_case(seed):
    h = simulate(seed, days=10, per_day=300)
    cand, base = decide(h.outcomes.hits, LENIENT), decide(h.outcomes.hits, CANDIDATE)
    report = _report(h, cand, base)
    metrics = list(METRICS)
    for m in ("recall", "net_benefit", "fraud_amount_stopped", "precision"):
        worst = min(report["compare"]["bounds"]["delta"][m])
        for threshold in (worst + abs(worst) * 0.01 + 1e-6, worst - abs(worst) * 0.01 - 1e-6):
            result = judge(parse_guardrail(f"{m}>={threshold:+.8f}", metrics), report)
            assert result["holds"] == (threshold <= worst), (m, threshold, worst, result)
        # the labelled-only point looks better than the worst case: it alone would have passed
        assert report["compare"]["delta"][m] >= worst - 1e-9


def test_an_explicit_assumption_replaces_the_worst_case():
    h = simulate(2, days=10, per_day=300)
    cand, base = decide(h.outcomes.hits, LENIENT), decide(h.outcomes.hits, CANDIDATE)
    report = _report(h, cand, base)
    worst = min(report["compare"]["bounds"]["delta"]["recall"])
    report["outcomes"] = {"assumption": "good", "assumption_text": "all good", "assumed": {}}
    report["compare"]["assumed"] = {"delta": {"recall": worst + 0.5}}
    result = judge(parse_guardrail(f"recall>={worst + 0.1:+.6f}", list(METRICS)), report)
    assert result["holds"] and result["assumed"] == "all good"


@pytest.mark.parametrize("seed", range(8))
def test_no_assumption_inside_the_bounds_is_judged_more_strictly_than_the_worst_case(seed):
    """`--assume` moves the interval to the assumed value; the worst case moves it to the worst bound. So a guardrail
    that holds at the worst case holds under every assumed value inside the bounds (a stranger's gate passed
    'precision>=-0.05' at the worst case, delta +0.30 with CI +0.00 … +0.72 and worst +0.02, and failed under
    fraud-rate-of-explored, +0.22 with CI -0.08 … +0.64: the worst case kept the labelled-only interval)."""
    import copy

    h = simulate(seed, days=10, per_day=300)
    cand, base = decide(h.outcomes.hits, LENIENT), decide(h.outcomes.hits, CANDIDATE)
    report = _report(h, cand, base)
    for m in ("recall", "precision", "net_benefit"):
        point = report["compare"]["delta"][m]
        low, high = sorted(report["compare"]["bounds"]["delta"][m])
        below = 0.3 * (high - low) + 1e-3 * max(1.0, abs(point))  # the labelled interval's spread under the point
        report["compare"]["intervals"]["delta"][m] = [point - below, point + below / 2]
        for threshold in np.linspace(low - 2 * below, high, 25):
            guard = parse_guardrail(f"{m}>={threshold:+.8f}", list(METRICS))
            worst_case = judge(guard, report)
            assert worst_case["holds"] == (threshold <= min(low, point - below, low - below)), (m, threshold)
            for value in np.linspace(low, high, 9):
                assumed = copy.deepcopy(report)
                assumed["outcomes"] = {"assumption": "good", "assumption_text": "assumed", "assumed": {}}
                assumed["compare"]["assumed"] = {"delta": {m: float(value)}}
                assert judge(guard, assumed)["holds"] or not worst_case["holds"], (m, threshold, value)


def test_parse_assumption():
    assert parse_assumption(None) == "worst"
    assert parse_assumption("unobserved=good") == "good"
    assert parse_assumption("unobserved=fraud-rate-of-explored") == "fraud-rate-of-explored"
    with pytest.raises(RiskConsoleError, match="unobserved=ASSUMPTION"):
        parse_assumption("unobserved=maybe")


# ------------------------------------------------------------------ through the session, on loaded data

STRATEGIES = {
    "prod": {"name": "prod", "rules": [{"name": "big", "when": "amount > 150", "action": "block"}]},
    "lenient": {"name": "lenient", "rules": [{"name": "big", "when": "amount > 400", "action": "block"}]},
}


def _events(seed: int = 1):
    events = random_events(600, seed)
    blocked = (events["amount"] > 150).to_numpy()
    rng = np.random.default_rng(seed)
    explored = blocked & (rng.random(len(events)) < 0.3)
    events["prod_action"] = np.where(blocked, "block", "allow")
    events["explore"] = explored.astype(int)
    events["propensity"] = np.where(explored, 0.3, np.nan)
    events.loc[blocked & ~explored, "is_fraud"] = pd_na()
    return events


def pd_na():
    import pandas as pd

    return pd.NA


def _dataset(**roles) -> dict:
    from tests.conftest import BASE_DATASET

    dataset = yaml.safe_load(yaml.safe_dump(BASE_DATASET))
    dataset["columns"].update(roles)
    return dataset


ROLES = {"prod_action": "prod_action", "explore": "explore", "propensity": "propensity"}


@pytest.fixture
def hidden_ws(tmp_path):
    from riskconsole.ingest import load

    ws = write_workspace(tmp_path / "ws", _events(), _dataset(**ROLES), STRATEGIES)
    load(ws)
    return ws


def test_session_reports_observability_bounds_and_estimate(hidden_ws):
    from riskconsole.report import Baseline
    from riskconsole.session import Session

    with Session(hidden_ws) as session:
        report = session.backtest(hidden_ws.root / "strategies/lenient.yaml",
                                  baseline=Baseline(hidden_ws.root / "strategies/prod.yaml", bootstrap=200)).report
    overall = report["overall"]
    seen = overall["observability"]
    assert seen["unobservable"] > 0 and seen["observed"] + seen["unobservable"] <= overall["population"]
    for m in ("precision", "recall", "net_benefit", "fraud_amount_stopped"):
        worst, best = overall["bounds"][m]
        assert worst <= best
    assert set(overall["estimate"]) >= {"precision", "recall"}
    assert overall["estimate"]["recall"]["interval"] is not None
    assert report["compare"]["bounds"]["delta"]["recall"][0] <= report["compare"]["delta"]["recall"]
    assert any("unobservable" in w for w in report["warnings"])
    with Session(hidden_ws) as session:
        assumed = session.backtest(hidden_ws.root / "strategies/lenient.yaml", assume="unobserved=good").report
    assert assumed["outcomes"]["assumption"] == "good"
    assert any("ASSUMED" in w for w in assumed["warnings"])


def test_gate_cli_judges_at_the_worst_case(hidden_ws, capsys):
    from riskconsole.cli import main

    args = ["gate", str(hidden_ws.root / "strategies/lenient.yaml"), "--baseline",
            str(hidden_ws.root / "strategies/prod.yaml"), "--require", "net_benefit>=+0", "--bootstrap", "50",
            "--workspace", str(hidden_ws.root)]
    main(args)
    out = capsys.readouterr().out
    assert "over the outcomes production hid" in out
    main(args + ["--assume", "unobserved=good"])
    assert "assuming every unobservable event" in capsys.readouterr().out


@pytest.mark.parametrize("change, message", [
    (lambda e: e.assign(propensity=np.where(e["explore"] == 1, 1.5, np.nan)), "propensity.*holds '1.5'.*\\(0, 1\\]"),
    (lambda e: e.assign(propensity=np.where(e["explore"] == 1, 0.0, np.nan)), "propensity.*\\(0, 1\\]"),
    (lambda e: e.assign(propensity=np.nan), "propensity.*explored row"),
    (lambda e: e.assign(prod_action=np.where(e["prod_action"] == "block", "deny", "allow")),
     "prod_action.*'deny'.*allow, review or block.*prod_action_values: {deny: block}"),
    (lambda e: e.assign(explore=np.where(e["explore"] == 1, 2, 0)), "explore.*'2'"),
])
def test_bad_values_are_one_line_load_errors(tmp_path, change, message):
    from riskconsole.sources import check_dataset

    ws = write_workspace(tmp_path / "ws", change(_events()), _dataset(**ROLES), STRATEGIES)
    with pytest.raises(RiskConsoleError, match=message) as err:
        check_dataset(ws)
    text = str(err.value)
    assert "\n" not in text and text.startswith("data/dataset.yaml: ")


def test_decisions_written_as_words_name_every_word_with_its_rows_and_the_fix(tmp_path):
    """An export writing production's decisions as words (approve / decline / ...) fails to load with one line that
    names every distinct word with its rows (the most frequent first, ties by value), says what is accepted and the
    prod_action_values that reads each common word as its decision; the error counts the words in the data."""
    from riskconsole.sources import SHOWN_VALUES, check_dataset

    events = _events()
    words = {"allow": "approve", "block": "DECLINE"}
    events["prod_action"] = [words[a] for a in events["prod_action"]]
    events.loc[events.index[:3], "prod_action"] = "allow"  # accepted values are not named
    events.loc[events.index[3], "prod_action"] = None
    ws = write_workspace(tmp_path / "ws", events, _dataset(**ROLES), STRATEGIES)
    with pytest.raises(RiskConsoleError) as err:
        check_dataset(ws)
    counts = events["prod_action"].fillna("").value_counts().drop("allow")
    order = sorted(counts.items(), key=lambda vn: (-vn[1], vn[0] != "", vn[0]))
    named = ", ".join(f"{'empty' if v == '' else repr(v)} ({n:,} row{'s' if n != 1 else ''})" for v, n in order)
    meaning = {word: decision for decision, word in words.items()}
    fix = ", ".join(f"{v}: {meaning[v]}" for v, _ in order if v in meaning)
    assert str(err.value) == (
        f"data/dataset.yaml: columns.prod_action: column 'prod_action' holds {named}; every row needs what production "
        "decided: allow, review or block (any case), or a word mapped under prod_action_values (e.g. "
        f"prod_action_values: {{{fix}}})")
    assert {v for v, _ in order} == {"approve", "DECLINE", ""} and "empty (1 row)" in named
    # many distinct values: the most frequent SHOWN_VALUES, then how many others and the rows in all
    events["prod_action"] = [f"code{i % (SHOWN_VALUES + 3)}" for i in range(len(events))]
    ws2 = write_workspace(tmp_path / "ws2", events, _dataset(**ROLES), STRATEGIES)
    with pytest.raises(RiskConsoleError, match=rf"holds 'code0' \(\d+ rows\), .* and 3 other values "
                                               rf"\({len(events):,} rows in all\); every row needs .* "
                                               r"\(e.g. prod_action_values: \{code\d+: block\} if 'code\d+' means "
                                               r"block\)$"):
        check_dataset(ws2)


def test_decisions_mapped_under_prod_action_values_give_the_report_of_the_decisions_written_out(tmp_path):
    """An export writing approve / DECLINE / Manual Review / an empty cell, mapped under prod_action_values (keys
    matched ignoring case and spaces), loads the decisions as allow / block / review and gives, number for number,
    the report of the same export with the decisions written as allow / review / block."""
    from riskconsole.ingest import load
    from riskconsole.report import Baseline
    from riskconsole.session import Session

    events = _events()
    events.loc[events.index[::7], "prod_action"] = "review"
    events.loc[events.index[5::50], "prod_action"] = "allow"  # the empty cells below: `"": allow`
    words = {"allow": "approve", "block": " DECLINE ", "review": "Manual Review"}
    worded = events.assign(prod_action=[words[a] for a in events["prod_action"]])
    worded.loc[events.index[5::50], "prod_action"] = None
    reports = []
    for name, frame, mapping in (("plain", events, None),
                                 ("worded", worded, {"Approve": "allow", "decline": "block",
                                                     " manual review": "review", "": "allow"})):
        dataset = _dataset(**ROLES) | ({"prod_action_values": mapping} if mapping else {})
        ws = write_workspace(tmp_path / name, frame, dataset, STRATEGIES)
        load(ws)
        with Session(ws) as session:
            held = sorted(session.connection().execute("SELECT prod_action, count(*) FROM events GROUP BY 1"
                                                       ).fetchall())
            report = session.backtest(ws.root / "strategies/lenient.yaml",
                                      baseline=Baseline(ws.root / "strategies/prod.yaml", bootstrap=100)).report
        reports.append((held, report))
    (plain_held, plain), (worded_held, worded_report) = reports
    want = events["prod_action"].value_counts()
    assert worded_held == plain_held == sorted((a, int(n)) for a, n in want.items())
    assert worded_report["overall"]["observability"]["unobservable"] > 0
    assert worded_report == plain


def test_a_key_reads_the_words_it_is_written_as_whatever_their_case_mapping(tmp_path):
    """A key is lowered and trimmed as the engine lowers and trims the column (sources.action_word), so a key written
    exactly as the export writes the word maps it, for words whose lower case Python and DuckDB disagree on (Turkish
    'İ', a final 'Σ'), and spaces DuckDB trims (a no-break space) on either side."""
    from riskconsole.ingest import load

    events = _events()
    words = {"block": ["İPTAL", "ΑΠΟΡΡΙΨΗΣ", "Reddedildi\u00a0"], "allow": ["Onay"]}
    events["prod_action"] = [words[a][i % len(words[a])] for i, a in enumerate(events["prod_action"])]
    mapping = {"İPTAL": "block", "ΑΠΟΡΡΙΨΗΣ": "block", "\u00a0reddedildi": "block", "Onay": "allow"}
    ws = write_workspace(tmp_path / "ws", events, _dataset(**ROLES) | {"prod_action_values": mapping}, STRATEGIES)
    load(ws)
    import duckdb

    with duckdb.connect(str(ws.db_path), read_only=True) as con:
        got = dict(con.execute("SELECT event_id, prod_action FROM events").fetchall())
    meant = {w: decision for decision, ws_ in words.items() for w in ws_}
    assert got == {i: meant[w] for i, w in zip(events["event_id"], events["prod_action"])}


@pytest.mark.parametrize("words", [
    ["approve\t", " DECLINE", "Manual Review", "decline"],  # a tab the load keeps; one key per word, any case
    ["appr\u200bove", "a\nb", "\t"],  # a zero-width space, a line break: written escaped, double-quoted
    ["it's", 'say "no"', "{v}", "yes", "~", "a: b", "x'); DROP TABLE events; --"],  # YAML and SQL punctuation
    ["", "approve", "\u00a0"],  # empty cells, and a no-break space the load trims to empty
])
def test_the_suggested_prod_action_values_pasted_into_the_file_loads(tmp_path, words):
    """The error's `e.g. prod_action_values: {...}`, pasted over the file's line as it stands, is YAML that maps
    the very values it names (keeping what the file already mapped): a load after at most one paste per value
    passes, each common word read as its decision, other words as the block the example names, empty as allow."""
    import re

    from riskconsole.ingest import load
    from riskconsole.sources import check_dataset

    events = _events()
    events["prod_action"] = [(words + ["Manual Review"])[i % (len(words) + 1)] for i in range(len(events))]
    dataset = _dataset(prod_action="prod_action") | {"prod_action_values": {"manual review": "review"}}
    ws = write_workspace(tmp_path / "ws", events, dataset, STRATEGIES)
    for _ in words:
        try:
            check_dataset(ws)
            break
        except RiskConsoleError as err:
            fix = re.search(r"\(e\.g\. (prod_action_values: \{.*\})(?: if .* means \w+)?\)$", str(err))
            assert fix, str(err)
            lines = ws.dataset_path.read_text().splitlines()  # the mapping's line (and its block's) replaced
            start = next(i for i, line in enumerate(lines) if line.startswith("prod_action_values:"))
            end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("  ")), len(lines))
            ws.dataset_path.write_text("\n".join([*lines[:start], fix.group(1), *lines[end:]]) + "\n")
    load(ws)
    import duckdb

    with duckdb.connect(str(ws.db_path), read_only=True) as con:
        got = dict(con.execute("SELECT event_id, prod_action FROM events").fetchall())
    common = {"approve": "allow", "decline": "block", "manual review": "review"}

    def meant(word: str) -> str:
        key = word.strip(" \u00a0").lower()  # what the load trims: a tab stays (and '\t' is no common word)
        return common.get(key.strip(), "block") if key else "allow"
    assert got == {i: meant(w) for i, w in zip(events["event_id"], events["prod_action"].fillna(""))}


def test_a_very_long_bad_decision_is_named_short_and_suggested_nowhere(tmp_path):
    """A 5,000-character value (a wrong column: JSON blobs, free text) is named by its first 40 characters and not
    written into a suggested mapping (no YAML key holds it, and the one-line error would be 5,000 characters)."""
    from riskconsole.sources import check_dataset

    events = _events()
    events["prod_action"] = ["x" * 5_000 if i % 2 else "block" for i in range(len(events))]
    ws = write_workspace(tmp_path / "ws", events, _dataset(prod_action="prod_action"), STRATEGIES)
    with pytest.raises(RiskConsoleError, match=r"holds '(x{40})…' \(\d+ rows\); every row needs .* or a word "
                                               r"mapped under prod_action_values$") as err:
        check_dataset(ws)
    assert len(str(err.value)) < 400


@pytest.mark.parametrize("source_name", ["events.parquet", "events.jsonl"])
def test_decisions_exported_as_codes_map_with_plain_number_keys(tmp_path, source_name):
    """Production's decisions exported as integer codes (a Parquet or JSON number column) load through
    `prod_action_values: {0: allow, 1: review, 2: block}` written as anyone writes it: YAML's numbers as keys are
    read as the text written (they were refused: 'Input should be a valid string')."""
    import duckdb

    from riskconsole.ingest import load

    events = _events()
    codes = np.where(events["prod_action"] == "block", 2, np.where(np.arange(len(events)) % 5 == 0, 1, 0))
    events["prod_action"] = codes.astype("int64")
    ws = write_workspace(tmp_path / "ws", events, _dataset(**ROLES), STRATEGIES, source_name=source_name)
    ws.dataset_path.write_text(ws.dataset_path.read_text() + "prod_action_values: {0: allow, 1: review, 2: block}\n")
    load(ws)
    with duckdb.connect(str(ws.db_path), read_only=True) as con:
        got = dict(con.execute("SELECT event_id, prod_action FROM events").fetchall())
    assert got == {i: ACTIONS_BY_CODE[c] for i, c in zip(events["event_id"], codes)}


ACTIONS_BY_CODE = {0: "allow", 1: "review", 2: "block"}


def test_a_long_mapping_is_not_repeated_in_the_suggestion(tmp_path):
    """A file mapping 500 words gets `prod_action_values: {…, decline: block}` (add the word), not a 500-entry line."""
    from riskconsole.sources import check_dataset

    events = _events().assign(prod_action=lambda e: np.where(e["prod_action"] == "block", "decline", "w7"))
    mapping = {f"w{i}": "allow" for i in range(500)}
    ws = write_workspace(tmp_path / "ws", events, _dataset(**ROLES) | {"prod_action_values": mapping}, STRATEGIES)
    with pytest.raises(RiskConsoleError, match=r"holds 'decline' \(\d+ rows\); .* \(e\.g\. prod_action_values: "
                                               r"\{…, decline: block\}\)$") as err:
        check_dataset(ws)
    assert len(str(err.value)) < 400


@pytest.mark.parametrize("mapping, roles, message", [
    ({"decline": "deny"}, ROLES, "prod_action_values.decline: .*'allow', 'review' or 'block'"),
    ({"Block": "allow"}, ROLES, "'Block' always means block"),
    ({"Decline": "block", " decline": "review"}, ROLES, "'Decline' and ' decline' are the same word"),
    ({"decline": "block"}, {}, "prod_action_values: needs columns.prod_action"),
])
def test_bad_prod_action_values_are_one_line_config_errors(tmp_path, mapping, roles, message):
    from riskconsole.sources import check_dataset

    ws = write_workspace(tmp_path / "ws", _events(), _dataset(**roles) | {"prod_action_values": mapping}, STRATEGIES)
    with pytest.raises(RiskConsoleError, match=message) as err:
        check_dataset(ws)
    assert "\n" not in str(err.value) and "dataset.yaml" in str(err.value)


def test_sweep_and_optimize_say_what_their_labelled_only_rows_leave_out(hidden_ws, capsys):
    """`sweep` and `optimize` rows count labelled events only; where production hid outcomes a backtest prints ranges
    and says why, and sweep and optimize printed no warning at all (a stranger's sweep read precision 96.5% where the
    backtest at the same setting said 76.4% … 97.2%). They now print the backtest's warnings at the file's params, the
    unobservable count checked against the events by hand."""
    from riskconsole.cli import main

    events = _events()
    hidden = int(((events["prod_action"] == "block") & (events["explore"] == 0) & events["is_fraud"].isna()).sum())
    path = hidden_ws.strategies_dir / "tunable.yaml"
    path.write_text(yaml.safe_dump({"name": "tunable", "params": {"big": 400},
                                    "rules": [{"name": "big", "when": "amount > $big", "action": "block"}]}))
    window = ["--from", "2026-03-01", "--to", "2026-03-06", "--workspace", str(hidden_ws.root)]
    main(["backtest", str(path), *window, "--out", str(hidden_ws.root / "bt")])
    backtest = [line.strip() for line in capsys.readouterr().out.splitlines() if line.startswith("  warning: ")]
    assert hidden > 0 and any(w.startswith(f"warning: {hidden:,} events production blocked have no label")
                              for w in backtest)
    for command in (["sweep", str(path), "--param", "big", "--values", "100,400"],
                    ["optimize", str(path), "--param", "big", "--values", "big=100,400", "--max-overflow-days", "99"]):
        main([*command, *window, "--out", str(hidden_ws.root / command[0])])
        out = capsys.readouterr().out
        assert "the rows count labelled events only; at the file's params (big=400) the backtest warns:" in out
        assert [line.strip() for line in out.splitlines() if line.startswith("  warning: ")] == backtest


@pytest.mark.parametrize("written", ["0,3", "0.3"])
def test_a_propensity_is_read_in_the_sources_decimal_mark(tmp_path, written):
    """With decimal_separator ',' (amounts 123,45), the outcome check reads a propensity as the load casts it: '0,3'
    loads as 0.3 on every explored row, none quarantined (the check refused it: 'must be a number'); '0.3', which the
    load quarantines (every production-blocked row dropped, with no error, before the fix), is a one-line load error
    naming the column and the decimal mark, and the live data is left as it was."""
    import duckdb

    from riskconsole.ingest import load

    events = _events()
    explored = int((events["explore"] == 1).sum())
    events["amount"] = [f"{a:.2f}".replace(".", ",") for a in events["amount"]]
    events["propensity"] = np.where(events["explore"] == 1, written, "")
    dataset = {**_dataset(**ROLES), "decimal_separator": ","}
    ws = write_workspace(tmp_path / "ws", events, dataset, STRATEGIES)
    if written == "0,3":
        load(ws)
        with duckdb.connect(str(ws.db_path), read_only=True) as con:
            read = con.execute("SELECT count(*), count(*) FILTER (WHERE propensity = 0.3), "
                               "count(*) FILTER (WHERE explore = 1) FROM events").fetchone()
            assert con.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)
        assert explored > 0 and read == (len(events), explored, explored)
        return
    with pytest.raises(RiskConsoleError) as err:
        load(ws)
    assert str(err.value) == (
        f"data/dataset.yaml: columns.propensity: column 'propensity' holds '0.3' ({explored:,} rows); a propensity "
        "must be a number in (0, 1] (or empty on rows not explored), written with the source's decimal mark "
        "(decimal_separator ','): 0,5, not 0.5")
    assert not ws.db_path.exists()


@pytest.mark.parametrize("roles, message", [
    ({"prod_action": "prod_action", "explore": "explore"}, "needs columns.propensity"),
    ({"explore": "explore", "propensity": "propensity"}, "need columns.prod_action"),
])
def test_bad_roles_are_one_line_config_errors(tmp_path, roles, message):
    from riskconsole.sources import check_dataset

    ws = write_workspace(tmp_path / "ws", _events(), _dataset(**roles), STRATEGIES)
    with pytest.raises(RiskConsoleError, match=message) as err:
        check_dataset(ws)
    assert "\n" not in str(err.value) and "dataset.yaml" in str(err.value)


@pytest.mark.parametrize("seed", range(10))
def test_the_estimate_of_precision_and_recall_stays_inside_the_bounds(seed):
    h = simulate(seed, days=10, per_day=300, explore=0.3)
    action = decide(h.outcomes.hits, CANDIDATE)
    est, found = estimate(h.outcomes, action, BUSINESS, n=50), bounds(h.outcomes, action, BUSINESS)
    for m in ("precision", "recall"):
        assert inside(est[m]["value"], found[m]), (m, est[m], found[m])


# ------------------------------------------------------------------ the console shows ranges


@pytest.fixture
def hidden_console(tmp_path, monkeypatch):
    from riskconsole.ingest import load
    from riskconsole.ui import common

    strategies = {"candidate": {**STRATEGIES["lenient"], "name": "candidate"},
                  "baseline": {**STRATEGIES["prod"], "name": "baseline"}}
    ws = write_workspace(tmp_path / "console", _events(), _dataset(**ROLES), strategies)
    load(ws)
    monkeypatch.setenv("RISKCONSOLE_WORKSPACE", str(ws.root))
    common.release_connections()

    def open_page(name: str):
        from streamlit.testing.v1 import AppTest

        at = AppTest.from_file(str(__import__("pathlib").Path(__file__).resolve().parents[1] / "app.py"),
                               default_timeout=60)
        at.switch_page(f"riskconsole/ui/{name}.py")
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return open_page


def test_backtest_and_compare_pages_show_ranges_with_a_reason(hidden_console):
    at = hidden_console("backtest_page")
    recall = next(m.value for m in at.metric if m.label == "recall")
    assert "–" in recall
    assert any("production blocked have no label" in c.value for c in at.caption)
    money = next(d.value for d in at.dataframe if "" in d.value.columns and "review cost" in set(d.value[""]))
    net = next(m.value for m in at.metric if m.label == "net benefit")
    rows = money.set_index("")
    assert rows["candidate"]["net benefit"] == net, (money, net)  # the Money table says what the tile says
    assert " … " in rows["baseline"]["net benefit"] and " … " in rows["baseline"]["fraud money stopped"], money
    at = hidden_console("compare_page")
    table = at.dataframe[0].value
    assert " … " in table[table["metric"] == "recall"].iloc[0]["delta"]
    assert any("production blocked have no label" in c.value for c in at.caption)


def test_label_maturity_curve_by_event_age(hidden_ws):
    import duckdb

    from riskconsole.maturity import label_age_curve, mature_age

    with duckdb.connect(str(hidden_ws.db_path), read_only=True) as con:
        curve = label_age_curve(con, hidden_ws.dataset())
        total = con.execute("SELECT count(*) FROM frame").fetchall()[0][0]
    assert sum(r["events"] for r in curve) == total
    assert all(0 <= r["labelled_within"] <= 1 for r in curve if r["labelled_within"] is not None)
    assert curve[0]["labelled_within"] <= curve[-1]["labelled_within"]  # labels arrive late
    assert 0 < mature_age(curve) <= curve[-1]["age_days"]


def test_the_demo_records_what_production_did(tmp_path):
    import pandas as pd

    from riskconsole.demo import EXPLORE, generate_events

    generate_events(tmp_path / "events.parquet", 20_000, streams=False)
    events = pd.read_parquet(tmp_path / "events.parquet")
    assert set(events["prod_action"]) == {"allow", "review", "block"}
    blocked, explored = events["prod_action"] == "block", events["explore"] == 1
    assert events.loc[blocked & ~explored, "is_fraud"].isna().all()  # a blocked order never ships
    assert explored.sum() > 0 and (explored <= blocked).all()
    assert (events.loc[blocked, "propensity"] == EXPLORE).all() and events.loc[~blocked, "propensity"].isna().all()
    fraud = events["fraud_scenario"] != "none"
    assert fraud[blocked].mean() > 5 * fraud[~blocked].mean()  # a plausible production policy


# ------------------------------------------------------------------ the console's warm path


WALK = {"name": "walk", "params": {"cut": 150.0, "burst": 2},
        "rules": [{"name": "trusted", "when": "merchant_id IN (100) AND amount < 30", "action": "allow"},
                  {"name": "big", "when": "amount > $cut", "action": "block"},
                  {"name": "burst", "when": "user_orders_1h >= $burst", "action": "review"},
                  {"name": "shared", "when": "device_users_1d >= 3 AND channel = 'web'", "action": "block"}]}


@pytest.mark.parametrize("window", ["all", "part"])
def test_console_equals_backtest_with_outcome_roles(tmp_path, window):
    """Slider moves, action flips, rules off and a population: the console's report (outcome blocks from cached
    rows) is the backtest's (outcome blocks from a second SQL pass), number for number, warnings too."""
    from riskconsole.backtest import make_window
    from riskconsole.ingest import load
    from riskconsole.session import Session
    from tests.conftest import assert_same

    ws = write_workspace(tmp_path / "ws", _events(), _dataset(**ROLES), {"walk": WALK})
    load(ws)
    path = ws.strategies_dir / "walk.yaml"
    win = make_window() if window == "all" else make_window("2026-03-02", "2026-03-05", "2026-03-05")
    rng = np.random.default_rng(3)
    body = yaml.safe_load(yaml.safe_dump(WALK))
    with Session(ws) as console:
        for step in range(24):
            overrides = {"cut": float(rng.choice([0.0, 60.0, 120.5, 150.0, 300.0, 1e9])),
                         "burst": int(rng.integers(1, 4))}
            if step % 4 == 1:
                rule = body["rules"][int(rng.integers(0, 4))]
                rule["action"] = str(rng.choice(["allow", "review", "block"]))
            if step % 4 == 2:
                body["rules"][int(rng.integers(0, 4))]["enabled"] = bool(rng.random() < 0.5)
            if step == 12:
                body["population"] = "channel <> 'live'"
            path.write_text(yaml.safe_dump(body, sort_keys=False))
            got = console.interactive(path, win, overrides)
            for evaluator in list(console._evaluators.values()):
                evaluator.wait()
            with Session(ws) as cli:
                want = cli.backtest(path, win, overrides).report
            assert "bounds" in want["overall"] and "observability" in want["overall"]
            assert_same(got, want, rel=1e-9)
        evaluator = next(iter(console._evaluators.values()))
        assert evaluator._companions["outcomes"]._cache, "outcome groups came from the warm cache"


def test_warm_outcome_groups_equal_the_sql_pass(hidden_ws):
    """The groups themselves (not only the metrics): the same events per (day, label, class, rule mask)."""
    from riskconsole.backtest import make_window
    from riskconsole.outcome_cells import warm_outcomes
    from riskconsole.outcomes import run_outcomes
    from riskconsole.session import Session

    path = hidden_ws.root / "strategies/lenient.yaml"
    with Session(hidden_ws) as session:
        window = make_window()
        compiled = session.compile(path)
        warm = warm_outcomes(session._evaluator(compiled, window), compiled)
        with session.cursor() as cur:
            cold = run_outcomes(cur, compiled, session.frame, session.dataset, window)

    def table(o) -> dict:
        out: dict = {}
        for i in range(len(o.count)):
            key = (int(o.day[i]), int(o.label[i]), int(o.cls[i]), tuple(bool(b) for b in o.hits[i]))
            sums = np.array([o.count[i], o.amount[i], o.amount_pos[i], o.weight[i], o.weighted_amount[i]])
            out[key] = out.get(key, 0) + sums
        return {k: v for k, v in out.items() if v[0] > 0}

    a, b = table(warm), table(cold)
    assert a.keys() == b.keys() and len(a) > 4
    assert {c for _, _, c, _ in a} == {LET_THROUGH, PROD_BLOCKED, EXPLORED}
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-9, atol=1e-6)


def test_tune_page_shows_the_backtest_pages_ranges_with_the_reason(tmp_path, monkeypatch):
    """Where only a range is known the Tune page shows it, with the one-line reason, as the Backtest page does."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from riskconsole.glossary import metric
    from riskconsole.ingest import load
    from riskconsole.session import Session
    from riskconsole.ui import common

    ws = write_workspace(tmp_path / "ws", _events(), _dataset(**ROLES), {"candidate": {**WALK, "name": "candidate"}})
    load(ws)
    monkeypatch.setenv("RISKCONSOLE_WORKSPACE", str(ws.root))
    common.release_connections()

    def tiles(page: str) -> tuple[dict, list[str]]:
        at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=60)
        at.switch_page(f"riskconsole/ui/{page}.py")
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return {m.label: m.value for m in at.metric}, [c.value for c in at.caption]

    tune, tune_captions = tiles("tune_page")
    backtest, _ = tiles("backtest_page")
    with Session(ws) as session:
        report = session.backtest(ws.strategies_dir / "candidate.yaml", session.window()).report
    for key in ("precision", "recall", "net_benefit"):
        m = metric(key)
        kind = common.TILE_FORMAT.get(m.kind, m.kind)
        low, high = sorted(report["overall"]["bounds"][key])
        assert low < high
        want = common.range_text([high, low], kind)
        assert tune[m.title] == backtest[m.title] == want, (key, tune, want)
    hidden = report["overall"]["observability"]["unobservable"]
    assert any(f"{hidden:,} events production blocked have no label" in c for c in tune_captions), tune_captions


def test_a_range_in_a_tile_reads_low_to_high_and_fits():
    """A tile's range, low to high, short enough for a quarter of the page (money in the unit of its larger end)."""
    from riskconsole.ui import common

    assert common.range_text([0.589, 0.399], "pct") == "39.9–58.9%"
    assert common.range_text([11_234, 6_804], "compact") == "6.8–11.2k"
    assert common.range_text([107_000, 41_000], "compact") == "41–107k"
    assert common.range_text([3_400, -1_200], "compact") == "-1.2–3.4k"
    assert common.range_text([2_500_000, 900_000], "compact") == "0.9–2.5M"
    assert common.range_text([640, 120], "compact") == "120 – 640"
    pairs = ([9_999, 1_001], [999_999, 10_000], [-98_765, 54_321])
    assert all(len(common.range_text(p, "compact")) <= 12 for p in pairs)


def test_more_conditions_than_pattern_bits_and_a_failed_toggle(tmp_path, monkeypatch):
    """Past 32 distinct conditions the warm path groups the rules' rows at once (np.unique) instead of toggling
    pattern bits; and a query failing halfway through a move leaves no half-toggled groups: the next answers are
    the backtest's again."""
    from riskconsole.backtest import make_window
    from riskconsole.ingest import load
    from riskconsole.outcome_cells import SLOTS, OutcomeCells
    from riskconsole.session import Session
    from tests.conftest import assert_same

    many = {"name": "many", "params": {"cut": 150.0},
            "rules": [{"name": f"r{i}", "when": f"amount > {10 * i} AND user_orders_1h >= {i % 3}",
                       "action": ("block", "review", "allow")[i % 3]} for i in range(SLOTS + 2)]
            + [{"name": "big", "when": "amount > $cut", "action": "block"}]}
    ws = write_workspace(tmp_path / "ws", _events(), _dataset(**ROLES), {"walk": WALK, "many": many})
    load(ws)
    window = make_window()
    grouped = []
    original = OutcomeCells._group
    monkeypatch.setattr(OutcomeCells, "_group", lambda self, columns: grouped.append(1) or original(self, columns))
    with Session(ws) as console, Session(ws) as cli:
        path = ws.strategies_dir / "many.yaml"
        assert_same(console.interactive(path, window), cli.backtest(path, window).report)
        assert grouped
        walk = ws.strategies_dir / "walk.yaml"
        assert_same(console.interactive(walk, window), cli.backtest(walk, window).report)
        toggled = {"calls": 0}
        toggle = OutcomeCells._toggle

        def flaky(self, rows, bit):  # the second toggle of the move fails, after the first was applied
            toggled["calls"] += 1
            if toggled["calls"] == 2:
                raise RuntimeError("the query failed")
            return toggle(self, rows, bit)

        monkeypatch.setattr(OutcomeCells, "_toggle", flaky)
        body = yaml.safe_load(walk.read_text())
        body["rules"][0]["when"] = "merchant_id IN (101) AND amount < 40"
        body["rules"][3]["when"] = "device_users_1d >= 2"
        walk.write_text(yaml.safe_dump(body, sort_keys=False))
        with pytest.raises(RuntimeError, match="the query failed"):
            console.interactive(walk, window, {"cut": 90.0})
        for cut in (90.0, 150.0, 20.0):
            got = console.interactive(walk, window, {"cut": cut})
            assert_same(got, cli.backtest(walk, window, {"cut": cut}).report)


@pytest.mark.parametrize("seed", range(6))
def test_estimate_strata_equal_every_groups_parts_summed_per_day(seed):
    """`_strata_days` sums groups per (day, decision, label, class) and multiplies by unit coefficients; here every
    group's parts are summed per day one column at a time, as the formulas read (negative amounts included)."""
    from riskconsole.outcomes import ESTIMATE_PARTS, _strata_days

    h = simulate(seed, days=7, per_day=300, explore=0.1, negative_amounts=seed % 2 == 1)
    o = h.outcomes
    for rules in (CANDIDATE, LENIENT):
        action = decide(o.hits, rules)
        found, names = _strata_days(o, action, BUSINESS)
        assert names == list(ESTIMATE_PARTS)
        through, explored = o.cls == LET_THROUGH, o.cls == EXPLORED
        columns = [parts(action, o.label, o.count * through, o.amount * through, BUSINESS.review_catch_rate)[k]
                   for k in names]
        for cell in (action != 0, action == 0):
            weighted = parts(action, o.label, o.weight * (explored & cell), o.weighted_amount * (explored & cell),
                             BUSINESS.review_catch_rate)
            columns += [weighted[k] for k in names]
        columns += [o.count * ((o.cls != LET_THROUGH) & cell) for cell in (action != 0, action == 0)]
        columns += [o.weight * (explored & cell) for cell in (action != 0, action == 0)]
        want = np.stack([np.bincount(o.day, weights=c, minlength=len(o.days)) for c in columns], axis=1)
        assert found.shape == want.shape
        np.testing.assert_allclose(found, want, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("kind, values", [
    ("TINYINT", ["0", "1", "2", "-1", "NULL"]), ("BIGINT", ["1", "0", "10", "NULL"]), ("UBIGINT", ["1", "0", "NULL"]),
    ("BOOLEAN", ["true", "false", "NULL"]), ("VARCHAR", ["'1'", "' TRUE '", "'yes'", "'0'", "NULL"]),
    ("DOUBLE", ["1.0", "1", "0.5", "NULL"])])
def test_an_explore_column_typed_as_a_number_or_boolean_gives_the_classes_of_its_text(kind, values):
    """`observability_class` with the frame's types compares an integer or boolean `explore` as it is (cheaper)
    and must say exactly what the text rule says ('1' or 'true', any case, spaces around) for every value."""
    from types import SimpleNamespace

    import duckdb

    from riskconsole.outcomes import observability_class
    from riskconsole.sqlbuild import render

    dataset = SimpleNamespace(columns=SimpleNamespace(explore="explore", prod_action="prod", propensity="p"))
    rows = ", ".join(f"(CAST({v} AS {kind}), 'block', 0.5)" for v in values)
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t AS SELECT * FROM (VALUES {rows}) AS v(explore, prod, p)")
    answers = []
    for types in (None, {"explore": kind, "prod": "VARCHAR", "p": "DOUBLE"}):
        cls, inverse = observability_class(dataset, types)
        answers.append(con.execute(f"SELECT {render(cls)}, {render(inverse)} FROM t ORDER BY rowid").fetchall())
    assert answers[0] == answers[1] and {c for c, _ in answers[0]} >= {1}


def test_the_interval_percentile_is_numpys_to_the_bit_without_importing_numpy_ma():
    """`metrics.percentile` gives np.percentile's very floats (ties, signed zeros, one value, both ends) and does not
    import numpy.ma, which np.percentile's np.unique does (~0.03 CPU-s of a CLI backtest, issue 14)."""
    import subprocess
    import sys

    from riskconsole.metrics import percentile
    from riskconsole.workspace import REPO_ROOT

    rng = np.random.default_rng(3)
    for trial in range(400):
        n, m = int(rng.integers(1, 1200)), int(rng.integers(1, 5))
        values = [rng.normal(size=(m, n)) * 10.0 ** rng.integers(-3, 6), np.round(rng.normal(size=(m, n)) * 3),
                  rng.choice([0.0, -0.0, 1.0, -1.0, 2.5], size=(m, n))][trial % 3]
        for q in ([2.5, 97.5], [0, 100], [50], [33.3, 66.6, 10]):
            for ours, theirs in ((percentile(values, q, axis=1), np.percentile(values, q, axis=1)),
                                 (percentile(values[0], q), np.percentile(values[0], q))):
                assert ours.shape == theirs.shape and ours.tobytes() == theirs.tobytes(), (n, q)
    probe = ("import sys, numpy as np\nfrom riskconsole.metrics import percentile\n"
             "percentile(np.arange(1000.0).reshape(2, 500), [2.5, 97.5], axis=1)\nprint('numpy.ma' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert done.stdout.strip() == "False"


def test_an_outcome_column_named_with_braces_gets_its_error_not_a_crash(tmp_path):
    """The message of a bad prod_action value is a template (`{v}`, `{fix}`) that held the column's name: a column
    named 'decision {prod}' (a CSV header may say anything) failed with KeyError: 'prod' instead of the error."""
    from riskconsole.sources import check_dataset

    events = _events().rename(columns={"prod_action": "decision {prod}"})
    events["decision {prod}"] = events["decision {prod}"].map({"allow": "approve", "block": "block"})
    ws = write_workspace(tmp_path / "ws", events, _dataset(prod_action="decision {prod}"), STRATEGIES)
    with pytest.raises(RiskConsoleError, match=r"columns\.prod_action: column 'decision \{prod\}' holds 'approve' "
                                               r"\(\d+ rows\); .* \(e.g. prod_action_values: \{approve: allow\}\)$"):
        check_dataset(ws)


def test_long_bad_decisions_are_shown_cut_and_said_so(tmp_path):
    """Values longer than 40 characters were cut without a sign: two values sharing their first 40 characters read
    as the same value named twice, each with its own rows."""
    from riskconsole.sources import check_dataset

    events = _events()
    long = "declined by the fraud engine after manual checks, code "
    events["prod_action"] = [long + ("A" if i % 2 else "B") for i in range(len(events))]
    ws = write_workspace(tmp_path / "ws", events, _dataset(**ROLES), STRATEGIES)
    with pytest.raises(RiskConsoleError) as err:
        check_dataset(ws)
    cut = f"'{long[:40]}…'"
    assert f"holds {cut} (300 rows), {cut} (300 rows); " in str(err.value)

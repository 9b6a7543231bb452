"""`riskconsole monitor`: bands, alerts, attribution, drift — on simulated data, the demo, and bad input."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import numpy as np
import pytest

from riskconsole.backtest import Groups, Window
from riskconsole.cli import main
from riskconsole.config import Business
from riskconsole.drift import EPS, js_distance, psi
from riskconsole.errors import RiskConsoleError
from riskconsole.metrics import RuleSet, decide
from riskconsole.contributions import attribute, decompose
from riskconsole.monitor import Periods, daily_kpis, parse_periods
from riskconsole.monitor_amounts import AmountPool, amount_pool
from riskconsole.session import Session

BUSINESS = Business(review_cost=2.0, review_capacity=10_000, review_catch_rate=0.9, good_block_cost=0.3)
RULES = RuleSet(["velocity", "big_ticket", "vip"], ["block", "review", "allow"], [True, True, True])
BURSTY = RuleSet([*RULES.names, "burst"], [*RULES.actions, "review"], [True] * 4)


def simulated_groups(days: int, seed: int, lift_from: int | None = None, bursts: bool = False) -> Groups:
    """Events aggregated by (day, label, rule mask): weekly seasonality, nothing changes (unless `lift_from`).

    With `bursts`, as on the demo: the volume also varies from day to day beyond Poisson noise, labels arrive
    over 3 weeks (the last days are immature), and on a fifth of the days a burst of look-alike good orders (a
    viral video's new buyers) trips a fourth rule, `burst` (review): routine, so not a change."""
    rng = np.random.default_rng(seed)
    first = date(2026, 1, 5)
    rows = {"day": [], "label": [], "hits": [], "count": [], "amount": []}
    cells = [(y, a, b, c) for y in (0, 1) for a in (0, 1) for b in (0, 1) for c in (0, 1)]
    for d in range(days):
        weekday = (first + timedelta(days=d)).weekday()
        n = rng.poisson(3000 * (1.3 if weekday >= 5 else 1.0) * (rng.lognormal(0, 0.08) if bursts else 1.0))
        fraud = 0.02 * (3 if lift_from is not None and d >= lift_from else 1)
        p = []
        for y, a, b, c in cells:
            py = fraud if y else 1 - fraud
            pa = (0.5 if y else 0.01) if a else 1 - (0.5 if y else 0.01)
            pb = (0.3 if y else 0.03) if b else 1 - (0.3 if y else 0.03)
            pc = 0.05 if c else 0.95
            p.append(py * pa * pb * pc)
        counts = rng.multinomial(n, np.array(p) / sum(p))
        known = min(1.0, (days - d) / 21) if bursts else 1.0
        burst = int(rng.lognormal(np.log(60), 0.8)) if bursts and rng.random() < 0.2 else 0
        for (y, a, b, c), k in zip(cells, counts):
            extra = burst if (y, a, b, c) == (0, 0, 0, 0) else 0
            unknown = rng.binomial(k, 1 - known)
            for label, m, hit in ((y, k - unknown, 0), (-1, unknown, 0), (0, extra, 1)):
                if m:
                    rows["day"].append(d), rows["label"].append(label)
                    rows["hits"].append([a, b, c, hit] if bursts else [a, b, c])
                    rows["count"].append(m), rows["amount"].append(rng.gamma(2.0 * m, 40.0))
    return Groups(np.array(rows["day"]), np.array(rows["label"], dtype=np.int8), np.array(rows["hits"], dtype=bool),
                  np.array(rows["count"]), np.array(rows["amount"]), [first + timedelta(days=i) for i in range(days)])


def simulated_amounts(g: Groups, action: np.ndarray, ref_days: int = 28, seed: int = 0,
                      business: Business = BUSINESS) -> AmountPool | None:
    """The pool of the reference's amounts as `simulated_groups` makes them: each event's amount is Gamma(2, 40) (a
    group of m events sums to Gamma(2m, 40)), drawn anew per event."""
    rng = np.random.default_rng(seed)
    ref = g.day < ref_days
    n = g.count[ref].astype(np.int64)
    return amount_pool(np.repeat(g.label[ref], n), np.repeat(action[ref], n), np.ones(n.sum()),
                       rng.gamma(2.0, 40.0, n.sum()), business.review_catch_rate)


def _periods(first: date, ref_days: int, days: int) -> Periods:
    start = datetime.combine(first, datetime.min.time())
    ref = Window(start, start + timedelta(days=ref_days))
    win = Window(ref.end, start + timedelta(days=days), start + timedelta(days=days))
    return Periods(win, ref)


@pytest.mark.parametrize("bursts", [False, True])
def test_no_change_gives_at_most_one_false_alert_in_a_hundred_metric_days(bursts):
    rules = BURSTY if bursts else RULES
    alerts = cells = 0
    for seed in range(12):
        g = simulated_groups(28 + 56, seed, bursts=bursts)
        action = decide(g.hits, rules)
        rows, state = daily_kpis(g, action, BUSINESS, _periods(g.days[0], 28, 84), rules, simulated_amounts(g, action))
        for row in rows:
            for key, cell in row.items():
                if key != "day" and key != "label_coverage":
                    cells += 1
                    alerts += cell["alert"]
    assert cells > 5000
    assert alerts / cells <= 0.01, f"{alerts} false alerts in {cells} metric-days"


def test_a_tripled_fraud_rate_is_seen_on_its_first_day():
    g = simulated_groups(28 + 20, 3, lift_from=35)
    action = decide(g.hits, RULES)
    rows, _ = daily_kpis(g, action, BUSINESS, _periods(g.days[0], 28, 48), RULES, simulated_amounts(g, action))
    first = next(r for r in rows if r["day"] == g.days[35].isoformat())
    assert first["blocked"]["alert"] and first["rule_hits:velocity"]["alert"]
    assert not any(r["blocked"]["alert"] for r in rows if r["day"] < g.days[35].isoformat())


def test_contributions_sum_exactly_to_the_change():
    rng = np.random.default_rng(5)
    for metric in ("alert_rate", "precision", "recall", "blocked", "review_cases", "fraud_amount_stopped"):
        ref = {k: rng.integers(0, 500, 6).astype(float) for k in ("population", "flagged", "blocked", "tp", "fp",
                                                                    "fn", "tn", "unlabeled_flagged",
                                                                    "unlabeled_total", "fraud_amount",
                                                                    "caught_amount", "stopped", "good_blocked",
                                                                    "reviews")}
        ref["population"] += 1000
        cur = {k: v * rng.uniform(0.2, 3, 6) for k, v in ref.items()}
        cur["population"][2] = 0  # a segment that vanished
        for k in cur:
            cur[k][2] = 0
        result = attribute(metric, ref, cur, 28, BUSINESS)
        total = float(np.sum(result["mix"] + result["rate"]))
        assert total == pytest.approx(result["change"], rel=1e-12, abs=1e-12), metric


def test_mix_and_rate_effects_by_hand():
    mix, rate = decompose(np.array([0.5, 0.5]), np.array([0.1, 0.2]), np.array([0.2, 0.8]), np.array([0.1, 0.4]))
    assert mix.tolist() == pytest.approx([-0.3 * 0.1, 0.3 * 0.3])
    assert rate.tolist() == pytest.approx([0.0, 0.2 * 0.65])
    new_mix, new_rate = decompose(np.array([0.0]), np.array([np.nan]), np.array([0.25]), np.array([0.4]))
    assert new_mix.tolist() == [0.1] and new_rate.tolist() == [0.0]  # a new segment is pure mix


def test_psi_equals_a_hand_computation():
    ref, cur = np.array([50, 30, 20, 0]), np.array([40, 30, 20, 10])
    hand = (0.4 - 0.5) * np.log(0.4 / 0.5) + 0 + 0 + (0.1 - EPS) * np.log(0.1 / EPS)
    assert psi(ref, cur) == pytest.approx(hand, rel=1e-12)
    assert psi(ref, ref) == 0.0
    assert js_distance(ref, ref) == pytest.approx(0.0, abs=1e-7) and 0 < js_distance(ref, cur) < 1


# ------------------------------------------------------------------ periods and bad input

def test_default_periods_are_the_last_28_days_and_the_28_before():
    p = parse_periods(date(2026, 1, 1), date(2026, 4, 30), None, None, None)
    assert (p.window.start, p.window.end) == (datetime(2026, 4, 3), datetime(2026, 5, 1))
    assert (p.reference.start, p.reference.end) == (datetime(2026, 3, 6), datetime(2026, 4, 3))


@pytest.mark.parametrize("reference, message", [
    ("2026-03-01:2026-03-20", "overlaps the window 2026-03-10..2026-04-30: end the reference before --from"),
    ("2026-05-01:2026-05-20", "comes after the window"),
    ("2026-03-01", "write FIRST:LAST days"),
])
def test_a_bad_reference_is_a_one_line_error_with_the_fix(reference, message):
    with pytest.raises(RiskConsoleError, match=message) as err:
        parse_periods(date(2026, 1, 1), date(2026, 4, 30), "2026-03-10", "2026-04-30", reference)
    assert "\n" not in str(err.value) and "--reference" in str(err.value)


@pytest.mark.parametrize("start, end, reference, message", [
    ("2026-03-10 America/Sao_Paulo", None, None, "--from '2026-03-10 America/Sao_Paulo' is 2026-03-10 03:00:00 UTC, "
     "inside a day: the monitor watches whole UTC days; give a day (e.g. --from 2026-03-10)"),
    ("2026-03-10", "2026-04-30 12:00", None, "--to '2026-04-30 12:00' is 2026-04-30 12:00:00 UTC, inside a day: "
     "the monitor watches whole UTC days; give a day (e.g. --to 2026-04-30)"),
    ("2026-03-10", None, "2026-02-01:2026-03-01T06:00:00+02:00", "--reference '2026-03-01T06:00:00+02:00' is "
     "2026-03-01 04:00:00 UTC, inside a day"),
    ("2026-03-10", "2026-04-29 America/Sao_Paulo", None, "--to '2026-04-29 America/Sao_Paulo' is 2026-04-30 "
     "03:00:00 UTC, inside a day: the monitor watches whole UTC days; give a day (e.g. --to 2026-04-29)"),
])
def test_a_bound_inside_a_day_is_refused_naming_its_utc_time(start, end, reference, message):
    """A --from inside a day made the reference end inside that day too: both counted it whole (the reference
    '2026-10-04..2026-11-01' of a window from '2026-11-01 10:00', 29 days, overlapping the window's first)."""
    with pytest.raises(RiskConsoleError) as err:
        parse_periods(date(2026, 1, 1), date(2026, 4, 30), start, end, reference)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    # a bound that is a UTC midnight, however written, is a day
    p = parse_periods(date(2026, 1, 1), date(2026, 4, 30), "2026-03-10T01:00:00+01:00", "2026-04-30 UTC", None)
    assert (p.window.start, p.window.end, p.reference.end) == (datetime(2026, 3, 10), datetime(2026, 5, 1),
                                                               datetime(2026, 3, 10))


# ------------------------------------------------------------------ the demo

@pytest.fixture(scope="module")
def demo(demo_ws):
    return Session(demo_ws)


def _attack_start(session: Session) -> date:
    with session.cursor() as cur:
        return cur.execute("SELECT CAST(min(ts) AS DATE) FROM frame WHERE fraud_scenario = 'new_attack_midperiod'"
                           ).fetchall()[0][0]


@pytest.fixture(scope="module")
def attack_demo(tmp_path_factory):
    """A 300,000-order demo with its detectors trained: at 40,000 orders the attack's first days hold one order
    each, which no band can tell from noise; at 300,000 they hold 2-5, as a real shop's would be more."""
    import yaml

    from riskconsole.scaffold import build_demo_workspace
    from riskconsole.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("attack"))
    build_demo_workspace(ws, n_events=300_000)
    deployed = yaml.safe_load((ws.strategies_dir / "candidate.yaml").read_text())
    deployed["rules"] = [r for r in deployed["rules"] if "lgbm_orders" not in r["when"]]
    deployed["params"].pop("model_review")
    (ws.strategies_dir / "deployed.yaml").write_text(yaml.safe_dump(deployed, sort_keys=False))
    with Session(ws) as session:
        yield session


def test_the_mid_period_attack_alerts_within_3_days_and_its_segment_is_on_top(attack_demo):
    demo = attack_demo
    start = _attack_start(demo)
    result = demo.monitor(demo.ws.strategies_dir / "deployed.yaml", (start - timedelta(days=7)).isoformat(),
                          (start + timedelta(days=14)).isoformat(), by=["user_country", "payment_method"])
    soon = [a for a in result["alerts"] if start.isoformat() <= a["day"] <= (start + timedelta(days=3)).isoformat()
            and a["metric"] == "rule_hits:bnpl_young_account_big_ticket"]
    assert soon, [(a["day"], a["metric"]) for a in result["alerts"]]
    first = soon[0]
    assert first["top"][0] in ("user_country = MX", "payment_method = bnpl")
    entry = next(e for e in result["attribution"] if (e["day"], e["metric"]) == (first["day"], first["metric"]))
    for by in ("user_country", "payment_method", "rule"):
        total = sum(c["contribution"] for c in entry["contributions"] if c["by"] == by)
        assert total == pytest.approx(entry["change"], abs=1e-5)
    before = [a for a in result["alerts"] if a["day"] < start.isoformat()
              and a["metric"] == "rule_hits:bnpl_young_account_big_ticket"]
    assert not before


def test_under_the_production_strategy_the_attack_alerts_within_3_days_with_its_segment_on_top(attack_demo):
    """`baseline`, the strategy in production, has no rule for the attack; but the ring opens with a probe from
    abroad (demo.py, `_new_attack`), and production's cross-border review sees it on the attack's first day.

    Checked offline on 300,000-order demos at seeds 7, 8 and 9: the alert is on the first day each time."""
    from riskconsole.sqlbuild import render

    demo = attack_demo
    start = _attack_start(demo)
    path = demo.ws.strategies_dir / "baseline.yaml"
    result = demo.monitor(path, (start - timedelta(days=7)).isoformat(), (start + timedelta(days=14)).isoformat(),
                          by=["user_country", "payment_method"])
    metric = "rule_hits:cross_border_high_value"
    soon = [a for a in result["alerts"] if a["metric"] == metric
            and start.isoformat() <= a["day"] <= (start + timedelta(days=3)).isoformat()]
    assert soon, [(a["day"], a["metric"]) for a in result["alerts"]]
    first = soon[0]
    assert first["top"][0] in ("user_country = MX", "payment_method = bnpl"), first["top"]
    assert not [a for a in result["alerts"] if a["metric"] == metric and a["day"] < start.isoformat()]
    rule = next(r for r in demo.compile(path).rules if r.name == metric.split(":")[1])
    with demo.cursor() as cur:  # a second way: without the attack's own hits that day, the rule is inside its band
        attack = cur.execute(f"SELECT count(*) FROM frame WHERE fraud_scenario = 'new_attack_midperiod' AND "
                             f"CAST(ts AS DATE) = CAST(? AS DATE) AND {render(rule.condition)}",
                             [first["day"]]).fetchall()[0][0]
    assert attack > 0 and first["value"] - attack <= first["expected"][1], (attack, first)


def test_under_the_production_strategy_the_attack_surfaces_as_the_top_cluster(attack_demo):
    """After its opening probe no rule of `baseline` fires on the attack, so its KPIs are quiet again: attack
    discovery is what sees it go on.

    Measured before the probe was added (300,000 orders; 1,000,000 alike): the attack's group tops the list from
    about 15 days after its first order, not within 3, because its first days hold a few orders among a pool where
    the tightest group it forms usually holds ~0.6 a day at 1M, while ~80,000 (group, onset) tests need a tail of
    ~1e-7 for a 1% chance of any false group per run. What this test holds is that it surfaces at all, on top,
    and that the group is the attack.
    """
    demo = attack_demo
    start = _attack_start(demo)
    result = demo.monitor(demo.ws.strategies_dir / "baseline.yaml", (start - timedelta(days=7)).isoformat(),
                          (start + timedelta(days=21)).isoformat())
    assert result["clusters"], "no cluster"
    top = result["clusters"][0]
    assert "payment_method = bnpl" in top["group"], top["group"]
    assert start.isoformat() <= top["since"] <= (start + timedelta(days=21)).isoformat()
    with demo.cursor() as cur:  # a second way: what the drafted `when` selects in the window is mostly the attack
        rows = dict(cur.execute(
            f"SELECT fraud_scenario = 'new_attack_midperiod', count(*) FROM frame WHERE ts >= CAST(? AS DATE) "
            f"AND ts < CAST(? AS DATE) + 1 AND {top['when']} GROUP BY 1",
            [top["since"], (start + timedelta(days=21)).isoformat()]).fetchall())
    assert rows.get(True, 0) > rows.get(False, 0), rows


@pytest.mark.parametrize("strategy, rule", [("deployed", "bnpl_young_account_big_ticket"),
                                            ("baseline", "cross_border_high_value")])
def test_the_attack_is_one_incident_from_its_first_days_with_its_segment_on_top(attack_demo, strategy, rule):
    """Every alert of the attack's rule from its first day on is in one incident, which starts within 3 days of
    the first fraud event, names the rule and has the attack's segment on top."""
    demo = attack_demo
    start = _attack_start(demo)
    result = demo.monitor(demo.ws.strategies_dir / f"{strategy}.yaml", (start - timedelta(days=7)).isoformat(),
                          (start + timedelta(days=14)).isoformat(), by=["user_country", "payment_method"])
    attack = {(a["day"], a["metric"]) for a in result["alerts"]
              if a["metric"] == f"rule_hits:{rule}" and a["day"] >= start.isoformat()}
    holding = [i for i in result["incidents"] if attack & {(m["day"], m["metric"]) for m in i["members"]}]
    assert attack and len(holding) == 1, [(i["first_day"], i["last_day"], i["rules"]) for i in holding]
    incident = holding[0]
    assert attack <= {(m["day"], m["metric"]) for m in incident["members"]}
    assert start.isoformat() <= incident["first_day"] <= (start + timedelta(days=3)).isoformat(), incident["summary"]
    assert rule in incident["rules"] and incident["top"][0] in ("user_country = MX", "payment_method = bnpl"), \
        incident["summary"]
    assert incident["ongoing"] or strategy == "baseline"  # the ring keeps ordering: the rule for it still sees it


def test_monitor_json_keys_follow_the_contract(demo, tmp_path, capsys):
    assert main(["monitor", str(demo.ws.strategies_dir / "baseline.yaml"), "--workspace", str(demo.ws.root), "--by", "channel",
                 "--out", str(tmp_path), "--format", "json,csv,html,md"]) == 0
    result = json.loads((tmp_path / "monitor.json").read_text())
    assert {"daily", "drift", "attribution", "alerts"} <= set(result)
    day = result["daily"][0]
    for key in ("alert_rate", "blocked", "review_cases", "review_load", "fraud_amount_stopped", "precision",
                "recall", "label_coverage"):
        assert set(day[key]) >= {"value", "expected", "alert"} and len(day[key]["expected"]) == 2
    for alert in result["alerts"]:
        assert set(alert) == {"day", "metric", "value", "expected", "top"}
    for entry in result["attribution"]:
        assert {"day", "metric", "reference", "value", "change", "contributions"} <= set(entry)
        assert all({"by", "segment", "mix", "rate", "contribution"} <= set(c) for c in entry["contributions"])
    members = [(m["day"], m["metric"]) for i in result["incidents"] for m in i["members"]]
    assert sorted(members) == sorted((a["day"], a["metric"]) for a in result["alerts"])  # each alert in one incident
    for incident in result["incidents"]:
        assert {"id", "first_day", "last_day", "days", "alerts", "rules", "top", "metrics", "lead", "size",
                "members", "summary"} <= set(incident)
    out = capsys.readouterr().out  # the terminal shows the incidents first, each by its summary, then the alerts
    assert f": {len(result['incidents'])} incidents, {len(result['alerts'])} alerts" in out
    assert [line for line in out.splitlines() if line.startswith("  incident ")][:10] == [
        f"  incident {i['id']}: {i['summary']}" for i in result["incidents"][:10]]
    psis = [d["psi"] for d in result["drift"]]
    assert psis == sorted(psis, reverse=True) and any(d["kind"] == "score" for d in result["drift"])
    assert result["drift"][0]["bins"]
    for name in ("monitor_daily.csv", "alerts.csv", "incidents.csv", "attribution.csv", "drift.csv", "monitor.html", "monitor.md"):
        assert (tmp_path / name).stat().st_size > 0


@pytest.mark.parametrize("args, message", [
    (["--by", "user_contry"], "--by user_contry: no column 'user_contry' to segment by (did you mean 'user_country'?)"),
    (["--reference", "2026-04-01:2026-04-10", "--from", "2026-04-05"], "overlaps the window"),
    (["--reference", "2025-01-01:2025-01-28", "--from", "2026-04-01"], "holds no events"),
])
def test_bad_cli_input_is_one_line_with_the_fix(demo, capsys, args, message):
    assert main(["monitor", str(demo.ws.strategies_dir / "baseline.yaml"), "--workspace", str(demo.ws.root), *args]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_strategy_without_rules_is_refused(demo, capsys, tmp_path):
    path = demo.ws.root / "strategies" / "empty_monitor.yaml"
    path.write_text("name: empty\nrules:\n  - {name: vip, when: \"amount < 1\", action: allow}\n")
    try:
        assert main(["monitor", str(path), "--workspace", str(demo.ws.root)]) == 1
    finally:
        path.unlink()
    err = capsys.readouterr().err
    assert "no enabled block or review rule" in err and "action: block" in err and err.count("\n") == 1


def _monitor_page(demo, monkeypatch):
    """The console's Monitor page on the demo workspace, run once (AppTest)."""
    from conftest import console_page

    at = console_page(monkeypatch, demo.ws.root, "monitor_page", timeout=120)
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_monitor_page_shows_the_core_alerts(demo, monkeypatch):
    at = _monitor_page(demo, monkeypatch)
    lo, hi = demo.day_range()
    start = max(lo + timedelta(days=28), hi - timedelta(days=27))
    core = demo.monitor(demo.ws.strategies_dir / "baseline.yaml", start.isoformat(), hi.isoformat(),
                        by=["user_country", "payment_method"])
    assert next(m.value for m in at.metric if m.label == "alerts") == f"{len(core['alerts']):,}"
    charts = [e for e in at.main if getattr(e, "type", None) == "vega_lite_chart"]
    assert charts
    from riskconsole.share import alert_rows

    assert core["alerts"]  # the demo's window has some: the table below is checked
    table = next(d.value for d in at.dataframe if "expected" in d.value.columns)  # as monitor.md has it, not raw
    assert table[["day", "metric", "value", "expected"]].values.tolist() == [r[:4] for r in alert_rows(core)]


def test_js_distance_matches_scipy():
    from scipy.spatial.distance import jensenshannon

    a, b = np.array([5, 1, 0, 9]), np.array([2, 2, 3, 1])
    assert js_distance(a, b) == pytest.approx(float(jensenshannon(a / a.sum(), b / b.sum(), base=2)), rel=1e-9)


def test_label_free_estimate_and_clusters_are_in_the_result(demo):
    lo, hi = demo.day_range()
    result = demo.monitor(demo.ws.strategies_dir / "baseline.yaml", (hi - timedelta(days=27)).isoformat(),
                          hi.isoformat())
    estimate = result["estimate"]
    assert estimate["detector"] == "lgbm_orders" and len(estimate["calibration"]) == 20
    with demo.cursor() as cur:  # a second way: labelled reference events per score bin, straight from SQL
        ref_from, ref_to = result["reference"]["from"], result["reference"]["to"]
        cut = (hi + timedelta(days=1)).isoformat()
        by_bin = dict(cur.execute(
            "SELECT least(greatest(CAST(floor(coalesce(s.lgbm_orders, 0) * 20) AS INTEGER), 0), 19), count(*) "
            "FROM frame f JOIN scores_lgbm_orders s USING (_pos) WHERE f.ts >= CAST(? AS DATE) "
            "AND f.ts < CAST(? AS DATE) + 1 AND f.is_fraud IS NOT NULL AND f.label_ts < CAST(? AS TIMESTAMP) "
            "GROUP BY 1", [ref_from, ref_to, cut]).fetchall())
    assert [c["labelled"] for c in estimate["calibration"]] == [by_bin.get(i, 0) for i in range(20)]
    for day in estimate["daily"]:
        assert 0 <= day["estimated_precision"] <= 1 and day["labelled_flagged"] <= day["flagged"]
        assert day["disagree"] is False or day["labelled_flagged"] >= 10
    for cluster in result["clusters"]:
        assert cluster["events"] >= 1 and cluster["lift"] > 0 and " AND " in cluster["when"] or cluster["when"]
        with demo.cursor() as cur:  # the drafted `when` is a valid expression over the frame
            cur.execute(f"SELECT count(*) FROM frame WHERE {cluster['when']}").fetchall()


def test_clusters_never_name_what_production_did(demo):
    """prod_action, explore and propensity are readable columns of the demo, but a cluster naming them would draft
    a rule that cannot run once it replaces production."""
    from riskconsole.discovery import cluster_columns

    roles = demo.dataset.columns
    outcome = {roles.prod_action, roles.explore, roles.propensity}
    assert None not in outcome and outcome <= set(demo.frame.visible)
    names = cluster_columns(demo.frame, demo.dataset, list(demo.frame.columns))
    assert names and not outcome & set(names), names


def test_every_section_of_the_monitor_page_opens(demo, monkeypatch):
    """The sections below the KPIs are tabs that draw only when opened (the page's browser cost is its charts)."""
    at = _monitor_page(demo, monkeypatch)
    first = len([e for e in at.main if getattr(e, "type", None) == "vega_lite_chart"])
    sections = [tab.label for tab in at.tabs]
    assert sections[:2] == ["Alerts and why", "Rule hits"] and len(sections) == 5
    for section in sections:
        at.session_state["monitor_section"] = section
        at.run()
        assert not at.exception, (section, [e.value for e in at.exception])
        charts = [e for e in at.main if getattr(e, "type", None) == "vega_lite_chart"]
        if section == "Rule hits":
            assert len(charts) == 2  # the KPIs and every rule's hits
    assert first <= 2  # the KPIs, and the waterfall when something alerts


def test_draft_a_rule_opens_the_strategy_editor_with_the_when(demo, monkeypatch):
    at = _monitor_page(demo, monkeypatch)
    at.session_state["monitor_section"] = "Possible attacks"
    at.run()
    buttons = [b for b in at.button if b.key and b.key.startswith("monitor_draft_")]
    if not buttons:
        pytest.skip("no cluster in this small demo's default window")
    buttons[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    draft = at.session_state["drafts"]["baseline"]
    assert draft["dirty"] and "draft_cluster_1" in draft["text"]


def test_decile_buckets_equal_a_searchsorted():
    import duckdb

    from riskconsole.drift import _bucket
    from riskconsole.sqlbuild import lit, render

    cuts = [0.0, 1.0, 2.5, 7.0, 9.0]
    with duckdb.connect() as con:
        for value in (-1, 0, 0.5, 1, 2, 2.5, 3, 7, 8, 9, 10):
            got = con.execute("SELECT " + render(_bucket(lit(float(value)), cuts, 0, len(cuts)))).fetchall()[0][0]
            assert got == 1 + np.searchsorted(cuts, value, side="right"), value


def test_top_values_of_every_text_column_in_one_scan_equal_a_count_per_column():
    """`_top_values` (one GROUPING SETS scan) against a Counter per column over the rows the condition keeps: NULL
    is never a value even where it is the most frequent, ties go to the smaller value, a column with more than
    `TOP_VALUES` values keeps the top ones, a boolean reads as true/false, a column NULL on every row has none."""
    from collections import Counter

    import duckdb
    from sqlglot import exp

    from riskconsole.drift import TOP_VALUES, _top_values
    from riskconsole.sqlbuild import fill

    rng = np.random.default_rng(7)
    n = 3000
    rows = {"keep": (rng.random(n) < 0.7).tolist(),
            "city": [None if r < 0.4 else f"c{int(r * 1000) % 14:02d}" for r in rng.random(n)],
            "tier": rng.choice(["gold", "silver", "bronze"], n, p=[0.2, 0.4, 0.4]).tolist(),
            "flag": (rng.random(n) < 0.3).tolist(), "void": [None] * n}
    with duckdb.connect() as con:
        con.execute("CREATE TABLE t (keep BOOLEAN, city VARCHAR, tier VARCHAR, flag BOOLEAN, void VARCHAR)")
        con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", list(zip(*rows.values())))
        texts = ["city", "tier", "flag", "void"]
        got = _top_values(con, "s", exp.select("*").from_("t").subquery("src"), [fill("keep")], texts)
    for i, column in enumerate(texts):
        counts = Counter(("true" if v else "false") if column == "flag" else v
                         for v, k in zip(rows[column], rows["keep"]) if k and v is not None)
        expected = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP_VALUES]
        assert [(v, c) for j, v, c in got if j == i] == expected, column
    assert len([1 for j, _, _ in got if j == 0]) == TOP_VALUES  # 14 cities, the top 9 kept, NULL (40%) not one


@pytest.mark.parametrize("blocks", [1, 2, 9, 5000])
def test_rows_are_put_in_pos_order_as_an_argsort_would(blocks):
    """`_in_order` (slices of consecutive rows where the permutation allows) equals indexing by an argsort: rows in
    interleaved sorted runs of row groups (as DuckDB's threads return them), a shuffle, and no rows."""
    from riskconsole.drift import _in_order

    rng = np.random.default_rng(blocks)
    pos = np.sort(rng.choice(10**7, 40_000, replace=False))
    parts = np.array_split(pos, blocks)
    scanned = np.concatenate([parts[i] for i in rng.permutation(len(parts))])
    values = rng.integers(0, 255, scanned.size).astype(np.int32)
    expected = values[np.argsort(scanned, kind="stable")]
    assert np.array_equal(_in_order(scanned)(values), expected)
    assert np.array_equal(_in_order(scanned)(scanned), pos)
    assert _in_order(np.zeros(0, np.int64))(np.zeros(0, np.int32)).size == 0


# ------------------------------------------------------------------ attack discovery (clusters)

def _coded(days: int, seed: int, attack_from: int | None = None, attack_per_day: float = 0.0):
    """A pool of allowed, high-score events over `days` days with six independent attributes (weekly volume
    seasonality; nothing changes unless `attack_from`: then the rarest values of the first three attributes
    together get `attack_per_day` more events, as a new attack pattern would)."""
    from riskconsole.drift import Binned, Coded

    rng = np.random.default_rng(seed)
    first = date(2026, 1, 5)
    widths = [5, 6, 8, 11, 11, 4]
    shares = [rng.dirichlet(np.ones(w - 1) * 2) for w in widths]
    day, codes = [], [[] for _ in widths]
    for d in range(days):
        n = rng.poisson(400 * (1.3 if (first + timedelta(days=d)).weekday() >= 5 else 1.0))
        k = rng.poisson(attack_per_day) if attack_from is not None and d >= attack_from else 0
        day.append(np.full(n + k, d))
        for i, w in enumerate(widths):
            c = 1 + rng.choice(w - 1, n, p=shares[i])
            if i < 3:  # the attack: the rarest value of the first three attributes, others as usual
                c = np.concatenate([c, np.full(k, 1 + int(np.argmin(shares[i])))])
            else:
                c = np.concatenate([c, 1 + rng.choice(w - 1, k, p=shares[i])])
            codes[i].append(c)
    columns = [f"a{i}" for i in range(len(widths))]
    bins = [Binned(c, None, ["(missing)", *[f"v{j}" for j in range(1, w)]], values=[f"v{j}" for j in range(1, w)])
            for c, w in zip(columns, widths)]
    bins.append(Binned("score", None, ["(missing)", "low", "high"], cuts=[0.5]))
    day = np.concatenate(day)
    coded = Coded([first + timedelta(days=i) for i in range(days)], day, bins,
                  {**{c: np.concatenate(v).astype(np.int32) for c, v in zip(columns, codes)},
                   "score": np.full(day.size, 2, np.int32)}, np.ones(day.size, bool))
    all_days = np.arange(days)
    coded.attack = {c: f"{c} = v{1 + int(np.argmin(shares[i]))}" for i, c in enumerate(columns[:3])}
    return coded, columns, all_days < 28, all_days >= 28


def test_no_change_gives_at_most_one_false_cluster_in_a_hundred_window_days():
    from riskconsole.discovery import clusters

    found = cells = 0
    for seed in range(10):
        coded, columns, in_ref, in_win = _coded(28 + 28, seed)
        found += len(clusters(coded, columns, ["score"], in_ref, in_win))
        cells += int(in_win.sum())
    assert cells >= 280
    assert found / cells <= 0.01, f"{found} false clusters in {cells} window days"


def test_a_new_group_is_found_with_its_onset_and_a_when_that_counts_it():
    from riskconsole.discovery import clusters

    coded, columns, in_ref, in_win = _coded(28 + 20, 1, attack_from=40, attack_per_day=6)
    found = clusters(coded, columns, ["score"], in_ref, in_win)
    assert found, "a group of 6 extra events a day from day 40 is not found"
    top = found[0]
    assert set(coded.attack.values()) <= set(top["values"].values()), top["group"]
    assert coded.days[38] <= date.fromisoformat(top["since"]) <= coded.days[42]
    # the counts a second way: the group's events in the window, from the codes directly
    cells = {c: int(text.split(" = v")[1]) for c, text in top["values"].items()}
    members = np.logical_and.reduce([coded.codes[c] == j for c, j in cells.items()]) & in_win[coded.day]
    assert top["events"] == int(members.sum())
    since = (coded.day >= (date.fromisoformat(top["since"]) - coded.days[0]).days) & members
    assert top["events_since"] == int(since.sum())
    assert sum(d["entity_days"] for d in top["daily"] if d["day"] >= top["since"]) == top["entity_days_since"]


def test_window_days_without_events_in_the_pool_are_no_onset_and_raise_no_warning():
    """The newest window days may hold no allowed high-score event (a quiet weekend, a cut-off feed): the pool's growth
    over them is 0, and a value's own growth there is no number to divide by (it was 0/0, a NaN and a RuntimeWarning)."""
    import warnings

    from riskconsole.discovery import clusters

    coded, columns, in_ref, in_win = _coded(28 + 20, 1, attack_from=40, attack_per_day=6)
    coded.allowed[coded.day >= 46] = False  # the last two window days: nothing in the pool
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = clusters(coded, columns, ["score"], in_ref, in_win)
    assert found and set(coded.attack.values()) <= set(found[0]["values"].values())
    assert coded.days[38] <= date.fromisoformat(found[0]["since"]) <= coded.days[42]

def test_rate_z_is_the_binomial_likelihood_ratio_and_the_tail_is_exact():
    from scipy.stats import binom

    from riskconsole.discovery import binomial_tail, rate_z

    for w, r, exposure in [(30, 40, 0.5), (12, 3, 1.0), (9, 1, 0.75), (60, 100, 0.3), (5, 20, 1.0)]:
        n, p0 = w + r, exposure / (1 + exposure)
        lr = 2 * (binom.logpmf(w, n, w / n) - binom.logpmf(w, n, p0))
        assert float(rate_z(w, r, exposure)) == (pytest.approx(np.sqrt(lr), rel=1e-9) if w > n * p0 else 0.0)
        assert binomial_tail(w, n, p0) == pytest.approx(binom.sf(w - 1, n, p0), rel=1e-9)
    assert binomial_tail(9, 9, 0.75 / 1.75) == pytest.approx((0.75 / 1.75) ** 9, rel=1e-12)


def test_numeric_bins_read_as_ranges_and_select_what_they_say():
    import duckdb

    from riskconsole.drift import Binned, _bucket
    from riskconsole.sqlbuild import lit, render

    cuts = [2.0, 30.0, 365.0]
    b = Binned("account_age_days", None, ["(missing)", "a", "b", "c", "d"], cuts=cuts)
    assert b.condition(1)[0] == "account_age_days < 2"
    assert b.condition(2)[0] == "2 ≤ account_age_days < 30"
    assert b.condition(4)[0] == "account_age_days ≥ 365"
    assert b.condition(0) is None
    with duckdb.connect() as con:
        for value in (0, 1, 2, 29, 30, 364, 365, 1000):
            j = con.execute("SELECT " + render(_bucket(lit(float(value)), cuts, 0, len(cuts)))).fetchall()[0][0]
            holds = [con.execute(f"SELECT {render(b.condition(i)[1])} FROM (SELECT {value} AS account_age_days)"
                                 ).fetchall()[0][0] for i in range(1, 5)]
            assert holds == [i == j for i in range(1, 5)], value


def _outside(values, low, high) -> list[bool]:
    return [bool(v < lo or v > hi) for v, lo, hi in zip(values, low, high)]


def test_a_rate_alert_needs_an_exact_binomial_tail_as_small_as_the_band():
    """A reference precision of 100% (400 of 400) has no normal noise, so the band alone alerted on 14 of 15; the
    exact tail at the padded rate 400.5/401 is 1.9% (scipy), far above the band's 3.2e-5: 14 of 15 is inside the
    acceptance region. 5 of 15 is outside it, and so is 4,950 of 5,000."""
    from scipy.stats import binom, norm

    from riskconsole.monitor import Band, acceptance

    in_ref = np.array([True] * 4 + [False] * 3)
    den = np.array([100, 100, 100, 100, 15, 15, 5000], dtype=float)
    count = np.array([100, 100, 100, 100, 14, 5, 4950], dtype=float)
    ones = np.ones(7)
    low, high = acceptance("precision", Band(ones, ones, ones, 1.0), {"tp": count, "fp": den - count}, in_ref,
                           ~in_ref, np.ones(7, dtype=bool))
    p = 400.5 / 401
    assert binom.cdf(14, 15, p) == pytest.approx(1 - p ** 15) and binom.cdf(14, 15, p) > norm.sf(4)
    assert binom.cdf(5, 15, p) < norm.sf(4) and binom.cdf(4950, 5000, p) < norm.sf(4)
    assert _outside(count / den, low, high)[4:] == [False, True, True]
    assert binom.cdf(12, 15, p) < norm.sf(4) < binom.cdf(13, 15, p) and 12 / 15 < low[4] < 13 / 15
    rate, n = np.full(2, 0.001), np.array([1000.0, 1000.0])
    low, high = acceptance("alert_rate", Band(rate, rate, rate, 0.001), {"flagged": np.array([3.0, 12.0]),
                           "population": n}, np.array([True, False]), np.ones(2, dtype=bool), np.ones(2, dtype=bool))
    assert _outside([3 / 1000, 12 / 1000], low, high) == [binom.sf(2, 1000, 0.001) < norm.sf(4),
                                                          binom.sf(11, 1000, 0.001) < norm.sf(4)] == [False, True]


def test_a_count_alert_needs_an_exact_poisson_tail_as_small_as_the_band():
    """A rule expected 0.5 times a day has a normal band up to 0.5 + 4·√0.5 = 3.3, but 4 hits then have a Poisson
    tail of 1.8e-3 (scipy), far above the band's 3.2e-5: inside the acceptance region, whose top is the last count
    with a tail that large (5); 9 hits are outside. A large expected count is where the normal band and the
    Poisson agree, and the level floors the expected count (a median of 0)."""
    from scipy.stats import norm, poisson

    from riskconsole.monitor import Band, acceptance

    count = np.array([4.0, 9.0, 160.0, 40.0, 4.0])
    expected = np.array([0.5, 0.5, 100.0, 100.0, 0.0])
    spread = 4 * np.sqrt(np.maximum(expected, 0.5))
    low, high = acceptance("rule_hits:burst", Band(expected, expected - spread, expected + spread, 0.5), {},
                           np.zeros(5, dtype=bool), np.ones(5, dtype=bool), np.ones(5, dtype=bool))
    hand = [poisson.sf(3, 0.5), poisson.sf(8, 0.5), poisson.sf(159, 100), poisson.cdf(40, 100), poisson.sf(3, 0.5)]
    assert _outside(count, low, high) == [p < norm.sf(4) for p in hand] == [False, True, True, True, False]
    assert 4 > 0.5 + 4 * 0.5 ** 0.5  # outside the normal band: the exact tail is what holds it back
    assert high[0] == 5 and poisson.sf(5, 0.5) < norm.sf(4) < poisson.sf(4, 0.5)  # 6 is the first count alerting


def panjer_tails(lam: float, values: np.ndarray, weights: np.ndarray, step: float,
                 size: int) -> tuple[np.ndarray, np.ndarray]:
    """(P(S <= s), P(S >= s)) for s = 0, step, …, (size - 1)·step, S a compound Poisson sum of amounts rounded to the
    grid, by Panjer's recursion (f_S(s) = lam/s Σ_j j f_Y(j) f_S(s - j)): no Fourier transform, another grid. The
    upper tail is 1 - P(S < s), exact while the rounding (half a step per amount) is negligible."""
    f_y = np.bincount(np.round(values / step).astype(np.int64), weights=weights, minlength=size)[:size]
    f_y = f_y / weights.sum()
    f_s = np.zeros(size)
    f_s[0] = np.exp(-lam * (1 - f_y[0]))
    jf = np.arange(size) * f_y
    for s in range(1, size):
        f_s[s] = lam / s * (jf[1:s + 1] @ f_s[s - 1::-1])
    cdf = np.cumsum(f_s)
    return cdf, 1 - np.concatenate([[0.0], cdf[:-1]])


def _independent_alert(metric: str, t: dict, i: int, sums: dict, in_ref, mature, amounts=None) -> bool:
    """Whether day i alerts by docs/monitor.md, with scipy's tails: outside the ±4-spread band, as unlikely as it
    under an exact Poisson (counts) or binomial (rates), and the held-back cases."""
    from scipy.stats import binom, norm, poisson

    v, low, high, tail = t["value"][i], t["low"][i], t["high"][i], norm.sf(4)
    if not np.isfinite(v) or metric == "label_coverage" or (metric in ("precision", "recall") and not mature[i]):
        return False
    if metric == "review_load":  # the review count over capacity, with the count's exact tail
        cases, lam = v * BUSINESS.review_capacity, max(t["expected"][i] * BUSINESS.review_capacity, t["level"])
        return bool(v > high and v > 1 and poisson.sf(round(cases) - 1, lam) < tail)
    if metric == "fraud_amount_stopped":  # the compound Poisson tails by Panjer's recursion on a grid of 1
        pool = simulated_amounts(*amounts)
        cdf, sf = panjer_tails(float(t["caught"][i]), pool.values, pool.weights, 1.0, int(v) + 2)
        return bool((v > high and sf[int(round(v))] < tail) or (v < low and mature[i] and cdf[int(round(v))] < tail))
    if metric in ("blocked", "review_cases") or metric.startswith("rule_hits:"):
        lam = max(t["expected"][i], t["level"])
        return bool((v > high and poisson.sf(v - 1, lam) < tail) or (v < low and poisson.cdf(v, lam) < tail))
    num, den = {"alert_rate": ("flagged", ["population"]), "precision": ("tp", ["tp", "fp"]),
                "recall": ("tp", ["tp", "fn"])}[metric]
    n = sum(sums[k] for k in den)
    pad = 0.5 / (n[in_ref].sum() + 1)
    p, x, n = min(max(t["expected"][i], pad), 1 - pad), sums[num][i], n[i]
    return bool((v > high and binom.sf(x - 1, n, p) < tail) or (v < low and binom.cdf(x, n, p) < tail))


@pytest.mark.parametrize("thin, lift_from, seed", [(1.0, 40, 5), (0.1, 40, 6), (0.03, None, 6)])
def test_every_day_outside_the_drawn_band_alerts_and_every_alert_is_outside_it(thin, lift_from, seed):
    """The band monitor.json gives (`expected`) is what every face draws: on simulated data, full volume and a
    tenth and 3% of it (rules expected a few times a day), with late labels, bursts and a tripled fraud rate, a day
    is outside it exactly when it alerts, and it alerts exactly when the rule docs/monitor.md states says so
    (scipy). Each case has days outside the ±4-spread band that do not alert: the band drawn before."""
    rng = np.random.default_rng(seed)
    g = simulated_groups(28 + 28, seed, lift_from=lift_from, bursts=True)
    g = Groups(g.day, g.label, g.hits, rng.binomial(g.count, thin), g.amount * thin, g.days)
    action = decide(g.hits, BURSTY)
    rows, state = daily_kpis(g, action, BUSINESS, _periods(g.days[0], 28, 56), BURSTY, simulated_amounts(g, action))
    coverage = state["table"]["label_coverage"]["value"]
    mature = coverage >= 0.8 * np.nanmedian(coverage[state["in_ref"]])
    alerts = held_back = 0
    for row, i in zip(rows, np.flatnonzero(state["in_win"])):
        for metric, cell in ((k, c) for k, c in row.items() if k != "day"):
            low, high = (np.inf if e is None else e for e in cell["expected"])
            value = np.nan if cell["value"] is None else cell["value"]
            assert cell["alert"] == (value < low or value > high), (row["day"], metric, cell)
            t = state["table"][metric]
            assert cell["alert"] == _independent_alert(metric, t, i, state["sums"], state["in_ref"], mature,
                                                       (g, action)), \
                (row["day"], metric, cell)
            alerts += cell["alert"]
            held_back += bool(not cell["alert"] and value > t["high"][i])  # outside the ±4 band: now drawn inside
    assert (alerts > 2 or lift_from is None) and held_back > 0, (alerts, held_back)


def test_the_monitor_chart_draws_the_band_that_alerts(demo):
    """On the demo's Monitor result and the chart every face draws from it: red points are exactly the points
    outside the shaded band."""
    from riskconsole.charts import kpi_band_chart
    from riskconsole.monitor import METRICS

    result = demo.monitor(demo.ws.strategies_dir / "baseline.yaml")
    keys = [*METRICS, *(k for k in result["daily"][0] if k.startswith("rule_hits:"))]
    cells = [row[k] for row in result["daily"] for k in keys]
    assert any(c["alert"] for c in cells)
    for c in cells:
        low, high = (np.inf if e is None else e for e in c["expected"])
        assert c["alert"] == (c["value"] is not None and (c["value"] < low or c["value"] > high)), c
    df = kpi_band_chart(result["daily"], keys).data
    outside = (df["value"] < df["low"]) | (df["value"] > df["high"].fillna(np.inf))
    assert (outside == (df["alert"] == "alert")).all() and len(df) == len(cells)


def test_the_poisson_tails_are_scipys_to_the_last_digits():
    """`poisson_tail` (log-space sums, no scipy.special import) against scipy's survival and distribution functions,
    from tails far below the band's 3.2e-5 to sums near 1, small and large expected counts, and the edges."""
    from scipy.stats import poisson

    from riskconsole.discovery import poisson_tail

    for lam in (0.004, 0.5, 3.7, 100.0, 2500.0, 80_000.0):
        for x in sorted({0, 1, 2, 4, 9, int(lam), int(lam) + 1, int(lam + 5 * lam ** 0.5) + 1,
                         max(int(lam - 5 * lam ** 0.5), 0), int(3 * lam) + 12}):
            assert poisson_tail(x, lam, upper=True) == pytest.approx(poisson.sf(x - 1, lam), rel=1e-9, abs=1e-300)
            assert poisson_tail(x, lam, upper=False) == pytest.approx(poisson.cdf(x, lam), rel=1e-9, abs=1e-300)
    assert poisson_tail(0, 5.0, upper=True) == 1.0 and poisson_tail(-1, 5.0, upper=False) == 0.0
    assert poisson_tail(1, 0.0, upper=True) == 0.0 and poisson_tail(0, 0.0, upper=False) == 1.0
    assert poisson_tail(160, 100.0, upper=True) < 1e-7 < poisson_tail(140, 100.0, upper=True)


def _sparse_review_days(window_reviews: list[int]) -> Groups:
    """28 reference days of 100 orders with a review on 2 of them, then window days with `window_reviews`."""
    first, rows = date(2026, 1, 5), []
    for d, reviews in enumerate([1 if d in (3, 17) else 0 for d in range(28)] + window_reviews):
        rows += [(d, [False, False, False], 100 - reviews)] + [(d, [False, True, False], reviews)] * bool(reviews)
    return Groups(np.array([r[0] for r in rows]), np.zeros(len(rows), dtype=np.int8), np.array([r[1] for r in rows]),
                  np.array([r[2] for r in rows]), np.full(len(rows), 50.0),
                  [first + timedelta(days=i) for i in range(28 + len(window_reviews))])


def test_review_load_is_the_review_count_over_capacity_so_its_band_is_the_counts_too():
    """Review load is review cases / capacity: over capacity it alerts exactly when the review count is above its
    acceptance region (the exact Poisson one). A reference with 2 reviews in 28 days has level 3/28 (the rule of
    three): the ±4-spread band ends at 4·√(3/28) = 1.31 reviews, but 2 or 3 reviews have Poisson tails of 5.3e-3
    and 1.9e-4 (scipy), above the band's 3.2e-5, and 4 have 5.1e-6. With capacity 1, 2 and 3 reviews are an
    ordinary day for review_cases, so review load 2 and 3 must not alert either; 4 alerts on both."""
    from scipy.stats import norm, poisson

    business = Business(review_cost=2.0, review_capacity=1, review_catch_rate=0.9, good_block_cost=0.3)
    window = [0, 1, 2, 3, 4, 0, 5]
    g = _sparse_review_days(window)
    action = decide(g.hits, RULES)
    rows, _ = daily_kpis(g, action, business, _periods(g.days[0], 28, 28 + len(window)), RULES,
                         simulated_amounts(g, action, business=business))
    lam, tail = 3 / 28, norm.sf(4)
    assert [poisson.sf(x - 1, lam) < tail for x in (2, 3, 4)] == [False, False, True]
    by_scipy = [x > 1 and poisson.sf(x - 1, lam) < tail for x in window]
    assert [r["review_cases"]["alert"] for r in rows] == by_scipy == [False] * 4 + [True, False, True]
    assert [r["review_load"]["alert"] for r in rows] == by_scipy
    for r in rows:
        assert r["review_load"]["expected"][1] == pytest.approx(max(r["review_cases"]["expected"][1] / 1, 1.0))


def test_window_days_without_any_event_are_said_not_left_out(tmp_path):
    """A day with no event at all inside the data (an outage of the shop or of its export) had no row in `daily`, so
    no alert, and no word: the largest change there is passed in silence. The warning names such days with the
    reference's usual volume, counted here from the events written."""
    from conftest import BASE_DATASET, random_events, write_workspace
    from riskconsole.ingest import load

    ev = random_events(n=4_000, days=40)
    gap = [date(2026, 4, 2), date(2026, 4, 5)]
    ev = ev[~ev["ts"].dt.date.isin(gap)]
    rules = [{"name": "burst", "when": "user_orders_1h >= 2", "action": "block"}]
    ws = write_workspace(tmp_path / "ws", ev, BASE_DATASET, strategies={"s": {"name": "s", "rules": rules}})
    load(ws)
    with Session(ws) as session:
        result = session.monitor(ws.strategies_dir / "s.yaml", start="2026-03-30", end="2026-04-09")
    ref = result["reference"]
    days = ev["ts"].dt.date
    in_ref = (days >= date.fromisoformat(ref["from"])) & (days <= date.fromisoformat(ref["to"]))
    usual = in_ref.sum() / ((date.fromisoformat(ref["to"]) - date.fromisoformat(ref["from"])).days + 1)
    said = [w for w in result["warnings"] if w.startswith("no events on")]
    assert said == ["no events on 2 days of the window (2026-04-02, 2026-04-05), where the reference averages "
                    f"{usual:,.0f} a day: a gap in the data (an outage of the shop or of its export?); those days "
                    "have no row, so nothing on them alerts"]
    assert not {d.isoformat() for d in gap} & {row["day"] for row in result["daily"]}
    with Session(ws) as session:
        quiet = session.monitor(ws.strategies_dir / "s.yaml", start="2026-03-30", end="2026-04-01")
    assert not [w for w in quiet["warnings"] if w.startswith("no events on")]

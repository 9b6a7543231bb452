"""Issue 3's quality bars on the demo itself: out of time, LightGBM beats every single feature and the
PyOD detector, which beats random; the cards' numbers are sklearn's on the stored scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score



def _out_of_time(ws, columns: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    card = json.loads((ws.models_dir / "lgbm_orders" / "card.json").read_text())
    start = card["out_of_time"]["from"]
    con = ws.connect_safe()
    select = ", ".join(f'CAST(f."{c}" AS DOUBLE) AS "{c}"' for c in columns)
    df = con.execute(f"""SELECT f.is_fraud AS y, l.lgbm_orders, i.iforest_orders, {select} FROM frame f
        JOIN scores_lgbm_orders l USING (_pos) JOIN scores_iforest_orders i USING (_pos)
        WHERE f.ts >= CAST(? AS TIMESTAMP) AND f.is_fraud IS NOT NULL""", [start]).df()
    con.close()
    return df["y"].to_numpy(), {c: df[c].to_numpy() for c in df.columns if c != "y"}


def _auc_ap(y, s) -> tuple[float, float]:
    s = np.nan_to_num(s, nan=np.nanmin(s) - 1 if np.isfinite(s).any() else 0)
    auc = roc_auc_score(y, s)
    if auc < 0.5:  # a feature may point either way: give it its better direction
        s, auc = -s, 1 - auc
    return auc, average_precision_score(y, s)


def test_lightgbm_beats_every_single_feature_and_pyod_out_of_time(demo_ws):
    card = json.loads((demo_ws.models_dir / "lgbm_orders" / "card.json").read_text())
    y, cols = _out_of_time(demo_ws, card["features"])
    assert y.sum() >= 50, "too few frauds out of time to judge"
    lgbm = _auc_ap(y, cols.pop("lgbm_orders"))
    iforest = _auc_ap(y, cols.pop("iforest_orders"))
    singles = {name: _auc_ap(y, values) for name, values in cols.items()}
    best_auc = max(a for a, _ in singles.values())
    best_ap = max(p for _, p in singles.values())
    assert lgbm[0] > best_auc + 0.02 and lgbm[1] > best_ap + 0.05, (lgbm, best_auc, best_ap)
    assert lgbm[0] > iforest[0] and lgbm[1] > iforest[1]
    assert iforest[0] > 0.6


@pytest.mark.parametrize("name", ["lgbm_orders", "iforest_orders"])
def test_demo_cards_match_sklearn_on_stored_scores(demo_ws, name):
    card = json.loads((demo_ws.models_dir / name / "card.json").read_text())
    part = card["valid"]
    con = demo_ws.connect_safe()
    df = con.execute(f"""SELECT f.is_fraud AS y, s."{name}" AS s FROM frame f JOIN scores_{name} s USING (_pos)
        WHERE f.ts >= CAST(? AS TIMESTAMP) AND f.ts < CAST(? AS DATE) + INTERVAL 1 DAY
          AND f.is_fraud IS NOT NULL""", [part["from"], part["to"]]).df()
    con.close()
    assert part["auc"] == pytest.approx(roc_auc_score(df.y, df.s), abs=1e-9)
    assert part["average_precision"] == pytest.approx(average_precision_score(df.y, df.s), abs=1e-9)

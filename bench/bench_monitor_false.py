"""False alerts and false incidents of `monitor` on a demo's good orders alone.

    python bench/bench_monitor_false.py WORKSPACE [WORKSPACE ...]     # demos (detectors not needed)

The demo's good orders (`fraud_scenario = 'none'`) hold only routine traffic: live-stream bursts, viral videos,
kiosks, travellers, and three promo days the reference never saw. `baseline` on them alone (a copy of the
workspace whose frame keeps only them) is monitored over three consecutive 28-day windows, each against the 28 days before (the last is the default
window). Off the promo days every alert is false, and so is every incident with an alert off them.
Prints, per workspace and in total: metric-days, false alerts, false incidents, days with a false incident.
"""

from __future__ import annotations

import json
import shutil
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb

from riskconsole.session import Session
from riskconsole.workspace import Workspace

WINDOWS = 3
DAYS = 28


def promo_days(first: date, last: date) -> set[str]:
    """The demo's promo days (demo.py: days int(0.37 n), +1 and int(0.8 n) of its n days)."""
    n = (last - first).days + 1
    return {(first + timedelta(days=d)).isoformat() for d in (int(n * 0.37), int(n * 0.37) + 1, int(n * 0.8))}


def good_only(root: Path) -> Path:
    """A copy of the workspace (beside it, `_good`) whose frame holds the good orders only.

    The strategy cannot say `population: fraud_scenario = 'none'`: the demo's dataset marks the answer key
    label-derived. Features were built on every order, so each good order keeps the decision it had."""
    copy = root.with_name(root.name + "_good")
    if not copy.exists():
        shutil.copytree(root, copy, ignore=shutil.ignore_patterns("demo", "models", "reports"))
        con = duckdb.connect(str(copy / "data" / "console.duckdb"))
        con.execute("DELETE FROM frame WHERE fraud_scenario <> 'none'")
        con.close()
    return copy


def measure(root: Path) -> dict:
    ws = Workspace(good_only(root))
    path = ws.strategies_dir / "baseline.yaml"
    out = {"workspace": str(root), "metric_days": 0, "false_alerts": 0, "false_incidents": 0, "days": 0,
           "days_with_false_incident": 0, "incident_days": 0, "alerts_per_incident": []}
    with Session(ws) as session:
        first, last = session.day_range()
        promo = promo_days(first, last)
        for k in range(WINDOWS, 0, -1):
            end = last - timedelta(days=DAYS * (k - 1))
            result = session.monitor(path, (end - timedelta(days=DAYS - 1)).isoformat(), end.isoformat())
            days = [r["day"] for r in result["daily"] if r["day"] not in promo]
            metrics = [m for m in result["daily"][0] if m not in ("day", "label_coverage")]
            out["days"] += len(days)
            out["metric_days"] += len(days) * len(metrics)
            out["false_alerts"] += sum(a["day"] not in promo for a in result["alerts"])
            false = [i for i in result.get("incidents", []) if any(m["day"] not in promo for m in i["members"])]
            out["false_incidents"] += len(false)
            out["alerts_per_incident"] += [i["alerts"] for i in false]
            on = {(i["id"], m["day"]) for i in false for m in i["members"] if m["day"] not in promo}
            out["incident_days"] += len(on)
            out["days_with_false_incident"] += len({d for _, d in on})
    return out


def main() -> None:
    total: dict = {}
    for root in sys.argv[1:]:
        row = measure(Path(root))
        print(json.dumps(row), flush=True)
        for key, value in row.items():
            if key != "workspace":
                total[key] = total.get(key, 0 if not isinstance(value, list) else []) + value
    per = total["alerts_per_incident"]
    print(f"total: {total['false_alerts']} false alerts in {total['metric_days']} metric-days "
          f"({total['false_alerts'] / total['metric_days']:.2%}); {total['false_incidents']} false incidents, "
          f"{total['incident_days']} incident-days in {total['days']} days ({total['incident_days'] / total['days']:.1%}"
          f" per day), {total['days_with_false_incident']} days with one; alerts per incident: mean "
          f"{sum(per) / max(len(per), 1):.2f}, max {max(per, default=0)}")


if __name__ == "__main__":
    main()

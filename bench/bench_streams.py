"""Benchmark (issue 9): the demo's feature build with streams and tables vs one hand-written DuckDB query.

Run by hand, not in CI, on a loaded demo workspace:

    .venv/bin/riskconsole demo --workspace /tmp/d1m --events 1000000
    .venv/bin/python bench/bench_streams.py --workspace /tmp/d1m

Both sides run on a copy of the workspace's database. "Ours" is `features.build_frame` (every feature of
data/dataset.yaml). The floor is one query written by hand the way a DuckDB user would: the decision-stream
windows in one SELECT, each stream's windows as a union of orders and stream rows per key, the as-of lookups
as DuckDB `ASOF JOIN`s (no Spark equivalent), the IP range as a BETWEEN join, label features as plain delayed
windows that ignore label_time (cheaper and less exact than our sweep), derived features inline.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import time
from pathlib import Path

import duckdb

W = {"10m": 600_000_000, "1h": 3_600_000_000, "24h": 86_400_000_000, "7d": 604_800_000_000,
     "30d": 2_592_000_000_000, "28d": 2_419_200_000_000, "3650d": 315_360_000_000_000}


def win(part: str, n: str, end: str = "1 PRECEDING") -> str:
    by = f"PARTITION BY {part} " if part else ""
    return f"OVER ({by}ORDER BY t RANGE BETWEEN {W[n]} PRECEDING AND {end})"


def stream_cte(name: str, stream: str, key: str, time_col: str, aggs: dict[str, str]) -> str:
    """Orders (query rows) and stream rows (data rows) per key; aggregates read only data rows."""
    cols = ", ".join(f"{expr} AS {alias}" for alias, expr in aggs.items())
    values = ", ".join(f"NULL AS v_{a}" for a in aggs)
    data = ", ".join(f"{src} AS v_{a}" for a, src in _sources(aggs).items())
    return (f"{name} AS (SELECT pos, {cols} FROM (SELECT {key} AS k, t, pos, {values} FROM b WHERE {key} IS NOT NULL "
            f"UNION ALL SELECT {key}, epoch_us({time_col}), NULL, {data} FROM stream_{stream} WHERE {key} IS NOT NULL) "
            f"QUALIFY pos IS NOT NULL)")


def _sources(aggs: dict[str, str]) -> dict[str, str]:
    return {a: SOURCES[a] for a in aggs}


SOURCES = {"device_signups_24h": "1", "ip_signups_24h": "1", "user_signed_up_at": "signup_time",
           "user_refunds_30d": "1", "user_refund_amount_30d": "refund_amount", "device_clicks_1h": "1",
           "device_last_click_1h": "click_time", "user_logins_1h": "1", "user_login_successes_1h": "success"}


def hand_query() -> str:
    """The floor: every feature of the demo dataset in one statement."""
    streams = [
        stream_cte("s1", "signups", "device_id", "signup_time",
                   {"device_signups_24h": f"count(v_device_signups_24h) {win('k', '24h')}"}),
        stream_cte("s2", "signups", "ip_num", "signup_time",
                   {"ip_signups_24h": f"count(v_ip_signups_24h) {win('k', '24h')}"}),
        stream_cte("s3", "signups", "user_id", "signup_time",
                   {"user_signed_up_at": f"max(v_user_signed_up_at) {win('k', '3650d')}"}),
        stream_cte("s4", "refunds", "user_id", "refund_time",
                   {"user_refunds_30d": f"count(v_user_refunds_30d) {win('k', '30d')}",
                    "user_refund_amount_30d": f"coalesce(sum(v_user_refund_amount_30d) {win('k', '30d')}, 0)"}),
        stream_cte("s5", "clicks", "device_id", "click_time",
                   {"device_clicks_1h": f"count(v_device_clicks_1h) {win('k', '1h')}",
                    "device_last_click_1h": f"max(v_device_last_click_1h) {win('k', '1h')}"}),
        stream_cte("s6", "logins", "user_id", "login_time",
                   {"user_logins_1h": f"count(v_user_logins_1h) {win('k', '1h')}",
                    "user_login_successes_1h": f"coalesce(sum(v_user_login_successes_1h) {win('k', '1h')}, 0)"}),
    ]
    delayed = f"RANGE BETWEEN {W['28d'] + W['7d']} PRECEDING AND {W['7d'] + 1} PRECEDING"
    return f"""
CREATE OR REPLACE TEMP TABLE hand AS
WITH b AS (SELECT *, epoch_us(ts) AS t, row_number() OVER (ORDER BY ts, event_id) AS pos FROM events),
w AS (SELECT *,
  count(*) {win('payment_id', '10m')} AS pay_orders_10m, count(*) {win('payment_id', '1h')} AS pay_orders_1h,
  count(*) {win('device_id', '1h')} AS device_orders_1h, count(*) {win('user_id', '1h')} AS user_orders_1h,
  count(*) {win('user_id', '24h')} AS user_orders_24h, count(*) {win('user_id', '30d')} AS user_orders_30d,
  avg(amount) {win('user_id', '30d')} AS user_amount_30d, max(amount) {win('user_id', '30d')} AS user_max_amount_30d,
  array_length(list_distinct(array_agg(user_id) {win('device_id', '7d')})) AS device_users_7d,
  array_length(list_distinct(array_agg(user_id) {win('address_id', '7d')})) AS address_users_7d,
  array_length(list_distinct(array_agg(device_id) {win('payment_id', '7d')})) AS payment_devices_7d,
  sum(is_fraud) OVER (PARTITION BY merchant_id ORDER BY t {delayed}) AS merchant_fraud_28d,
  count(is_fraud) OVER (PARTITION BY merchant_id ORDER BY t {delayed}) AS merchant_labels_28d,
  count(*) {win('influencer_id', '1h')} AS influencer_orders_1h,
  avg(account_age_days) {win('influencer_id', '24h')} AS influencer_buyer_age_24h,
  count(*) {win('device_id, ip_num', '1h')} AS device_ip_orders_1h,
  count(*) {win('', '10m')} AS orders_all_10m
FROM b),
{', '.join(streams)},
m AS (SELECT b.pos, m.category AS merchant_category_asof, m.updated_at AS merchant_updated_at FROM b
      ASOF JOIN table_merchants m ON b.merchant_id = m.merchant_id AND b.ts >= m.updated_at),
i AS (SELECT b.pos, i.follower_band AS influencer_band FROM b
      ASOF JOIN table_influencers i ON b.influencer_id = i.influencer_id AND b.ts >= i.updated_at),
r AS (SELECT b.pos, first(r.country ORDER BY r.ip_low) AS ip_range_country, first(r.network ORDER BY r.ip_low) AS ip_network
      FROM b JOIN table_ip_ranges r ON b.ip_num BETWEEN r.ip_low AND r.ip_high GROUP BY b.pos)
SELECT *, amount / nullif(user_amount_30d, 0) AS amount_vs_user,
  coupon_amount / nullif(amount + coupon_amount, 0) AS coupon_ratio,
  CASE WHEN ip_country <> user_country THEN 1 ELSE 0 END AS ip_mismatch,
  merchant_fraud_28d / nullif(merchant_labels_28d, 0) AS merchant_fraud_rate_28d,
  date_diff('second', user_signed_up_at, ts) AS seconds_since_signup,
  user_refunds_30d / nullif(user_orders_30d, 0) AS user_refund_share_30d,
  date_diff('second', device_last_click_1h, ts) AS seconds_since_click,
  user_logins_1h - user_login_successes_1h AS user_failed_logins_1h,
  date_diff('day', merchant_updated_at, ts) AS merchant_days_since_update
FROM w LEFT JOIN s1 USING (pos) LEFT JOIN s2 USING (pos) LEFT JOIN s3 USING (pos) LEFT JOIN s4 USING (pos)
  LEFT JOIN s5 USING (pos) LEFT JOIN s6 USING (pos) LEFT JOIN m USING (pos) LEFT JOIN i USING (pos)
  LEFT JOIN r USING (pos)
"""


def main() -> None:
    from riskconsole.features import build_frame
    from riskconsole.workspace import Workspace

    parser = argparse.ArgumentParser()
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--memory-limit", help="DuckDB's memory_limit for both sides, e.g. 1GB (spilling allowed)")
    args = parser.parse_args()
    ws = Workspace(Path(args.workspace))
    copy = Path(args.workspace) / "data" / "bench_streams.duckdb"
    shutil.copyfile(ws.db_path, copy)
    con = duckdb.connect(str(copy))
    con.execute("SET TimeZone = 'UTC'")
    if args.memory_limit:
        con.execute(f"SET memory_limit = '{args.memory_limit}'")
    try:
        for _ in range(args.runs):
            started = time.perf_counter()
            build_frame(con, ws.dataset(), "data/dataset.yaml")
            ours = time.perf_counter() - started
            print(f"features: ours {ours:.1f} s ...", flush=True)  # the hand-written query may run much longer
            started = time.perf_counter()
            con.execute(hand_query())
            hand = time.perf_counter() - started
            n = con.execute("SELECT count(*) FROM hand").fetchall()[0][0]
            print(f"features: ours {ours:.1f} s, hand-written {hand:.1f} s, ratio {ours / hand:.2f}x ({n:,} rows); "
                  f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.1f} GB")
    finally:
        con.close()
        copy.unlink(missing_ok=True)


if __name__ == "__main__":
    main()

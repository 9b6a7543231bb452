"""Benchmark (issue 10): graph features vs plain window features of the same data, and the graph libraries.

Run by hand, not in CI:
    .venv/bin/python bench/bench_graphs.py --events 1000000 --days 90

Synthetic orders: users mostly keep their own device, card and address, a few share (rings), and a few
addresses are hubs. `graph` builds 3 graph features (component_size, degree, fraud_share) over 30-day windows
with 3 link types; `plain` builds one 30-day distinct count per link type (users per device, card, address) —
the nearest plain window features of the same rows. Each phase runs in its own process (peak RSS per phase).
`libs` times one day's connected components with scipy, igraph and rustworkx (installed with
`pip install --target /tmp/gcand igraph rustworkx`; skipped when absent) and networkx.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import duckdb

SYNTH = """
CREATE TABLE events AS
SELECT 'e' || i AS event_id,
       TIMESTAMP '2026-01-01' + to_microseconds(CAST(random() * {days} * 86400e6 AS BIGINT)) AS ts,
       u AS user_id,
       CASE WHEN random() < 0.97 THEN u ELSE CAST(random() * {users} AS BIGINT) END AS device_id,
       CASE WHEN random() < 0.98 THEN u ELSE CAST(random() * {users} AS BIGINT) END AS payment_id,
       CASE WHEN random() < 0.01 THEN CAST(random() * 20 AS BIGINT)
            WHEN random() < 0.97 THEN u + 100 ELSE CAST(random() * {users} AS BIGINT) + 100 END AS address_id,
       CASE WHEN random() < 0.02 THEN 1 ELSE 0 END::TINYINT AS is_fraud,
       round(random() * 300, 2) AS amount
FROM (SELECT i, CAST(random() * {users} AS BIGINT) AS u FROM range({events}) t(i))
"""
LINKS = ["device_id", "payment_id", "address_id"]
GRAPH = [{"name": f"user_ring_{kind}_30d", "graph": kind, "node": "user_id", "links": LINKS, "window": "30d",
          "max_degree": 20, **({"label_delay": "7d"} if kind == "fraud_share" else {})}
         for kind in ("component_size", "degree", "fraud_share")]
PLAIN = [{"name": f"{link}_users_30d", "count_distinct": "user_id", "by": link, "window": "30d"} for link in LINKS]


def _connection(events: int, days: int) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SELECT setseed(0.5)")
    con.execute(SYNTH.format(events=events, days=days, users=events // 5))
    return con


def run_phase(phase: str, events: int, days: int) -> dict:
    """Build one feature set over fresh synthetic data; time only the feature build."""
    import pandas  # noqa: F401  (imported by every real load; pyarrow's to_numpy would import it inside the timing)

    from riskconsole.config import Dataset
    from riskconsole.features import build_frame

    con = _connection(events, days)
    dataset = Dataset.model_validate({
        "source": "x", "columns": {"id": "event_id", "time": "ts", "label": "is_fraud", "amount": "amount"},
        "features": GRAPH if phase == "graph" else PLAIN})
    start = time.perf_counter()
    build_frame(con, dataset, "bench")
    seconds = time.perf_counter() - start
    return {"phase": phase, "seconds": round(seconds, 2),
            "peak_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2, 2)}


def run_libs(events: int, days: int) -> dict:
    """One 30-day window's bipartite graph, components by each library (median of 3)."""
    import numpy as np
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    sys.path.append("/tmp/gcand")
    con = _connection(events, days)
    sql = ("SELECT DISTINCT user_id, {link} + {off} AS v FROM events WHERE ts >= TIMESTAMP '2026-01-01' + "
           "INTERVAL 30 DAY AND ts < TIMESTAMP '2026-01-01' + INTERVAL 60 DAY")
    offset = 10 * events
    parts = [con.execute(sql.format(link=link, off=(i + 1) * offset)).fetchnumpy() for i, link in enumerate(LINKS)]
    a = np.concatenate([p["user_id"] for p in parts])
    b = np.concatenate([p["v"] for p in parts])
    _, codes = np.unique(np.r_[a, b], return_inverse=True)
    n = int(codes.max()) + 1
    src, dst = codes[:len(a)], codes[len(a):]

    def scipy_cc():
        return connected_components(csr_matrix((np.ones(len(src), np.int8), (src, dst)), shape=(n, n)),
                                    directed=False)[0]

    def igraph_cc():
        import igraph
        return len(igraph.Graph(n=n, edges=np.c_[src, dst]).connected_components())

    def rustworkx_cc():
        import rustworkx
        g = rustworkx.PyGraph()
        g.add_nodes_from(range(n))
        g.add_edges_from_no_data(list(zip(src.tolist(), dst.tolist())))
        return rustworkx.number_connected_components(g)

    def networkx_cc():
        import networkx
        g = networkx.Graph()
        g.add_nodes_from(range(n))
        g.add_edges_from(zip(src.tolist(), dst.tolist()))
        return networkx.number_connected_components(g)

    out = {"edges": len(src), "vertices": n}
    for name, fn in [("scipy", scipy_cc), ("igraph", igraph_cc), ("rustworkx", rustworkx_cc),
                     ("networkx", networkx_cc)]:
        try:
            times, result = [], None
            for _ in range(3):
                start = time.perf_counter()
                result = fn()
                times.append(time.perf_counter() - start)
            out[name] = {"seconds": round(sorted(times)[1], 3), "components": int(result)}
        except ImportError:
            out[name] = "not installed"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--phase", choices=["graph", "plain", "libs"], help="run one phase in this process")
    parser.add_argument("--phases", default="plain,graph,libs", help="phases to run, each in its own process")
    args = parser.parse_args()
    if args.phase:
        fn = run_libs if args.phase == "libs" else lambda e, d: run_phase(args.phase, e, d)
        print(json.dumps(fn(args.events, args.days)))
        return
    results = {}
    for phase in args.phases.split(","):
        out = subprocess.run([sys.executable, __file__, "--phase", phase, "--events", str(args.events),
                              "--days", str(args.days)], check=True, capture_output=True, text=True).stdout
        results[phase] = json.loads(out.strip().splitlines()[-1])
        print(phase, results[phase], flush=True)
    if {"graph", "plain"} <= set(results):
        print(f"graph / plain = {results['graph']['seconds'] / results['plain']['seconds']:.2f}x")


if __name__ == "__main__":
    main()

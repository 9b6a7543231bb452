"""What `tables.NAME.rename` costs a load: the same events and as-of table loaded with the table's columns named
as the events name them, and with other names in the file renamed at load (alternating, CPU seconds of this
process, which runs DuckDB's threads). The two frames are compared, so the run also checks they are equal.

    .venv/bin/python bench/bench_table_rename.py --events 200000 --versions 400000 --rounds 2
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import BASE_DATASET, random_events, write_workspace  # noqa: E402

from riskconsole.ingest import load  # noqa: E402

NAMES = {"shop": "merchant_id", "cat": "category", "pts": "score", "changed": "updated_at"}


def versions(n: int, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2026-02-20")
    return pd.DataFrame({"merchant_id": np.arange(n) % 5_000 + 100,
                         "category": rng.choice(["books", "toys", "gift_cards"], n), "score": rng.random(n),
                         "updated_at": start + pd.to_timedelta(rng.integers(0, 20 * 86_400, n), unit="s")}
                        ).drop_duplicates(["merchant_id", "updated_at"])


def workspace(root: Path, events: pd.DataFrame, table: pd.DataFrame, renamed: bool):
    spec = ({"source": "data/merchants.parquet", "key": "shop", "valid_from": "changed", "rename": NAMES}
            if renamed else {"source": "data/merchants.parquet", "key": "merchant_id", "valid_from": "updated_at"})
    features = [{"name": f"merchant_{c}", "lookup": f"merchants.{c}"} for c in ("category", "score", "updated_at")]
    ws = write_workspace(root, events, {**BASE_DATASET, "tables": {"merchants": spec}, "features": features},
                         source_name="events.parquet")
    (table.rename(columns={v: k for k, v in NAMES.items()}) if renamed else table).to_parquet(
        root / "data" / "merchants.parquet", index=False)
    return ws


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--versions", type=int, default=400_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    events = random_events(n=args.events, seed=3, days=20)
    events["merchant_id"] = np.random.default_rng(4).integers(100, 5_100, len(events))
    table = versions(args.versions)
    root = Path(tempfile.mkdtemp(prefix="bench_rename_"))
    spent: dict[bool, list[float]] = {False: [], True: []}
    frames = {}
    try:
        for _ in range(args.rounds):
            for renamed in (False, True):
                ws = workspace(root / str(renamed), events, table, renamed)
                before, wall = cpu(), time.perf_counter()
                load(ws)
                spent[renamed].append(cpu() - before)
                print(f"renamed={renamed}: {spent[renamed][-1]:.2f} CPU-s, {time.perf_counter() - wall:.2f} s wall")
                con = duckdb.connect(str(ws.db_path), read_only=True)
                frames[renamed] = con.execute("SELECT * FROM frame ORDER BY _pos").df()
                con.close()
        pd.testing.assert_frame_equal(frames[False], frames[True])
        plain, renamed = np.median(spent[False]), np.median(spent[True])
        print(yaml.safe_dump({"events": args.events, "table_rows": len(table), "plain_cpu_s": round(float(plain), 2),
                              "renamed_cpu_s": round(float(renamed), 2), "ratio": round(float(renamed / plain), 3),
                              "frames_equal": True}, sort_keys=False))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

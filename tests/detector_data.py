"""A small seeded event set where fraud is learnable from a combination of features (and is unusual)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from riskconsole.workspace import Workspace

START = np.datetime64("2026-01-01T00:00:00")
DATASET = {
    "source": "data/events.parquet",
    "columns": {"id": "event_id", "time": "ts", "label": "is_fraud", "label_time": "label_ts",
                "amount": "amount", "entities": ["user_id", "device_id"], "label_derived": ["scenario"]},
    "features": [
        {"name": "user_orders_1h", "count": "*", "by": "user_id", "window": "1h"},
        {"name": "device_users_7d", "count_distinct": "user_id", "by": "device_id", "window": "7d"},
        {"name": "coupon_ratio", "sql": "coupon / nullif(amount + coupon, 0)"},
    ],
}
FEATURES = ["amount", "account_age_days", "is_new_device", "coupon_ratio", "user_orders_1h", "device_users_7d"]
TRAIN = {"from": "2026-01-01", "to": "2026-02-10"}
VALID = {"from": "2026-02-11", "to": "2026-02-24"}


def _legit(rng: np.random.Generator, n: int, days: int) -> pd.DataFrame:
    return pd.DataFrame({
        "seconds": rng.integers(0, days * 86_400, n),
        "amount": np.round(rng.lognormal(3.5, 0.7, n), 2),
        "account_age_days": rng.integers(5, 1500, n),
        "is_new_device": rng.random(n) < 0.08,
        "coupon": np.where(rng.random(n) < 0.15, np.round(rng.uniform(1, 15, n), 2), 0.0),
        "user_id": rng.integers(1, n // 3, n),
        "device_id": rng.integers(1, n // 3, n),
        "scenario": "none",
    })


def _fraud(rng: np.random.Generator, bursts: int, days: int) -> pd.DataFrame:
    size = rng.integers(1, 4, bursts)
    first = np.repeat(rng.integers(0, days * 86_400 - 3_600, bursts), size)
    n = int(size.sum())
    users = np.repeat(np.arange(10**6, 10**6 + bursts), size)
    return pd.DataFrame({
        "seconds": first + rng.integers(0, 1_800, n),
        "amount": np.round(rng.lognormal(4.6, 0.8, n), 2),
        "account_age_days": rng.integers(0, 400, n),
        "is_new_device": rng.random(n) < 0.5,
        "coupon": np.where(rng.random(n) < 0.4, np.round(rng.uniform(5, 40, n), 2), 0.0),
        "user_id": users,
        "device_id": np.repeat(rng.integers(10**6, 10**6 + bursts // 3 + 1, bursts), size),
        "scenario": "stolen_card",
    })


def signal_events(n: int = 4_000, seed: int = 3, days: int = 70) -> pd.DataFrame:
    """Events over `days` days from 2026-01-01: ~5% fraud, 8% unknown labels, NULLs in a few features."""
    rng = np.random.default_rng(seed)
    frame = pd.concat([_legit(rng, n - n // 20, days), _fraud(rng, n // 40, days)], ignore_index=True)
    frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True).iloc[:n]
    fraud = (frame["scenario"] != "none").to_numpy()
    # some legit events look risky and some fraud looks ordinary: no single feature separates them
    noisy = rng.random(len(frame)) < 0.1
    frame.loc[noisy, "amount"] = np.round(rng.lognormal(4.6, 0.8, int(noisy.sum())), 2)
    ts = START + frame["seconds"].to_numpy().astype("timedelta64[s]")
    known = rng.random(len(frame)) > 0.08
    label = np.where(known, fraud.astype(float), np.nan)
    frame["account_age_days"] = frame["account_age_days"].astype("Int64").mask(rng.random(len(frame)) < 0.03)
    channel = rng.choice(["web", "app"], len(frame))
    return pd.DataFrame({
        "event_id": [f"e{i:05d}" for i in range(len(frame))],
        "ts": pd.to_datetime(ts),
        "is_fraud": pd.array(label, dtype="Int8"),
        "label_ts": pd.to_datetime(np.where(known, ts + np.timedelta64(5, "D"), np.datetime64("NaT"))),
        "amount": frame["amount"].to_numpy(),
        "user_id": frame["user_id"].to_numpy(),
        "device_id": frame["device_id"].to_numpy(),
        "account_age_days": frame["account_age_days"],
        "is_new_device": frame["is_new_device"].to_numpy(),
        "coupon": frame["coupon"].to_numpy(),
        "channel": channel,
        "tags": [[c] for c in channel],  # a LIST column: no model can read it
        "scenario": frame["scenario"].to_numpy(),
    })


def detector_yaml(root: Path, name: str, kind: str, features: list[str] | None = None, **extra: object) -> Path:
    """Write detectors/NAME.yaml and return its path."""
    body = {"name": name, "kind": kind, "features": features or FEATURES, "train": TRAIN, "valid": VALID, **extra}
    path = root / "detectors" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def signal_workspace(root: Path, n: int = 4_000, seed: int = 3) -> Workspace:
    """A loaded workspace over `signal_events`."""
    from riskconsole.ingest import load

    ws = Workspace(root)
    (root / "data").mkdir(parents=True, exist_ok=True)
    signal_events(n, seed).to_parquet(root / "data" / "events.parquet", index=False)
    (root / "data" / "dataset.yaml").write_text(yaml.safe_dump(DATASET, sort_keys=False))
    load(ws)
    return ws

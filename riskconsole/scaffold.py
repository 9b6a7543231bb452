"""Write workspaces: the complete demo (files, generated events, loaded database), or a commented skeleton."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Callable

from riskconsole.ingest import LoadResult, load
from riskconsole.workspace import Workspace

DEMO_FILES = Path(__file__).resolve().parent / "demo_files"
DEMO_SIZE = 1_000_000  # the demo's review capacity is sized for this many events
EVENTS = Path("data") / "demo" / "events.parquet"
FUTURE_DEMO_FILES: tuple[str, ...] = ()  # demo files shipped but not copied into workspaces yet (none)


def copy_demo_files(ws: Workspace, n_events: int = DEMO_SIZE, overwrite: bool = False) -> None:
    """dataset.yaml, strategies and detectors of the demo, without clobbering edited files unless asked.

    The review capacity scales with the number of events, so a smaller demo has the same queue pressure.
    """
    for src in sorted(DEMO_FILES.rglob("*.yaml")):
        relative = src.relative_to(DEMO_FILES)
        if relative.as_posix() in FUTURE_DEMO_FILES:
            continue
        target = ws.root / ("data" if relative.name == "dataset.yaml" and len(relative.parts) == 1 else "") / relative
        if target.exists() and not overwrite:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        if relative.name == "dataset.yaml":
            _scale_capacity(target, n_events)


def _scale_capacity(path: Path, n_events: int) -> None:
    text = path.read_text(encoding="utf-8")
    match = re.search(r"review_capacity:\s*(\d+)", text)
    if match and n_events != DEMO_SIZE:
        scaled = max(1, round(int(match.group(1)) * n_events / DEMO_SIZE))
        path.write_text(text[:match.start(1)] + str(scaled) + text[match.end(1):], encoding="utf-8")


def build_demo_workspace(ws: Workspace, n_events: int = 1_000_000, seed: int = 7,
                         progress: Callable[[str], None] = lambda _: None, train: bool = True) -> LoadResult:
    """Generate the demo events and beside them the other streams and tables, copy the demo
    files, load everything and (with `train`) fit the detectors."""
    from riskconsole.demo import generate_events

    ws.root.mkdir(parents=True, exist_ok=True)
    copy_demo_files(ws, n_events)
    progress(f"generating {n_events:,} demo events and the other streams (seed {seed}) ...")
    target = ws.root / EVENTS
    target.parent.mkdir(parents=True, exist_ok=True)
    generate_events(target, n_events=n_events, seed=seed)
    progress("loading events and building features ...")
    result = load(ws, progress=progress)
    if train:
        from riskconsole.detectors import train_all

        progress("training the demo detectors ...")
        train_all(ws, progress)
    return result


# ---------------------------------------------------------------- `riskconsole init`: a skeleton for your own data

DATASET_YAML = """\
# Where your events come from and what their columns mean. Reference: docs/dataset.md
# One row per decision event (an order, a payment, a signup). Edit the source path and the column names
# on the right-hand side to match your file; keep the role names on the left.
source: data/events.csv          # a file or glob relative to this workspace: .csv, .parquet, .json/.jsonl
# time_format: "%m/%d/%y %H:%M"  # only if your times are not ISO-8601 (2026-01-31 23:59:00); a list is tried in order
#                                # ([ISO-8601, "%d/%m/%Y %H:%M"]: ISO times and others such as 31/01/2026 03:48);
#                                # epoch_ms for numbers since 1970 in milliseconds (1730800000000; epoch_s, epoch_us)

columns:
  id: order_id                   # required: unique per event (read as text)
  time: created_at               # required: when the event happened; a time without an offset (-03:00) or a zone
  #                              # name after it (2026-10-24 22:30:00 America/Sao_Paulo) is read as UTC
  label: is_fraud                # 1 = fraud, 0 = good, empty = not known yet (delete the line if you have no labels)
  label_time: chargeback_at      # when the label became known, e.g. the chargeback date (delete if you have none)
  amount: amount                 # money at stake; drives every money metric (delete if you have none)
  entities: [user_id, device_id] # columns that features group by: users, devices, cards, addresses, merchants ...
  # label_derived: [fraud_reason]  # columns computed from the label (answer keys): nothing may read them
  # prod_action: decision         # what production decided (allow, review, block): reports then bound the outcomes
  #                                # production hid (blocked orders never get a chargeback); docs/dataset.md
# label_values: {fraud: 1, legit: 0}                  # only if labels are words; matched ignoring case
# prod_action_values: {approve: allow, decline: block} # only if production's decisions are other words

# types: {channel: VARCHAR, account_age_days: INTEGER}   # optional: force a DuckDB type per column

# Features are computed at load, point in time: a feature of an event at time t only sees events strictly
# before t (never the event itself, never the future). Rules and detectors read them by name.
features:
  # window features: an aggregate of the same entity's events in [t - window, t); windows: 30s, 10m, 1h, 7d, 2w
  - {name: user_orders_1h, count: "*", by: user_id, window: 1h}              # velocity
  - {name: user_amount_30d, avg: amount, by: user_id, window: 30d}           # the user's usual basket
  - {name: device_users_7d, count_distinct: user_id, by: device_id, window: 7d}   # shared devices
  # - {name: user_spend_24h, sum: amount, by: user_id, window: 24h}
  # - {name: user_max_amount_30d, max: amount, by: user_id, window: 30d}
  # label feature: known fraud of the same entity, only labels at least `label_delay` old (and, with
  # label_time mapped, only labels already known at t). Needs the label column.
  - {name: device_fraud_28d, sum: label, by: device_id, window: 28d, label_delay: 7d}
  # derived feature: a SQL expression over columns and earlier features (same rules as strategy expressions)
  - {name: amount_vs_user, sql: "amount / nullif(user_amount_30d, 0)"}

# What decisions cost: turns flags into money and review load. Every key is optional.
business:
  review_cost: 3.0          # money per reviewed event
  review_capacity: 400      # reviews per day your team can do
  review_catch_rate: 0.9    # share of reviewed fraud that review stops (0..1)
  good_block_cost: 0.3      # money lost per unit of good amount blocked (margin, churn)
"""

BASELINE_YAML = """\
# The strategy in production today, written as rules. Reference: docs/strategy.md
# Decision per event: any matching `allow` rule wins; else `block` if a block rule matches; else `review`
# if a review rule matches; else allow. `when` is a SQL condition over columns, features and detector scores.
name: baseline
description: what production does today
# population: "amount > 0"     # optional: which events the strategy decides (default: all)
params:                         # named values rules read as $name; sliders, --set and sweep change them
  burst: 5
  big_ratio: 4
  farm_users: 3
rules:
  # - name: allow_known_good
  #   when: "user_id IN ('u1', 'u2')"
  #   action: allow
  - name: velocity_burst
    when: "user_orders_1h >= $burst"
    action: block
  - name: shared_device
    when: "device_users_7d >= $farm_users"
    action: review
  - name: unusual_amount
    when: "amount_vs_user >= $big_ratio AND amount > 100"
    action: review
"""

CANDIDATE_YAML = """\
# A proposed change, to compare with the baseline before deploying:
#   riskconsole backtest strategies/candidate.yaml --baseline strategies/baseline.yaml
name: candidate
description: tighter velocity, plus devices with recent confirmed fraud
params:
  burst: 4
  big_ratio: 4
  farm_users: 3
  # model_review: 0.95
rules:
  - name: velocity_burst
    when: "user_orders_1h >= $burst"
    action: block
  - name: shared_device
    when: "device_users_7d >= $farm_users"
    action: review
  - name: unusual_amount
    when: "amount_vs_user >= $big_ratio AND amount > 100"
    action: review
  - name: fraud_device
    when: "device_fraud_28d >= 1"
    action: review
  # After `riskconsole train detectors/lgbm.yaml`, the model's score (0..1, higher is riskier) is a column
  # named after the detector; uncomment this rule and the param above to use it:
  # - name: model_review
  #   when: "lgbm >= $model_review"
  #   action: review
"""

DETECTOR_YAML = """\
# A supervised model whose score rules can read as the column `lgbm`. Reference: docs/detectors.md
# Train it with `riskconsole train detectors/lgbm.yaml` after `riskconsole load`.
name: lgbm
kind: lightgbm             # or an unsupervised one: pyod.iforest, pyod.ecod, pyod.copod, pyod.hbos, pyod.knn
features:                  # columns and features of the frame; never the label or label_time
  - amount
  - user_orders_1h
  - user_amount_30d
  - device_users_7d
  - amount_vs_user
# Set the windows to YOUR dates: train on older labelled events, validate on the weeks after, and backtest
# on later weeks still (a backtest that overlaps these windows gets a warning: its scores are optimistic).
train: {from: 2026-01-01, to: 2026-01-31}
valid: {from: 2026-02-01, to: 2026-02-14}
# No params: the defaults (docs/detectors.md) were chosen by a study over several data sets and stop early on
# the valid window; `riskconsole train --tune N` searches your own (params: {num_leaves: 7} overrides one).
seed: 7
"""

README_MD = """\
# My riskconsole workspace

Written by `riskconsole init`. The documentation is in the `docs/` folder of the riskconsole repository
(start with docs/README.md).

1. Put your events in `data/` (CSV, Parquet or JSON Lines: one row per order, with an id and a time).
2. Edit `data/dataset.yaml`: the `source` path and the column names on the right of `columns:`; delete
   the roles you do not have; adjust or delete the example features so they name your columns.
3. Point riskconsole at this folder (or add `--workspace DIR` to every command), then check and load:

       cd DIR && export RISKCONSOLE_WORKSPACE=$PWD
       riskconsole validate data/dataset.yaml
       riskconsole load                 # prints read = loaded + quarantined; bad rows go to data/quarantine.csv

4. Write your production rules in `strategies/baseline.yaml` and a change in `strategies/candidate.yaml`:

       riskconsole validate strategies/*.yaml
       riskconsole backtest strategies/candidate.yaml --baseline strategies/baseline.yaml --format json,csv,html

5. Optional: set the train/valid dates in `detectors/lgbm.yaml` and `riskconsole train detectors/lgbm.yaml`.
6. The console on this workspace: `riskconsole console` (it reads RISKCONSOLE_WORKSPACE too; http://127.0.0.1:8501).

Generated, safe to delete and rebuild with `riskconsole load`: `data/console.duckdb`, `data/quarantine.csv`,
`data/models/`, `reports/`.
"""

SKELETON = {"data/dataset.yaml": DATASET_YAML, "strategies/baseline.yaml": BASELINE_YAML,
            "strategies/candidate.yaml": CANDIDATE_YAML, "detectors/lgbm.yaml": DETECTOR_YAML, "README.md": README_MD}


def init_workspace(root: Path) -> list[Path]:
    """Write a commented skeleton workspace for the user's own data; return the files written.

    Nothing is written when any of the files already exists.

    Raises:
        RiskConsoleError: a file of the skeleton exists (named in the message), or the folder cannot be written.
    """
    from riskconsole.errors import RiskConsoleError

    root = Path(root)
    targets = [root / name for name in SKELETON]
    existing = next((t for t in targets if t.exists()), None)
    if existing is not None:
        raise RiskConsoleError(f"{existing}: already exists; init never overwrites a file (choose a new folder, "
                               "or move the file away)")
    written = []
    try:
        for name, target in zip(SKELETON, targets):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(SKELETON[name], encoding="utf-8")
            written.append(target)
    except OSError as err:
        raise RiskConsoleError(f"{err.filename or root}: cannot write ({err.strerror})") from None
    return written

"""Detectors: LightGBM and PyOD scorers that strategies read as `scores_<name>` columns (DESIGN.md §4).

- `registry`: the kinds (`KINDS`) and the detector contract (`fit`, `score` in [0, 1]).
- `matrix`: leakage and type guards, time windows, frame rows as float32 matrices.
- `training`: `train_detector`, `train_all`, `rescore_into` (chunked scoring, atomic swap, data-version stamps).
- `card`: model card metrics and Markdown.
- `explain`: reason codes for one event.
"""

from __future__ import annotations

from riskconsole.detectors.explain import explain
from riskconsole.detectors.registry import KINDS, load_detector, make_detector, resolve_kind, valid_kinds
from riskconsole.detectors.training import (TrainResult, rescore_all, rescore_into, score_table, train_all,
                                            train_detector, trained_models)

__all__ = ["KINDS", "TrainResult", "explain", "load_detector", "make_detector", "rescore_all", "rescore_into",
           "resolve_kind", "score_table", "train_all", "train_detector", "trained_models", "valid_kinds"]

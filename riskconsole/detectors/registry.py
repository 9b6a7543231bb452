"""The registry of detector kinds (`kind:` in detectors/*.yaml) and the contract every kind follows.

The contract is pyod's: `fit(X, y=None) -> self`, `score(X) -> ndarray` in [0, 1] (higher is
riskier), fitted state in attributes with a trailing underscore. X is float32 with NaN for missing;
text features arrive encoded as the kind's `text_encoding` says (category codes or frequencies), by
the `Encoding` that training fits and stores on the model as `encoding_` (saved as categories.json).
A kind is a factory `(params, seed) -> detector`; `KINDS` maps every registered name to one.
Any other PyOD model is reachable as `pyod.<ClassName>` (exact class name, e.g. `pyod.OCSVM`).
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from riskconsole.detectors.boosting import LightGBMDetector
from riskconsole.detectors.matrix import Encoding
from riskconsole.detectors.outliers import PyODDetector, PyODKind, pyod_class, pyod_suggestion
from riskconsole.errors import ConfigError

META_FILE = "detector.json"


class DetectorModel(Protocol):
    """What training, scoring, cards and explanations rely on."""

    kind: str
    supervised: bool
    max_fit_rows: int | None
    text_encoding: str
    importance_: np.ndarray

    def fit(self, X: np.ndarray, y: np.ndarray | None = None, valid: tuple[np.ndarray, np.ndarray] | None = None,
            categorical: list[int] | tuple[int, ...] = ()) -> DetectorModel: ...

    def score(self, X: np.ndarray) -> np.ndarray: ...

    def reasons(self, x: np.ndarray) -> dict: ...

    def reasons_batch(self, X: np.ndarray) -> dict: ...

    def describe(self) -> dict: ...

    def save(self, folder: Path) -> None: ...


Factory = Callable[[dict, int], DetectorModel]

KINDS: dict[str, Factory] = {
    "lightgbm": LightGBMDetector,
    "pyod.iforest": PyODKind("pyod.iforest", "IForest", {"n_estimators": 200, "n_jobs": 2}),
    "pyod.ecod": PyODKind("pyod.ecod", "ECOD", {}, frozen_ecdf=True),
    "pyod.copod": PyODKind("pyod.copod", "COPOD", {}, frozen_ecdf=True),
    "pyod.hbos": PyODKind("pyod.hbos", "HBOS", {"n_bins": 20}),
    "pyod.knn": PyODKind("pyod.knn", "KNN", {"n_neighbors": 10, "n_jobs": 2}, max_fit_rows=20_000),
}
GENERIC_PYOD = "pyod.<ClassName>"


def valid_kinds() -> str:
    """The registered kinds, and how to name any other PyOD model, for error messages."""
    return ", ".join(KINDS) + f", or {GENERIC_PYOD} for any other PyOD model (e.g. pyod.OCSVM)"


def resolve_kind(kind: str, where: str) -> Factory:
    """The factory of a `kind:` value.

    Raises:
        ConfigError: unknown kind, listing the valid ones (with a did-you-mean).
    """
    if kind in KINDS:
        return KINDS[kind]
    if kind.startswith("pyod.") and kind[5:]:
        registered = {k.cls: k for k in KINDS.values() if isinstance(k, PyODKind)}
        if kind[5:] in registered:
            return registered[kind[5:]]
        if pyod_class(kind[5:]) is not None:
            return PyODKind(kind, kind[5:], {}, check_inductive=True)
    if kind.startswith("pyod.") and kind[5:]:  # compared without the shared prefix ('pyod.LOF2' is no 'pyod.hbos')
        near = [f"pyod.{k}" for k in difflib.get_close_matches(kind[5:].lower(), [k[5:] for k in KINDS], n=1)]
        cls = None if near else pyod_suggestion(kind[5:])  # any PyOD class may be named: the closest one
        near = near or ([f"pyod.{cls}"] if cls else [])
    else:
        near = difflib.get_close_matches(kind.lower(), list(KINDS), n=1)
    hint = f"did you mean '{near[0]}'? " if near else ""
    raise ConfigError(f"{where}: kind: unknown kind '{kind}' ({hint}valid kinds: {valid_kinds()})")


def make_detector(kind: str, params: dict[str, Any], seed: int, where: str) -> DetectorModel:
    """A fresh, unfitted detector of `kind` (params are checked here, before any data is read)."""
    return resolve_kind(kind, where)(dict(params), seed, where=where)


def encoding_of(model: DetectorModel, features: list[str]) -> Encoding:
    """How `model` reads `features`: its fitted encoding, or numbers only for a model fitted outside training."""
    encoding = getattr(model, "encoding_", None)
    return encoding if encoding is not None else Encoding(tuple(features))


def save_detector(model: DetectorModel, folder: Path, meta: dict) -> None:
    """Write the fitted model, its `categories.json` and `detector.json` (what `load_detector` needs)."""
    model.save(folder)
    encoding_of(model, meta["features"]).save(folder)
    (folder / META_FILE).write_text(json.dumps({"kind": model.kind, **meta}, indent=2) + "\n")


def load_detector(folder: Path) -> tuple[DetectorModel, dict]:
    """A fitted detector and its metadata (name, features, windows) from a model folder."""
    meta = json.loads((folder / META_FILE).read_text())
    loader = LightGBMDetector if meta["kind"] == "lightgbm" else PyODDetector
    model = loader.load(folder)
    model.encoding_ = Encoding.load(folder, meta["features"])
    return model, meta

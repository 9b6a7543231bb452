"""PyOD kinds: unsupervised outlier detectors adapted to the detector contract.

Inputs are robust-standardized with the training medians and spreads stored in the model (missing
values become the median), so distance-based models see comparable units and reason codes are
robust z-scores. The raw PyOD score is mapped to its rank in the training score distribution: a
score of 0.99 means "more unusual than 99% of the training events".

ECOD and COPOD score new rows by re-ranking them together with the training set, so a row's raw
score would depend on the other rows of its batch. Here they score against the frozen training
ECDFs instead (the same formulas, `searchsorted` on the sorted training columns), which gives every
training row exactly its `decision_scores_` and any row the same score alone or in a batch.

Text features reach PyOD frequency-encoded (each value is its share of the training rows, a value never
seen in training is 0; see `matrix.Encoding`): distances between category codes would mean nothing,
while "this browser is rare" is exactly what an outlier detector should notice.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import inspect
import io
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from riskconsole.detectors.matrix import FREQUENCY
from riskconsole.errors import ConfigError

MODEL_FILE = "model.joblib"
FIT_ROWS = 200_000
Z_CAP = 10.0          # cap on |z| in the importance proxy, so one wild value cannot dominate
TOP_SHARE = 0.01      # share of training rows (by score) the importance proxy looks at


def pyod_class(name: str) -> type | None:
    """The PyOD model class `name` (exact spelling), imported lazily, or None."""
    import pyod.models

    key = name.lower().replace("_", "")
    for info in pkgutil.iter_modules(pyod.models.__path__):
        if info.name.replace("_", "") == key:
            try:
                module = importlib.import_module(f"pyod.models.{info.name}")
            except ImportError:
                return None
            found = getattr(module, name, None)
            return found if isinstance(found, type) else None
    return None


def pyod_suggestion(name: str) -> str | None:
    """The PyOD model class spelt closest to `name` (`LOF2` -> `LOF`), by its module's name; None if none is close."""
    import pyod.models

    modules = [m.name for m in pkgutil.iter_modules(pyod.models.__path__) if not m.name.startswith("_")]
    near = difflib.get_close_matches(name.lower().replace("_", ""), [m.replace("_", "") for m in modules], n=1)
    if not near:
        return None
    module = next(m for m in modules if m.replace("_", "") == near[0])
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # a deep model's module prints "please install torch first"
            found = importlib.import_module(f"pyod.models.{module}")
    except ImportError:
        return None
    return next((c for c in vars(found) if c.lower() == near[0] and isinstance(vars(found)[c], type)), None)


@dataclass(frozen=True)
class PyODKind:
    """A registry entry: which PyOD class, its default params, how many rows to fit on."""

    kind: str
    cls: str
    defaults: dict = field(default_factory=dict)
    max_fit_rows: int = FIT_ROWS
    frozen_ecdf: bool = False
    check_inductive: bool = False

    def __call__(self, params: dict, seed: int, where: str = "pyod") -> PyODDetector:
        """A fresh detector; unknown params are refused with a did-you-mean."""
        params = dict(params)
        max_rows = int(params.pop("max_fit_rows", self.max_fit_rows))
        cls = pyod_class(self.cls)
        if cls is None:
            raise ConfigError(f"{where}: kind: PyOD model '{self.cls}' cannot be imported "
                              "(missing optional dependency such as torch?)")
        accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "args", "kwargs")]
        for key in params:
            if key not in accepted:
                near = difflib.get_close_matches(key, accepted, n=1)
                hint = f"did you mean '{near[0]}'?" if near else f"{self.cls} takes: {', '.join(accepted)}"
                raise ConfigError(f"{where}: params: {self.cls} has no parameter '{key}' ({hint})")
        merged = {k: v for k, v in self.defaults.items() if k in accepted} | params
        if "random_state" in accepted:
            merged.setdefault("random_state", seed)
        return PyODDetector(self, merged, seed, max_rows, where)


def _spread(Z: np.ndarray, center: np.ndarray) -> np.ndarray:
    """A robust sigma per column: IQR / 1.349, else 1.2533 × mean |x − median|, else 1."""
    q25, q75 = np.percentile(Z, [25, 75], axis=0)
    spread = (q75 - q25) / 1.349
    mad = np.mean(np.abs(Z - center), axis=0) * 1.2533
    spread = np.where(spread > 0, spread, mad)
    return np.where(spread > 0, spread, 1.0)


def _skew_sign(Z: np.ndarray) -> np.ndarray:
    from scipy.stats import skew

    return np.sign(np.nan_to_num(skew(Z, axis=0)))


class PyODDetector:
    """A PyOD model fitted on standardized training rows; scores are training-distribution ranks."""

    supervised = False
    text_encoding = FREQUENCY

    def __init__(self, spec: PyODKind, params: dict, seed: int, max_fit_rows: int, where: str = "pyod") -> None:
        self.spec, self.kind, self.params, self.seed = spec, spec.kind, params, seed
        self.max_fit_rows, self.where = max_fit_rows, where

    def _standardize(self, X: np.ndarray) -> np.ndarray:
        X = np.where(np.isfinite(X), X, np.nan).astype(np.float64)
        X = np.where(np.isnan(X), self.center_, X)
        return (X - self.center_) / self.scale_

    def fit(self, X: np.ndarray, y: np.ndarray | None = None, valid: tuple[np.ndarray, np.ndarray] | None = None,
            categorical: list[int] | tuple[int, ...] = ()) -> PyODDetector:
        """Fit on at most `max_fit_rows` rows (seeded sample); labels, `valid` and `categorical` are ignored.

        `categorical` is always empty here: text arrives frequency-encoded, which is a number.
        """
        if len(X) > self.max_fit_rows:
            keep = np.random.default_rng(self.seed).choice(len(X), self.max_fit_rows, replace=False)
            X = X[np.sort(keep)]
        finite = np.where(np.isfinite(X), X, np.nan).astype(np.float64)
        self.center_ = np.nan_to_num(np.nanmedian(finite, axis=0))
        filled = np.where(np.isnan(finite), self.center_, finite)
        self.scale_ = _spread(filled, self.center_)
        Z = (filled - self.center_) / self.scale_
        self.model_ = self._fit_model(Z)
        self.train_scores_ = np.sort(self._raw(Z))
        self.importance_ = self._importance(Z)
        self.fit_rows_ = len(X)
        if self.spec.check_inductive:
            self._check_inductive(X)
        return self

    def _fit_model(self, Z: np.ndarray) -> object:
        model = pyod_class(self.spec.cls)(**self.params)
        model.fit(Z)
        if not self.spec.frozen_ecdf:
            return model
        self.ecdf_, self.skew_ = np.sort(Z, axis=0), _skew_sign(Z)
        self.pyod_train_scores_ = np.asarray(model.decision_scores_)  # kept only to prove the formulas agree
        return None  # the ECDFs are the whole model; PyOD's object would hold the training set twice

    def _raw(self, Z: np.ndarray) -> np.ndarray:
        return self._ecdf_raw(Z) if self.spec.frozen_ecdf else np.asarray(self.model_.decision_function(Z))

    def _ecdf_raw(self, Z: np.ndarray) -> np.ndarray:
        """ECOD / COPOD outlier score of each row against the training ECDFs (PyOD's formulas)."""
        n = self.ecdf_.shape[0]
        left = np.empty_like(Z)
        right = np.empty_like(Z)
        for j in range(Z.shape[1]):
            column = self.ecdf_[:, j]
            left[:, j] = np.searchsorted(column, Z[:, j], side="right")
            right[:, j] = n - np.searchsorted(column, Z[:, j], side="left")
        u_l = -np.log(np.maximum(left, 0.5) / n)
        u_r = -np.log(np.maximum(right, 0.5) / n)
        u_skew = u_l * -np.sign(self.skew_ - 1) + u_r * np.sign(self.skew_ + 1)
        if self.spec.cls == "ECOD":
            return np.maximum(np.maximum(u_l, u_r), u_skew).sum(axis=1)
        return np.maximum(u_skew, (u_l + u_r) / 2).sum(axis=1)

    def _importance(self, Z: np.ndarray) -> np.ndarray:
        """Mean capped |z| of the top 1% training rows by score: which features make outliers outlying."""
        raw = self._raw(Z)
        top = max(10, int(len(Z) * TOP_SHARE))
        rows = np.argsort(-raw, kind="stable")[:top]
        return np.minimum(np.abs(Z[rows]), Z_CAP).mean(axis=0)

    def _check_inductive(self, X: np.ndarray) -> None:
        """Refuse models whose score of a row depends on the other rows scored with it."""
        sample = X[:200]
        alone, together = self.score(sample[:20]), self.score(sample)[:20]
        if not np.allclose(alone, together):
            raise ConfigError(f"{self.where}: kind {self.kind}: scores a row differently depending on the other "
                              "rows of its batch, so it cannot score events one by one; pick another PyOD model")

    def score(self, X: np.ndarray) -> np.ndarray:
        """Share of training rows whose raw outlier score is at most this row's, in [0, 1]."""
        raw = self._raw(self._standardize(X))
        return np.searchsorted(self.train_scores_, raw, side="right") / len(self.train_scores_)

    def reasons(self, x: np.ndarray) -> dict:
        """Robust z-score of each feature against the training median and spread."""
        z = self._standardize(x.reshape(1, -1))[0]
        return {"push": z, "typical": self.center_, "spread": self.scale_,
                "method": "robust z-score vs training median (spread = IQR/1.349)"}

    def reasons_batch(self, X: np.ndarray) -> dict:
        """`reasons` for many rows in one call."""
        return {"push": self._standardize(X), "typical": self.center_, "spread": self.scale_,
                "method": "robust z-score vs training median (spread = IQR/1.349)"}

    def describe(self) -> dict:
        """Effective params and the fitted shape, for the model card."""
        return {"params": self.params, "fit_rows": int(self.fit_rows_), "pyod_class": self.spec.cls,
                "scoring": "frozen training ECDFs" if self.spec.frozen_ecdf else "PyOD decision_function",
                "importance_method": f"mean |robust z| (capped at {Z_CAP:g}) over the top {TOP_SHARE:.0%} "
                                     "training rows by outlier score"}

    def save(self, folder: Path) -> None:
        """The whole fitted adapter, pickled by joblib (our own file, never a downloaded one)."""
        import joblib

        joblib.dump(self, folder / MODEL_FILE)

    @classmethod
    def load(cls, folder: Path) -> PyODDetector:
        """A fitted detector from a model folder written by `save`."""
        import joblib

        return joblib.load(folder / MODEL_FILE)

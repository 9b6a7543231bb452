"""The `lightgbm` kind: a supervised gradient-boosted tree model, adapted to the detector contract.

Class imbalance: fraud is ~1% of orders. Rows are not weighted by default: with early stopping on
the validation log-loss the unweighted model ranked better out of time in the defaults study
(bench/RESULTS.md), and its probabilities need only a small correction. `scale_pos_weight: balanced`
restores the former weighting (negatives / positives of the training window). With a validation window the score is then calibrated (`calibration.py`): the booster's
raw log-odds go through an isotonic or Platt map fitted on the validation window, so a score is the
estimated chance of fraud at the training window's base rate. Without one the score is the booster's
probability under the class weights: it ranks events but is not the fraud rate.

Text features arrive as integer category codes fixed on the training rows (`matrix.Encoding`, saved
as categories.json) and are declared with `categorical_feature`, so LightGBM splits on sets of
categories and sends NaN (NULL, unseen or beyond-cap values) down its missing branch. Pandas
categoricals are not used: the booster would keep its own copy of their category order
(`pandas_categorical`) and re-apply it to whatever frame it is given later; codes we fix and store
ourselves cannot drift.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import numpy as np

from riskconsole.detectors.calibration import Calibrator, fit_calibrator
from riskconsole.detectors.matrix import CODES
from riskconsole.errors import ConfigError

# OpenMP threads that spin while waiting make LightGBM 10-100x slower whenever the machine has more
# busy threads than cores (a shared 2-core box): let idle threads sleep. Must be set before
# LightGBM is first imported (it is imported lazily); an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

MODEL_FILE = "model.txt"
COMPILED_FILE = "model.so"
SHAP_FILE = "treeshap.npz"  # the fast TreeSHAP's tables (treeshap.py), written with the model  # optional: the trees compiled to C by tl2cgen (`pip install riskconsole[fast]`)
EXACT = 1e-6
FAST_ROWS = 20_000  # from this many rows on, the bit-vector scorer (quickscorer.py) pays for its set-up
CHECK_ROWS = 512  # rows of the first big batch on which it must equal Booster.predict before it is used
THREADS = 2
FAST_SHAP_ROWS = 256  # batch explanations this big amortise the fast TreeSHAP's set-up (treeshap.py)
# Chosen by bench/detector_defaults.py (table in bench/RESULTS.md): small trees, row and feature
# subsampling, no class weighting (the calibrator fixes the scale; weighting only distorted it) and early
# stopping on the validation log-loss, which is far steadier than average precision on a few hundred
# frauds (AP stopped some demo seeds after 4 trees).
DEFAULTS = {
    "objective": "binary", "learning_rate": 0.05, "num_leaves": 15, "min_data_in_leaf": 100,
    "feature_fraction": 0.8, "bagging_fraction": 0.7, "bagging_freq": 1, "lambda_l2": 1.0,
    "metric": ["binary_logloss", "average_precision", "auc"], "first_metric_only": True, "verbosity": -1,
}
ROUNDS, EARLY_STOP = 500, 50
_FIXED = ("seed", "deterministic", "force_row_wise", "num_threads")  # reproducibility: not user-settable


def _aliases(name: str) -> set[str]:
    from lightgbm.basic import _ConfigAliases

    return set(_ConfigAliases.get(name)) | {name}


def _pop_alias(params: dict, name: str, default: int) -> int:
    """Remove every alias of `name` from params and return its value (or the default)."""
    found = [params.pop(k) for k in list(params) if k in _aliases(name)]
    return int(found[-1]) if found else default


def _check_params(params: dict, where: str) -> None:
    from lightgbm.basic import _ConfigAliases

    known = {a for aliases in _ConfigAliases._get_all_param_aliases().values() for a in aliases}
    for key in params:
        if key not in known:
            near = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"did you mean '{near[0]}'?" if near else "see LightGBM's parameter list"
            raise ConfigError(f"{where}: params: unknown LightGBM parameter '{key}' ({hint})")
        fixed = [f for f in _FIXED if key in _aliases(f)]
        if fixed:
            raise ConfigError(f"{where}: params: '{key}' is fixed by riskconsole for reproducible scores "
                              "(set `seed:` at the top level instead)")


def model_names(features: tuple[str, ...] | list[str]) -> list[str]:
    """The features' names as LightGBM's model.txt may hold them: LightGBM refuses JSON's special characters in a
    name (`"`, `,`, `:`, `[`, `]`, `{`, `}`) and turns white space into `_`, so both become `_`; a name made equal to
    an earlier one gets `_2`, `_3`, ... (model.txt named them Column_0 ... Column_N). Scores read features by place,
    never by name: categories.json keeps the names as written."""
    names: list[str] = []
    for feature in features:
        base = re.sub(r'[",:\[\]{}\s]', "_", feature) or "_"
        name, k = base, 1
        while name in names:
            k += 1
            name = f"{base}_{k}"
        names.append(name)
    return names


class LightGBMDetector:
    """Binary LightGBM on the labelled rows of the training window, early-stopped on the validation window."""

    kind = "lightgbm"
    supervised = True
    max_fit_rows: int | None = None
    text_encoding = CODES  # text features arrive as category codes and are split on natively

    def __init__(self, params: dict | None = None, seed: int = 7, where: str = "lightgbm") -> None:
        params = dict(params or {})
        calibration = params.pop("calibration", "auto")  # ours, not LightGBM's
        _check_params(params, where)
        self.rounds = _pop_alias(params, "num_iterations", ROUNDS)
        self.early_stop = _pop_alias(params, "early_stopping_round", EARLY_STOP)
        if calibration not in ("auto", "isotonic", "platt", "none"):
            raise ConfigError(f"{where}: params: calibration: '{calibration}' is not one of auto, isotonic, platt, none")
        self.params, self.seed, self.where, self.calibration = params, seed, where, calibration
        self.calibrator_: Calibrator | None = None

    def _train_params(self, y: np.ndarray) -> dict:
        params = {**DEFAULTS, **self.params, "seed": self.seed, "deterministic": True,
                  "force_row_wise": True, "num_threads": THREADS}
        if params.get("scale_pos_weight") == "balanced":  # the former default: both classes carry equal weight
            positives = max(int(y.sum()), 1)
            params["scale_pos_weight"] = round((len(y) - positives) / positives, 4)
        return params

    def fit(self, X: np.ndarray, y: np.ndarray | None = None, valid: tuple[np.ndarray, np.ndarray] | None = None,
            categorical: list[int] | tuple[int, ...] = (), callbacks: list | None = None) -> LightGBMDetector:
        """Train on (X, y); with `valid`, stop when its log-loss stops improving, then calibrate on it.

        Args:
            categorical: column indices of X holding category codes (0, 1, ...; NaN = missing), which
                LightGBM splits on as categories (`categorical_feature`) rather than as numbers.
        """
        import lightgbm as lgb

        if y is None:
            raise ValueError("lightgbm is supervised: fit needs labels")
        params = self._train_params(y)
        encoding = getattr(self, "encoding_", None)  # training sets it: model.txt then names the features
        names = model_names(encoding.features) if encoding is not None and len(encoding.features) == X.shape[1] \
            else "auto"
        train = lgb.Dataset(X, label=y, params={"verbosity": -1}, free_raw_data=True, feature_name=names,
                            categorical_feature=list(categorical))
        sets, callbacks = [], list(callbacks or [])
        if valid is not None:
            sets = [lgb.Dataset(valid[0], label=valid[1], reference=train)]
            callbacks += [lgb.early_stopping(self.early_stop, first_metric_only=True, verbose=False)]
        try:
            booster = lgb.train(params, train, num_boost_round=self.rounds, valid_sets=sets, callbacks=callbacks)
        except lgb.basic.LightGBMError as err:  # a callback's own exception (e.g. a spent budget) passes through
            raise ValueError(str(err)) from None
        best = booster.best_iteration or booster.current_iteration()
        # keep exactly the trees that are used, so the saved model and the scores agree bit for bit
        self.booster_ = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
        self.best_iteration_, self.params_ = best, params
        self.importance_ = self.booster_.feature_importance("gain").astype(np.float64)
        self.calibrator_, self.compiled_, self.fast_ = None, None, None
        self.check_rows_ = (valid[0] if valid is not None else X)[:5_000]  # to check compiled trees when saved
        if valid is not None and self.calibration != "none":
            self.calibrator_ = fit_calibrator(self.raw(valid[0]), valid[1], float(np.mean(y)), self.calibration)
        return self

    def raw(self, X: np.ndarray) -> np.ndarray:
        """The booster's raw score (log-odds) of each row: `Booster.predict(X, raw_score=True)`, or the same numbers
        from a faster exact path. From FAST_ROWS rows on (and for any batch once built), the bit-vector scorer (quickscorer.py: bit-identical,
        checked against `Booster.predict` on the first batch); else the compiled trees when the model folder has
        them (checked within 1e-6 when saved); else `Booster.predict`. RISKCONSOLE_COMPILE=0 keeps the last."""
        built = getattr(self, "fast_", None)
        fast = built if built else self._quickscorer(X) if len(X) >= FAST_ROWS else None  # once built, for any batch
        if fast is not None:
            try:
                return fast.raw(X, THREADS)
            except Exception:  # noqa: BLE001 - the other paths are always there
                self.fast_ = False
        compiled = getattr(self, "compiled_", None)
        if compiled is not None:
            try:
                return _compiled_raw(compiled, X)
            except Exception:  # noqa: BLE001 - the pure path is always there
                self.compiled_ = None
        return self.booster_.predict(X, raw_score=True, num_threads=THREADS)

    def _quickscorer(self, X: np.ndarray):
        """The bit-vector scorer of this booster, built on first use and kept only if it gives `Booster.predict`'s
        raw scores on X's first rows within 1e-6 (None when unavailable, unsupported or switched off)."""
        fast = getattr(self, "fast_", None)
        if fast is None:
            self.fast_ = fast = _build_quickscorer(self.booster_, X[:CHECK_ROWS]) if _may_compile() else False
        return fast or None

    @property
    def input_dtype(self) -> type:
        """float64 when only the compiled trees score (they read doubles: no conversion copy), else float32. Either
        way the values are the float32 features, so the scores are the same."""
        tl2cgen_only = getattr(self, "fast_", None) is False or not _may_compile()
        return np.float64 if tl2cgen_only and getattr(self, "compiled_", None) is not None else np.float32

    def score(self, X: np.ndarray) -> np.ndarray:
        """Calibrated chance of fraud in [0, 1]; without a calibrator, the booster's probability."""
        if self.calibrator_ is None:
            return self.booster_.predict(X, num_threads=THREADS)
        return self.calibrator_.apply(self.raw(X))

    def reasons(self, x: np.ndarray) -> dict:
        """Per-feature contributions to the raw (log-odds) score of one row: LightGBM's TreeSHAP."""
        contrib = self.booster_.predict(x.reshape(1, -1), pred_contrib=True, num_threads=1)[0]
        raw = float(self.booster_.predict(x.reshape(1, -1), raw_score=True, num_threads=1)[0])
        return {"push": contrib[:-1], "base": float(contrib[-1]), "raw": raw,
                "method": "LightGBM pred_contrib (SHAP values, log-odds)"}

    def reasons_batch(self, X: np.ndarray) -> dict:
        """`reasons` for many rows in one call: TreeSHAP on the whole batch.

        From FAST_SHAP_ROWS rows on, `treeshap.Explainer` computes the same values as `pred_contrib` (within
        ~1e-12, checked against it on the batch's first rows) 10-50x faster; below, or when it cannot,
        `pred_contrib` itself on both threads.
        """
        if len(X) >= FAST_SHAP_ROWS:
            explainer = getattr(self, "explainer_", None)
            if explainer is None:
                from riskconsole.detectors.treeshap import Explainer

                folder = getattr(self, "folder_", None)
                explainer = self.explainer_ = Explainer(self.booster_, folder / SHAP_FILE if folder else None)
            contrib = explainer.contrib(X, THREADS)
        else:
            contrib = self.booster_.predict(X, pred_contrib=True, num_threads=THREADS)
        raw = self.raw(X)
        score = self.calibrator_.apply(raw) if self.calibrator_ is not None else None  # = score(X), raw once
        return {"push": contrib[:, :-1], "base": contrib[:, -1], "raw": raw, "score": score,
                "method": "LightGBM pred_contrib (SHAP values, log-odds)"}

    def describe(self) -> dict:
        """Effective params and the fitted shape, for the model card."""
        calibration = self.calibrator_.describe() if self.calibrator_ is not None else None
        tuning = self.search_.describe() if getattr(self, "search_", None) is not None else None
        return {"params": self.params_, "best_iteration": self.best_iteration_, "calibration": calibration,
                "tuning": tuning,
                "categorical_columns": self.categorical_columns(),
                "trees": self.booster_.num_trees(), "importance_method": "LightGBM total gain"}

    def categorical_columns(self) -> list[int]:
        """Column indices the booster treats as categorical (read back from the model itself)."""
        found = self.booster_.params.get("categorical_feature") or []
        return [int(j) for j in ([found] if isinstance(found, (int, str)) else found)]

    def save(self, folder: Path) -> None:
        """The text model (LightGBM's own format)."""
        self.booster_.save_model(str(folder / MODEL_FILE))
        if self.calibrator_ is not None:
            self.calibrator_.save(folder)
        check = getattr(self, "check_rows_", None)
        if check is not None and _may_compile():
            _compile(self.booster_, folder, check)
        _save_shap_tables(self.booster_, folder)

    @classmethod
    def load(cls, folder: Path) -> LightGBMDetector:
        """A fitted detector from a model folder written by `save`."""
        import lightgbm as lgb

        model = cls.__new__(cls)
        model.params, model.seed, model.where = {}, 0, str(folder)
        model.booster_ = lgb.Booster(model_file=str(folder / MODEL_FILE))
        model.best_iteration_ = model.booster_.current_iteration()
        model.params_, model.calibration = {}, "auto"
        model.calibrator_ = Calibrator.load(folder)
        model.compiled_ = _load_compiled(folder)
        model.folder_ = folder
        model.importance_ = model.booster_.feature_importance("gain").astype(np.float64)
        return model


def _may_compile() -> bool:
    """False when RISKCONSOLE_COMPILE=0: then `Booster.predict` alone scores (no compiled trees, no bit vectors)."""
    return os.environ.get("RISKCONSOLE_COMPILE", "1") != "0"


def _build_quickscorer(booster, check: np.ndarray):
    """A `quickscorer.Scorer` equal to `Booster.predict` on `check` within 1e-6, or False."""
    try:
        from riskconsole.detectors.quickscorer import Scorer

        scorer = Scorer(booster.dump_model())
        expected = booster.predict(check, raw_score=True, num_threads=THREADS)
        diff = np.abs(scorer.raw(check, THREADS) - expected)
        return scorer if diff.size and float(diff.max()) <= EXACT else False
    except Exception:  # noqa: BLE001 - unsupported model, numba missing or failing: the other paths remain
        return False


def _save_shap_tables(booster, folder: Path) -> None:
    """The fast TreeSHAP's tables beside the model, so batch explanations skip their set-up (optional)."""
    try:
        from riskconsole.detectors.treeshap import Explainer

        Explainer(booster).save(folder / SHAP_FILE)
    except Exception:  # noqa: BLE001 - an optimisation: explain builds the tables itself without the file
        (folder / SHAP_FILE).unlink(missing_ok=True)


def _compiled_raw(predictor, X: np.ndarray) -> np.ndarray:
    import tl2cgen

    # float64 input: the compiled code then compares with LightGBM's own double thresholds
    out = predictor.predict(tl2cgen.DMatrix(np.ascontiguousarray(X, dtype=np.float64)), pred_margin=True)
    return np.asarray(out, dtype=np.float64).reshape(-1)


def _compile(booster, folder: Path, check: np.ndarray) -> bool:
    """Compile the trees with tl2cgen into folder/model.so when tl2cgen and a C compiler are installed,
    keeping it only if it gives `Booster.predict`'s raw scores on `check` within 1e-6."""
    import shutil

    try:
        import tl2cgen
        import treelite
    except ImportError:
        return False
    if not (shutil.which("gcc") or shutil.which("cc")):
        return False
    path = folder / COMPILED_FILE
    try:
        with _quiet_compiler():
            return _compile_checked(tl2cgen, treelite, booster, path, check)
    except Exception:  # noqa: BLE001 - compiling is an optimisation; the text model is what counts
        path.unlink(missing_ok=True)
        return False


def _quiet_compiler():
    """tl2cgen and treelite print progress to stdout and warn through Python: keep the CLI's output clean."""
    import contextlib
    import io
    import warnings

    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    return stack


def _compile_checked(tl2cgen, treelite, booster, path: Path, check: np.ndarray) -> bool:
    # quantize: each row's values are first mapped to their rank among the model's thresholds, so the trees
    # compare small integers; the same decisions (max |diff| 0.0 on the demo), ~1.5x less CPU (bench/RESULTS.md)
    try:
        model = treelite.frontend.from_lightgbm(booster)
        tl2cgen.export_lib(model, toolchain="gcc", libpath=str(path), params={"parallel_comp": THREADS, "quantize": 1},
                           nthread=THREADS, verbose=False)
        predictor = tl2cgen.Predictor(str(path), nthread=THREADS, verbose=False)
        diff = np.abs(_compiled_raw(predictor, check) - booster.predict(check, raw_score=True, num_threads=THREADS))
        if diff.size and float(diff.max()) <= EXACT:
            return True
    except Exception:  # noqa: BLE001 - compiling is an optimisation; the text model is what counts
        pass
    path.unlink(missing_ok=True)
    return False


def _load_compiled(folder: Path):
    """The compiled predictor of a model folder, or None (no model.so, or tl2cgen not installed)."""
    path = folder / COMPILED_FILE
    if not path.exists():
        return None
    try:
        with _quiet_compiler():
            import tl2cgen

            return tl2cgen.Predictor(str(path), nthread=THREADS, verbose=False)
    except Exception:  # noqa: BLE001
        return None

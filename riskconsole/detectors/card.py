"""The model card: how good a detector is out of time, what it reads, how its scores are spread.

`card.json` is data (the console and `report.detector_warnings` read it); `card.md` is its short
human summary. Metrics are computed here in numpy (tests check them against scikit-learn).
"""

from __future__ import annotations

import math
import platform
from dataclasses import dataclass
from importlib import metadata

import numpy as np

from riskconsole import __version__

TOP_SHARES = (0.001, 0.01, 0.05)
BINS = 20
LIBRARIES = ("lightgbm", "pyod", "scikit-learn", "numpy", "duckdb")


def auc_roc(y: np.ndarray, s: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties count half); None without both classes."""
    from scipy.stats import rankdata

    positives = int(y.sum())
    negatives = len(y) - positives
    if not positives or not negatives:
        return None
    ranks = rankdata(s)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def average_precision(y: np.ndarray, s: np.ndarray) -> float | None:
    """Σ (R_k − R_{k−1}) P_k over distinct score thresholds, highest first; None without fraud."""
    if not len(y) or not y.sum():
        return None
    order = np.argsort(-s, kind="mergesort")
    ranked, hits = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]  # last row of each distinct score
    tp, seen = np.cumsum(hits)[last], last + 1
    precision, recall = tp / seen, tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def at_top(y: np.ndarray, s: np.ndarray, share: float) -> dict:
    """Precision and recall when flagging `score >= t`, t = the score of the top `share` of rows."""
    k = max(1, math.ceil(share * len(s)))
    threshold = float(np.partition(s, len(s) - k)[len(s) - k])
    flagged = s >= threshold
    tp, frauds = int(y[flagged].sum()), int(y.sum())
    return {"share": share, "threshold": threshold, "flagged": int(flagged.sum()),
            "precision": tp / int(flagged.sum()), "recall": tp / frauds if frauds else None}


@dataclass
class WindowScores:
    """One card window: its day range, row counts and the (label, score) of its labelled rows."""

    days: dict
    rows: int
    y: np.ndarray
    s: np.ndarray

    def summary(self) -> dict:
        """Counts, label rate and ranking metrics of the window."""
        labelled, frauds = len(self.y), int(self.y.sum())
        out = {**self.days, "rows": self.rows, "labelled": labelled, "frauds": frauds,
               "label_rate": frauds / labelled if labelled else None}
        if labelled:
            out |= {"auc": auc_roc(self.y, self.s), "average_precision": average_precision(self.y, self.s),
                    "top": [at_top(self.y, self.s, share) for share in TOP_SHARES]}
        return out


LEAK_AUC, LEAK_FRAUDS = 0.99, 10  # held-out AUC from which, on this many frauds or more, a card suspects a leak


def leak_warnings(card: dict) -> list[str]:
    """The warning of a model near-perfect out of sample, which usually reads the answer: a column set from the
    label that dataset.yaml does not list under columns.label_derived (a chargeback reason, a case status)."""
    for part in ("valid", "out_of_time"):
        w = card.get(part) or {}
        if w.get("auc") is not None and w["auc"] >= LEAK_AUC and w["frauds"] >= LEAK_FRAUDS:
            top = card["importance"][0] if card.get("importance") else None
            carried = f"; {top['feature']} carries {top['share']:.0%} of the importance" if top else ""
            said = part.replace("_", " ")
            return [f"detector '{card['name']}': {said} AUC {w['auc']:.3f} on {w['frauds']:,} frauds{carried}: a model "
                    "this good out of sample usually reads the answer. If a feature is set from the label (a "
                    "chargeback reason, a case status), list its column under columns.label_derived in "
                    "dataset.yaml, and no model, rule or feature can read it"]
    return []


def histograms(counts: np.ndarray) -> dict:
    """Score histogram over [0, 1] by label, from a (3, BINS) array: rows label 1, label 0, unknown."""
    edges = np.linspace(0.0, 1.0, BINS + 1).round(4).tolist()
    return {"edges": edges, "label_1": counts[0].tolist(), "label_0": counts[1].tolist(),
            "unknown": counts[2].tolist()}


def versions() -> dict:
    """Versions of Python and the libraries that shape a model."""
    out = {"python": platform.python_version(), "riskconsole": __version__}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def importance(features: list[str], values: np.ndarray) -> list[dict]:
    """Features by importance, largest first, with each one's share of the total."""
    total = float(values.sum()) or 1.0
    ranked = sorted(zip(features, values.tolist()), key=lambda p: -p[1])
    return [{"feature": f, "value": round(v, 6), "share": round(v / total, 6)} for f, v in ranked]


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _window_lines(card: dict) -> list[str]:
    lines = ["| window | days | rows | labelled | label rate | AUC | AP | precision / recall @1% |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for part in ("train", "valid", "out_of_time"):
        w = card.get(part)
        if not w:
            continue
        top = next((t for t in w.get("top", []) if t["share"] == 0.01), None)
        pr = f"{_pct(top['precision'])} / {_pct(top['recall'])}" if top else "—"
        shown = "train (in-sample)" if part == "train" else part.replace("_", " ")
        lines.append(f"| {shown} | {w['from']}..{w['to']} | {w['rows']:,} | {w['labelled']:,} | "
                     f"{_pct(w['label_rate'])} | {_num(w.get('auc'))} | {_num(w.get('average_precision'))} | {pr} |")
    return lines


def _shown(value: object) -> str:
    return "NULL" if value is None else repr(str(value))


def _categorical_lines(card: dict) -> list[str]:
    """One line per text feature: how the model reads it, its most frequent training values, unseen values."""
    entries = card.get("categorical") or []
    if not entries:
        return []
    lines = ["", "Text features (categories fixed on the training rows, saved in categories.json):", ""]
    for c in entries:
        top = ", ".join(f"{_shown(t['value'])} {t['share']:.1%}" for t in c["top"][:5]) or "none"
        cap = f"; {c['beyond_cap']:,} rarer values read as unseen" if c["beyond_cap"] else ""
        lines.append(f"- {c['feature']}: {c['encoding']}; {c['categories']:,} values (most frequent: {top}){cap}; "
                     f"a value not seen in training reads as {c['unseen']}")
    return lines


def card_markdown(card: dict) -> str:
    """A short Markdown summary of a card dict."""
    lines = [f"# {card['name']} ({card['kind']})", "",
             f"Trained {card['trained_at']} in {card['training_seconds']:.1f} s on "
             f"{card['fit_rows']:,} rows; seed {card['seed']}; {card['events_scored']:,} events scored.", ""]
    lines += [f"**Warning:** {w}" for w in card.get("warnings") or []] + [""] * bool(card.get("warnings"))
    lines += _window_lines(card)
    lines += ["", f"Feature importance ({card['importance_method']}):", ""]
    lines += [f"- {i['feature']}: {i['share']:.1%}" for i in card["importance"]]
    lines += _categorical_lines(card)
    lines += _calibration_lines(card)
    lines += _tuning_lines(card)
    meaning = card.get("score_meaning") or score_meaning(card["kind"], None)
    lines += ["", f"Scores are in [0, 1], higher is riskier: {meaning} Metrics exclude events whose label is unknown."]
    if "scale_pos_weight" in card["params"] and not card.get("calibration"):
        lines.append(f"Fraud was weighted x{card['params']['scale_pos_weight']:g} in training: the score ranks "
                     "events but is not the fraud probability.")
    return "\n".join(lines + [""])


def score_meaning(kind: str, calibration: dict | None) -> str:
    """One sentence: what a score of this detector means (a probability or a rank)."""
    if kind != "lightgbm":
        return ("the score is a rank, not a probability: 0.99 means more unusual than 99% of the training events "
                "(PyOD scores are never calibrated).")
    if calibration:
        rate = calibration.get("train_rate")
        at = f" ({rate:.2%})" if rate is not None else ""
        return (f"the score is the estimated chance the event is fraud at the training window's fraud rate{at} "
                f"({calibration['method']} calibration on the validation window), so `score >= 0.5` means "
                "\"more likely fraud than not\".")
    return ("the score is the booster's probability, not calibrated (no validation window): it ranks events but "
            "is not the chance of fraud.")


def _calibration_lines(card: dict) -> list[str]:
    """The chosen calibrator and, per held-out window, its reliability diagram and calibration error."""
    cal = card.get("calibration")
    lines = []
    if cal:
        losses = ", ".join(f"{m} {v:.5f}" for m, v in (cal.get("valid_log_loss") or {}).items())
        lines += ["", f"Calibration: {cal['method']} on the validation window"
                  + (f" (out-of-fold log-loss: {losses})" if losses else "")
                  + f"; moved from the validation fraud rate {_pct(cal['valid_rate'])} to the training rate "
                  f"{_pct(cal['train_rate'])} (odds x{cal['odds_ratio']:.3f})."]
    for part in ("valid", "out_of_time"):
        rel = (card.get(part) or {}).get("reliability")
        if not rel:
            continue
        lines += ["", f"Reliability, {part.replace('_', ' ')} (calibration error ECE {rel['ece']:.4f}; "
                  f"{rel['n_bins']} equal-width score bins, empty ones left out):", "",
                  "| mean score | observed fraud rate | events |", "| --- | --- | --- |"]
        lines += [f"| {b['mean_score']:.4f} | {b['observed_rate']:.4f} | {b['count']:,} |" for b in rel["bins"]]
    return lines


def _tuning_lines(card: dict) -> list[str]:
    """The trials of `train --tune`, best first."""
    tuning = card.get("tuning")
    if not tuning:
        return []
    lines = ["", f"Tuning ({tuning['method']}; {len(tuning['trials'])} trials in {tuning['seconds']:.0f} s; the best "
             "settings were then fitted on the whole training window):", "",
             "| trial | AP (mean of splits) | settings | seconds |", "| --- | --- | --- | --- |"]
    for t in sorted(tuning["trials"], key=lambda t: -t["ap"]):
        shown = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in t["params"].items())
        lines.append(f"| {t['trial']} | {t['ap']:.4f} | {shown} | {t['seconds']:.1f} |")
    return lines

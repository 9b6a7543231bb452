"""Every number the product shows: its key, title, display format, definition and formula.

One list, read by the CLI summary, the reports, the console tiles and `docs/report.md`, so a
metric is named and defined once. Keys are those of the report's `overall` block (DESIGN §6).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """A report number: how people call it, how it is shown, what it means."""

    key: str
    title: str
    kind: str           # display format: pct, money, int, compact, ratio
    definition: str     # in words a risk analyst reads
    formula: str        # in terms of other keys
    better: str | None = None   # "higher", "lower" or None (neither is better in itself)


METRICS: tuple[Metric, ...] = (
    Metric("population", "events decided", "int",
           "Events in the window that pass the strategy's `population` filter: everything the strategy decides.",
           "count of events"),
    Metric("flagged", "flagged", "int", "Events the strategy blocks or sends to review.", "blocked + review_cases"),
    Metric("blocked", "blocked", "int", "Events the strategy blocks.", "count of action = block"),
    Metric("tp", "fraud flagged", "int", "Flagged events whose label is fraud (true positives).",
           "flagged and label = 1", "higher"),
    Metric("fp", "good flagged", "int",
           "Flagged events whose label is good: good customers blocked or delayed by review (false positives).",
           "flagged and label = 0", "lower"),
    Metric("fn", "fraud missed", "int", "Fraud events the strategy allows (false negatives).",
           "not flagged and label = 1", "lower"),
    Metric("tn", "good allowed", "int", "Good events the strategy allows (true negatives).",
           "not flagged and label = 0", "higher"),
    Metric("unlabeled_flagged", "unlabelled flagged", "int",
           "Flagged events whose label is not known (yet, or as of `--as-of`); kept out of tp, fp, fn and tn.",
           "flagged and label unknown"),
    Metric("unlabeled_total", "unlabelled", "int",
           "Events of the population whose label is not known; precision and recall ignore them.",
           "label unknown"),
    Metric("precision", "precision", "pct",
           "Of the flagged events with a known label, the share that is fraud. Undefined (—) when nothing "
           "labelled is flagged.", "tp / (tp + fp)", "higher"),
    Metric("recall", "recall", "pct",
           "Of the known fraud events, the share the strategy flags (blocks or reviews). Undefined when the "
           "window has no known fraud.", "tp / (tp + fn)", "higher"),
    Metric("f1", "F1", "pct", "Harmonic mean of precision and recall.",
           "2 · precision · recall / (precision + recall)", "higher"),
    Metric("amount_recall", "amount recall", "pct",
           "Recall weighted by money: the share of known fraud money that sits on flagged events (blocked or "
           "reviewed). Unlike fraud money stopped, a reviewed order counts in full, whatever review then catches.",
           "amount of flagged fraud / amount of all fraud", "higher"),
    Metric("alert_rate", "alert rate", "pct", "Share of the population the strategy flags.",
           "flagged / population"),
    Metric("fraud_amount_stopped", "fraud money stopped", "money",
           "Fraud money the strategy actually stops: all of the blocked fraud, and the share of reviewed fraud that "
           "review catches (`review_catch_rate`). Below amount recall × fraud money whenever review misses some.",
           "fraud amount blocked + review_catch_rate × fraud amount reviewed", "higher"),
    Metric("good_amount_blocked", "good money blocked", "money",
           "Money of good (label 0) events the strategy blocks: sales lost to false declines.",
           "amount of label-0 blocked events", "lower"),
    Metric("review_cases", "review cases", "int", "Events sent to manual review.", "count of action = review",
           "lower"),
    Metric("review_cost", "review cost", "money", "What the review cases cost the team.",
           "review_cases × review_cost", "lower"),
    Metric("net_benefit", "net benefit", "money",
           "Money the strategy saves after its costs: fraud stopped, minus the margin lost on good money blocked, "
           "minus review cost. The number to maximise.",
           "fraud_amount_stopped − good_block_cost × good_amount_blocked − review_cost", "higher"),
    Metric("review_overflow_days", "days over review capacity", "int",
           "Days (UTC) whose review cases are strictly more than `review_capacity`; reviews beyond capacity still "
           "count as reviewed.", "days with review cases > review_capacity", "lower"),
    Metric("review_capacity", "review capacity", "int", "Reviews per day the team can do (from dataset.yaml).",
           "business.review_capacity"),
    Metric("max_daily_reviews", "peak daily reviews", "int", "The most review cases of any one day of the window.",
           "max over days of review cases", "lower"),
    Metric("fraud_total", "known fraud", "int", "Events of the population labelled fraud.", "tp + fn"),
    Metric("fraud_amount", "fraud money", "money", "Money of the events labelled fraud.",
           "amount of label-1 events"),
    Metric("label_coverage", "label coverage", "pct", "Share of the population whose label is known.",
           "(population − unlabeled_total) / population", "higher"),
)

BY_KEY: dict[str, Metric] = {m.key: m for m in METRICS}


def metric(key: str) -> Metric:
    """The definition of one `overall` key."""
    return BY_KEY[key]

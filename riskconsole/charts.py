"""Altair charts of report data (pure functions: data in, chart out)."""

from __future__ import annotations

import altair as alt
import pandas as pd

LABEL_COLORS = alt.Scale(domain=["fraud", "good", "unknown"], range=["#d62728", "#1f77b4", "#aaaaaa"])


def daily_chart(daily: list[dict], capacity: int) -> alt.LayerChart:
    """Alerts, caught fraud and review load per day, with the review capacity as a line."""
    df = pd.DataFrame(daily)
    df["day"] = pd.to_datetime(df["day"])
    long = df.melt("day", ["flagged", "tp", "review_cases"], "series", "events").replace(
        {"series": {"flagged": "alerts", "tp": "caught fraud", "review_cases": "review cases"}})
    lines = alt.Chart(long).mark_line(point=False).encode(
        x=alt.X("day:T", title=None), y=alt.Y("events:Q", title="events per day"),
        color=alt.Color("series:N", title=None, legend=alt.Legend(orient="top")),
        tooltip=["day:T", "series:N", alt.Tooltip("events:Q", format=",")])
    cap = alt.Chart(pd.DataFrame({"capacity": [capacity]})).mark_rule(strokeDash=[6, 4], color="black").encode(
        y="capacity:Q", tooltip=[alt.Tooltip("capacity:Q", title="review capacity", format=",")])
    return (lines + cap).properties(height=280)


def maturity_chart(maturity: list[dict]) -> alt.LayerChart:
    """Share of each day's events still unlabelled, and the fraud rate among labelled ones."""
    df = pd.DataFrame(maturity)
    df["day"] = pd.to_datetime(df["day"])
    base = alt.Chart(df).encode(x=alt.X("day:T", title=None))
    share = base.mark_area(opacity=0.35, color="#aaaaaa").encode(
        y=alt.Y("unlabelled_share:Q", title="unlabelled share", axis=alt.Axis(format="%")),
        tooltip=["day:T", alt.Tooltip("unlabelled_share:Q", format=".1%"), alt.Tooltip("events:Q", format=",")])
    rate = base.mark_line(color="#d62728").encode(
        y=alt.Y("fraud_rate:Q", title="fraud rate (labelled)", axis=alt.Axis(format=".1%")),
        tooltip=["day:T", alt.Tooltip("fraud_rate:Q", format=".2%")])
    return alt.layer(share, rate).resolve_scale(y="independent").properties(height=240)


def histogram_chart(bins: list[dict], title: str) -> alt.Chart:
    """Distribution by label, each label's bars as a share of its own events (so rare fraud stays visible)."""
    df = pd.DataFrame(bins)
    df["share"] = df["events"] / df.groupby("label")["events"].transform("sum").replace(0, 1)
    return alt.Chart(df).mark_bar(opacity=0.55).encode(
        x=alt.X("start:Q", bin="binned", title=title), x2="end:Q",
        y=alt.Y("share:Q", stack=None, title="share of the label's events", axis=alt.Axis(format="%")),
        color=alt.Color("label:N", scale=LABEL_COLORS, title=None),
        tooltip=["label:N", alt.Tooltip("start:Q", format=",.3g"), alt.Tooltip("end:Q", format=",.3g"),
                 alt.Tooltip("events:Q", format=","), alt.Tooltip("share:Q", format=".1%")],
    ).properties(height=220)


def curve_chart(points: list[dict], x: str, y: str, current: dict, x_title: str, y_title: str,
                y_format: str = ",.0f") -> alt.LayerChart:
    """A metric curve over a param or another metric, with the current setting marked."""
    df = pd.DataFrame(points)
    line = alt.Chart(df).mark_line(point=True).encode(
        x=alt.X(f"{x}:Q", title=x_title, scale=alt.Scale(zero=False)),
        y=alt.Y(f"{y}:Q", title=y_title, axis=alt.Axis(format=y_format), scale=alt.Scale(zero=False)),
        tooltip=[alt.Tooltip("value:Q", title="param"), alt.Tooltip(f"{x}:Q", format=",.3g"),
                 alt.Tooltip(f"{y}:Q", format=",.3g")])
    dot = alt.Chart(pd.DataFrame([current])).mark_point(size=160, filled=True, color="#d62728").encode(
        x=f"{x}:Q", y=f"{y}:Q")
    return (line + dot).properties(height=260)


def score_hist_chart(hist: list[dict]) -> alt.Chart:
    """A detector's score histogram by label (rows of start, end, label, events)."""
    return histogram_chart(hist, "score")


def segment_delta_chart(rows: list[dict]) -> alt.Chart:
    """Net-benefit change per segment (candidate minus baseline), losses in red."""
    df = pd.DataFrame([{"segment": r["segment"], "delta": r["delta"]["net_benefit"] or 0.0} for r in rows])
    return alt.Chart(df).mark_bar().encode(
        y=alt.Y("segment:N", sort=None, title=None), x=alt.X("delta:Q", title="net benefit change"),
        color=alt.condition("datum.delta < 0", alt.value("#d62728"), alt.value("#2ca02c")),
        tooltip=["segment:N", alt.Tooltip("delta:Q", format=",.0f")]).properties(height=max(80, 22 * len(df)))

"""Altair charts of report data (pure functions: data in, chart out)."""

from __future__ import annotations

import altair as alt
import pandas as pd

LABEL_COLORS = alt.Scale(domain=["fraud", "good", "unknown"], range=["#d62728", "#1f77b4", "#aaaaaa"])


def daily_chart(daily: list[dict], capacity: int) -> alt.Chart | alt.LayerChart:
    """Alerts, caught fraud and review load per day, with the review capacity as a line (named in the axis title
    instead where it is more than 3x every series, so the lines stay readable)."""
    df = pd.DataFrame(daily)
    df["day"] = pd.to_datetime(df["day"])
    long = df.melt("day", ["flagged", "tp", "review_cases"], "series", "events").replace(
        {"series": {"flagged": "alerts", "tp": "caught fraud", "review_cases": "review cases"}})
    top = float(long["events"].max()) if len(long) else 0.0
    far = capacity > 3 * max(top, 1.0)  # the capacity line would press every series flat against the axis
    title = f"events per day (review capacity {capacity:,}: far above)" if far else "events per day"
    series = ["alerts", "caught fraud", "review cases"]  # three hues apart (two blues looked alike)
    days = df["day"].nunique()
    # A few days: one tick per day (Vega's automatic ticks were hours, each labelled with the same day), and points,
    # since a line of one day draws nothing
    ticks = {"interval": "day", "step": 1} if days <= 10 else alt.Undefined
    axis = alt.Axis(format="%b %d", labelAngle=0, tickCount=ticks)
    lines = alt.Chart(long).mark_line(point=days <= 3).encode(
        x=alt.X("day:T", title=None, axis=axis), y=alt.Y("events:Q", title=title),
        color=alt.Color("series:N", title=None, legend=alt.Legend(orient="top"),
                        scale=alt.Scale(domain=series, range=["#1f77b4", "#2ca02c", "#d62728"])),
        tooltip=["day:T", "series:N", alt.Tooltip("events:Q", format=",")])
    if far:
        return lines.properties(height=280)
    frame = pd.DataFrame({"capacity": [capacity], "label": [f"review capacity {capacity:,}"]})
    cap = alt.Chart(frame).mark_rule(strokeDash=[6, 4], color="black").encode(
        y="capacity:Q", tooltip=[alt.Tooltip("capacity:Q", title="review capacity", format=",")])
    named = alt.Chart(frame).mark_text(align="left", dx=4, dy=-7, fontSize=11, color="#333").encode(
        y="capacity:Q", x=alt.value(0), text="label:N")  # the dashed line says what it is
    return (lines + cap + named).properties(height=280)


LABEL_PX, LABEL_TOP, LABEL_ROW = 11, 14, 16  # maturity labels: font size, first row's top, row pitch (pixels)


def maturity_chart(sources: list[dict]) -> alt.LayerChart:
    """One line per label source: share labelled by age in days (within that many days where labels are dated,
    else labelled now), with each source's mature age marked by a dashed rule."""
    rows, marks = [], []
    for s in sources:
        name = f"{s['source']} ({s['label']})" + (": fraud confirmed" if s["dated"] and s.get("fraud") else "")
        value = "labelled_within" if s["dated"] else "labelled_share"
        rows += [{"source": name, "age": r["age_days"], "share": r[value], "units": r["events"],
                  "measure": ("fraud confirmed within that many days" if s.get("fraud") else
                              "labelled within that many days") if s["dated"] else "labelled now"}
                 for r in s["curve"] if r[value] is not None]
        if s["mature_age"]:
            marks.append({"source": name, "age": s["mature_age"], "text": f"mature: {s['mature_age']} d"})
    color = alt.Color("source:N", title=None, legend=alt.Legend(orient="top", labelLimit=400),
                      scale=alt.Scale(scheme="category10"))
    x = alt.X("age:Q", title="age (days before the last day of data)", axis=alt.Axis(format="d", tickMinStep=1))
    frame = pd.DataFrame(rows)
    ages = frame.groupby("source")["age"].nunique() if rows else pd.Series(dtype=int)
    short = bool((ages < 3).any())  # a line of one age draws nothing: its points are drawn
    flat = rows and frame["share"].nunique() == 1  # one value: Vega's % axis read "0.000000%" on its zero span
    scale = alt.Scale(domain=[0, max(1.0, float(frame["share"].iloc[0]))]) if flat else alt.Undefined
    lines = alt.Chart(frame).mark_line(point=short).encode(
        x=x, y=alt.Y("share:Q", title=_share_title(sources), axis=alt.Axis(format="%"), scale=scale),
        color=color,
        tooltip=["source:N", alt.Tooltip("age:Q", title="age (days)"), alt.Tooltip("share:Q", format=".1%"),
                 "measure:N", alt.Tooltip("units:Q", format=",", title="units of this age")])
    if not marks:
        return lines.properties(height=260)
    rules = alt.Chart(pd.DataFrame(marks)).mark_rule(strokeDash=[6, 4]).encode(
        x="age:Q", color=color, tooltip=["source:N", alt.Tooltip("age:Q", title="mature after (days)")])
    # Each label on its own row (by age), so two close ages ("mature: 39 d", "mature: 44 d") never overlap
    texts = [alt.Chart(pd.DataFrame([mark])).mark_text(align="left", dx=4, baseline="top", fontSize=LABEL_PX).encode(
        x="age:Q", y=alt.value(LABEL_TOP + i * LABEL_ROW), text="text:N", color=color)
        for i, mark in enumerate(sorted(marks, key=lambda m: m["age"]))]
    return alt.layer(lines, rules, *texts).properties(height=260)


def _share_title(sources: list[dict]) -> str:
    """The y axis of the maturity chart: what its lines' shares are of."""
    fraud = {bool(s["dated"] and s.get("fraud")) for s in sources}
    return {frozenset({True}): "share of fraud confirmed", frozenset({False}): "share labelled"}.get(
        frozenset(fraud), "share labelled (fraud: share confirmed)")


def histogram_chart(bins: list[dict], title: str) -> alt.Chart:
    """Distribution by label, each label's bars as a share of its own events (so rare fraud stays visible)."""
    df = pd.DataFrame(bins)
    df["share"] = df["events"] / df.groupby("label")["events"].transform("sum").replace(0, 1)
    centers = df["start"] + 0.5
    whole = bool(((df["end"] - df["start"]) == 1).all() and (centers == centers.round()).all())
    axis = alt.Axis(values=sorted(set(centers.astype(int))), format=",d") if whole else alt.Axis()  # a bar a count
    return alt.Chart(df).mark_bar(opacity=0.55).encode(
        x=alt.X("start:Q", bin="binned", title=title, axis=axis), x2="end:Q",
        y=alt.Y("share:Q", stack=None, title="share of the label's events", axis=alt.Axis(format="%")),
        color=alt.Color("label:N", scale=LABEL_COLORS, title=None),
        tooltip=["label:N", alt.Tooltip("start:Q", format=",.3g"), alt.Tooltip("end:Q", format=",.3g"),
                 alt.Tooltip("events:Q", format=","), alt.Tooltip("share:Q", format=".1%")],
    ).properties(height=220)


def curve_chart(points: list[dict], x: str, y: str, current: dict, x_title: str, y_title: str,
                y_format: str = ",.0f", x_format: str = ",.3~r") -> alt.LayerChart:
    """A metric curve over a param or another metric, with the current setting marked (rates as ".1%" on both
    axes and in the tooltip, as the tiles write them)."""
    df = pd.DataFrame(points)
    line = alt.Chart(df).mark_line(point=True).encode(
        x=alt.X(f"{x}:Q", title=x_title, axis=alt.Axis(format=x_format), scale=alt.Scale(zero=False)),
        y=alt.Y(f"{y}:Q", title=y_title, axis=alt.Axis(format=y_format), scale=alt.Scale(zero=False)),
        tooltip=[alt.Tooltip("value:Q", title="param"), alt.Tooltip(f"{x}:Q", title=x_title, format=x_format),
                 alt.Tooltip(f"{y}:Q", title=y_title, format=y_format)])
    dot = alt.Chart(pd.DataFrame([current])).mark_point(size=160, filled=True, color="#d62728").encode(
        x=f"{x}:Q", y=f"{y}:Q")
    return (line + dot).properties(height=260)


def segment_delta_chart(rows: list[dict]) -> alt.Chart:
    """Net-benefit change per segment (candidate minus baseline), losses in red."""
    df = pd.DataFrame([{"segment": r["segment"], "delta": r["delta"]["net_benefit"] or 0.0} for r in rows])
    return alt.Chart(df).mark_bar().encode(
        y=alt.Y("segment:N", sort=None, title=None), x=alt.X("delta:Q", title="net benefit change"),
        color=alt.condition("datum.delta < 0", alt.value("#d62728"), alt.value("#2ca02c")),
        tooltip=["segment:N", alt.Tooltip("delta:Q", format=",.0f")]).properties(height=alt.Step(28))
    # a step per segment, not a total: the console fits a total height to its column with the axis inside it, which
    # left 5 segments 18 px each and Vega hid every other name (web, video of the demo's channels)


def delta_interval_chart(rows: list[dict]) -> alt.LayerChart:
    """Each rate's change with its 95% interval (rows: metric, delta, low, high, as fractions), zero marked, in
    percentage points as the table beside it says them (+30 pts, not 0.30)."""
    df = pd.DataFrame(rows)
    df[["delta", "low", "high"]] = df[["delta", "low", "high"]] * 100
    base = alt.Chart(df).encode(y=alt.Y("metric:N", sort=None, title=None))
    bars = base.mark_rule(strokeWidth=3, color="#888").encode(
        x=alt.X("low:Q", title="change in points (candidate − baseline)", axis=alt.Axis(format="+~r")), x2="high:Q")
    dots = base.mark_point(filled=True, size=90).encode(
        x="delta:Q", color=alt.condition("datum.delta < 0", alt.value("#d62728"), alt.value("#2ca02c")),
        tooltip=["metric:N", alt.Tooltip("delta:Q", title="change (pts)", format="+.2f"),
                 alt.Tooltip("low:Q", title="low (pts)", format="+.2f"),
                 alt.Tooltip("high:Q", title="high (pts)", format="+.2f")])
    zero = alt.Chart(pd.DataFrame({"x": [0]})).mark_rule(strokeDash=[4, 4]).encode(x="x:Q")
    return (bars + dots + zero).properties(height=44 * len(df) + 30)


def overlap_chart(overlap: dict) -> alt.Chart:
    """Heatmap of the Jaccard overlap between the rules' flagged sets."""
    names = overlap["rules"]
    df = pd.DataFrame([{"a": a, "b": b, "jaccard": overlap["jaccard"][i][j]}
                       for i, a in enumerate(names) for j, b in enumerate(names)])
    return alt.Chart(df).mark_rect().encode(
        x=alt.X("a:N", sort=names, title=None), y=alt.Y("b:N", sort=names, title=None),
        color=alt.Color("jaccard:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]), title="Jaccard"),
        tooltip=["a:N", "b:N", alt.Tooltip("jaccard:Q", format=".2f")]).properties(height=alt.Step(30))
    # a step per rule, not a fixed height: long rotated rule names no longer squash the cells


def frontier_chart(points: list[dict], frontier: list[dict], best: dict | None, capacity_ok: list[bool]) -> alt.LayerChart:
    """Every setting tried (net benefit against review cases), the frontier as a line, the best marked."""
    df = pd.DataFrame(points).assign(fits=["within capacity" if ok else "over capacity" for ok in capacity_ok])
    dots = alt.Chart(df).mark_circle(size=40, opacity=0.6).encode(
        x=alt.X("review_cases:Q", title="review cases (symlog scale)", scale=alt.Scale(type="symlog")),
        y=alt.Y("net_benefit:Q", title="net benefit", scale=alt.Scale(zero=False)),
        color=alt.Color("fits:N", scale=alt.Scale(domain=["within capacity", "over capacity"],
                                                  range=["#2ca02c", "#bbbbbb"]), title=None),
        tooltip=[alt.Tooltip(c, format=",.4g") if df[c].dtype.kind in "fi" else c for c in df.columns
                 if c not in ("fits",)][:12])
    line = alt.Chart(pd.DataFrame(frontier)).mark_line(color="#1f77b4").encode(x="review_cases:Q", y="net_benefit:Q")
    layers = [dots, line]
    if best:
        layers.append(alt.Chart(pd.DataFrame([best])).mark_point(size=220, color="#d62728", filled=True).encode(
            x="review_cases:Q", y="net_benefit:Q"))
    return alt.layer(*layers).properties(height=300)


BAR_PX, TITLE_LINE_PX, AXIS_PX = 26, 16, 40  # a bar with room for its name; a line of axis title; ticks and labels


def importance_chart(importance: list[dict], method: str) -> alt.Chart:
    """Feature importance as horizontal bars (share of the total)."""
    import textwrap

    df = pd.DataFrame(importance)
    title = textwrap.wrap(f"importance ({method})", 48)
    # the console fits the whole chart, axis and title too, into `height`: 4 bars under a two-line title got 120 px
    # in all, 10 px a bar, their names written over each other
    height = BAR_PX * len(df) + TITLE_LINE_PX * len(title) + AXIS_PX
    return alt.Chart(df).mark_bar(color="#1f77b4").encode(  # a long method over lines, feature names whole
        y=alt.Y("feature:N", sort="-x", title=None, axis=alt.Axis(labelLimit=260, labelOverlap=False)),
        x=alt.X("share:Q", title=title, axis=alt.Axis(format="%")),
        tooltip=["feature:N", alt.Tooltip("share:Q", format=".1%")]).properties(height=max(120, height))


def kpi_band_chart(daily: list[dict], metrics: list[str], titles: dict[str, str] | None = None,
                   columns: int = 3, width: int = 225) -> alt.FacetChart:
    """Small multiples, one per metric: the daily value, its band (`expected`, the acceptance region: a point outside
    it is an alert), and alert days as red points; `columns` of charts `width` px wide (a facet cannot take its
    container's width)."""
    rows = []
    for row in daily:
        for key in metrics:
            cell = row.get(key)
            if cell is None:
                continue
            low, high = cell["expected"]
            rows.append({"day": row["day"], "metric": (titles or {}).get(key, key), "value": cell["value"],
                         "low": low, "high": high, "alert": "alert" if cell["alert"] else "normal"})
    df = pd.DataFrame(rows, columns=["day", "metric", "value", "low", "high", "alert"])
    df["day"] = pd.to_datetime(df["day"])
    base = alt.Chart().encode(x=alt.X("day:T", title=None, axis=alt.Axis(format="%b %d", labelAngle=0)))
    bandc = base.mark_area(opacity=0.25, color="#7f9fbf").encode(
        y=alt.Y("low:Q", title=None, axis=alt.Axis(format=",.3~r")), y2="high:Q")  # a flat 0 reads "0", not 0.000000
    line = base.mark_line(color="#333333", strokeWidth=1.4).encode(
        y="value:Q", tooltip=["day:T", "metric:N", alt.Tooltip("value:Q", format=",.4~g"),
                              alt.Tooltip("low:Q", title="band low (below alerts)", format=",.4~g"),
                              alt.Tooltip("high:Q", title="band high (above alerts)", format=",.4~g")])
    points = base.transform_filter(alt.datum.alert == "alert").mark_point(
        color="#d62728", filled=True, size=55).encode(y="value:Q", tooltip=["day:T", "metric:N", "value:Q"])
    return alt.layer(bandc, line, points, data=df).properties(width=width, height=130).facet(
        facet=alt.Facet("metric:N", title=None, header=alt.Header(labelFontSize=13, labelFontWeight="bold")),
        columns=columns).resolve_scale(y="independent")


def waterfall_chart(entry: dict, by: str, top: int = 8) -> alt.LayerChart:
    """Reference → each segment's contribution (mix + rate) → the day's value, as a waterfall."""
    rows = [c for c in entry["contributions"] if c["by"] == by]
    rows = sorted(rows, key=lambda c: -abs(c["contribution"]))
    shown, rest = rows[:top], rows[top:]
    steps = [{"step": f"{by} = {c['segment']}" if by != "rule" else c["segment"], "delta": c["contribution"]}
             for c in shown]
    if rest:
        steps.append({"step": f"{len(rest)} other segments", "delta": sum(c["contribution"] for c in rest)})
    bars, level = [{"step": "reference", "start": 0.0, "end": entry["reference"] or 0.0, "kind": "level"}], \
        entry["reference"] or 0.0
    for s in steps:
        bars.append({"step": s["step"], "start": level, "end": level + s["delta"],
                     "kind": "up" if s["delta"] >= 0 else "down"})
        level += s["delta"]
    bars.append({"step": f"{entry['day']}", "start": 0.0, "end": entry["value"] or 0.0, "kind": "level"})
    df = pd.DataFrame(bars)
    df["order"] = range(len(df))
    color = alt.Scale(domain=["level", "up", "down"], range=["#7f7f7f", "#d62728", "#2ca02c"])
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("step:N", sort=alt.SortField("order"), title=None,
                axis=alt.Axis(labelAngle=-25, labelLimit=240, labelOverlap=False, labelFontSize=12)),
        y=alt.Y("start:Q", title=entry["metric"]), y2="end:Q", color=alt.Color("kind:N", scale=color, legend=None),
        tooltip=["step:N", alt.Tooltip("start:Q", format=",.4~g"), alt.Tooltip("end:Q", format=",.4~g")],
    ).properties(height=300)


def estimate_chart(daily: list[dict]) -> alt.LayerChart:
    """Estimated precision of flagged events (from scores) against early labels, disagreeing days in red."""
    df = pd.DataFrame(daily, columns=["day", "estimated_precision", "early_precision", "labelled_flagged", "flagged",
                                      "disagree"])
    df["day"] = pd.to_datetime(df["day"])
    long = df.melt(["day", "labelled_flagged", "flagged", "disagree"], ["estimated_precision", "early_precision"],
                   "series", "precision").replace({"series": {"estimated_precision": "estimated from scores",
                                                              "early_precision": "early labels"}})
    lines = alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("day:T", title=None), y=alt.Y("precision:Q", axis=alt.Axis(format="%"), title="precision of flagged"),
        color=alt.Color("series:N", title=None, legend=alt.Legend(orient="top")),
        tooltip=["day:T", "series:N", alt.Tooltip("precision:Q", format=".1%"), "labelled_flagged:Q", "flagged:Q"])
    flags = alt.Chart(df[df["disagree"]]).mark_rule(color="#d62728", strokeDash=[4, 3]).encode(
        x="day:T", tooltip=["day:T", alt.Tooltip("early_precision:Q", format=".1%"),
                            alt.Tooltip("estimated_precision:Q", format=".1%")])
    return (lines + flags).properties(height=240)

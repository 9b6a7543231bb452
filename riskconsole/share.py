"""Reports a person reads: one self-contained HTML page (charts as inline SVG, no network) and Markdown for a PR."""

from __future__ import annotations

import html
import re

from riskconsole.charts import daily_chart, segment_delta_chart
from riskconsole.export import fmt

KPIS = [("precision", "precision", "pct"), ("recall", "recall", "pct"), ("amount_recall", "amount recall", "pct"),
        ("net_benefit", "net benefit", "money"), ("fraud_amount_stopped", "fraud money stopped", "money"),
        ("good_amount_blocked", "good money blocked", "money"), ("review_cases", "review cases", "int"),
        ("review_overflow_days", "days over review capacity", "int"), ("alert_rate", "alert rate", "pct")]
_XMLNS = re.compile(r'\s+xmlns(:xlink)?="[^"]*"')


def svg(chart) -> str:
    """An Altair chart as inline SVG (rendered by vl-convert, offline)."""
    import vl_convert

    return _XMLNS.sub("", vl_convert.vegalite_to_svg(chart.to_dict()))


def _delta(value: float | None, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "pct":
        return f"{value * 100:+.2f} pts"
    return f"{value:+,.0f}"


def _interval(interval: list | None, kind: str) -> str:
    if not interval:
        return ""
    return f"95% CI {_delta(interval[0], kind)} … {_delta(interval[1], kind)}"


def kpi_rows(report: dict) -> list[dict]:
    """Each KPI with its value and, in a comparison, the baseline, delta and interval."""
    o, compare = report["overall"], report.get("compare")
    rows = []
    for key, title, kind in KPIS:
        row = {"key": key, "title": title, "value": fmt(o[key], kind), "kind": kind}
        if compare:
            row["baseline"] = fmt(compare["baseline"][key], kind)
            row["delta"] = _delta(compare["delta"].get(key), kind)
            row["interval"] = _interval(compare["intervals"]["delta"].get(key), kind)
        rows.append(row)
    return rows


def _table(headers: list[str], rows: list[list], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(
        f"<td{' class=n' if i >= numeric_from else ''}>{html.escape(str(c))}</td>" for i, c in enumerate(r))
        + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _rules_rows(report: dict) -> list[list]:
    loo = {r["name"]: r for r in report.get("attribution", {}).get("leave_one_out", [])}
    return [[r["name"] + ("" if r["enabled"] else " (off)"), r["action"], f"{r['hits']:,}",
             fmt(r["precision"], "pct"), fmt(r["recall"], "pct"), f"{r['unique_tp']:,}",
             _delta(loo.get(r["name"], {}).get("recall_added"), "pct"),
             _delta(loo.get(r["name"], {}).get("net_benefit_added"), "money")] for r in report["rules"]]


RULE_HEADERS = ["rule", "action", "hits", "precision", "recall", "unique catches", "recall added",
                "net benefit added"]


def _changed_rows(compare: dict) -> list[list]:
    return [[f"{c['before']} → {c['after']}", f"{c['events']:,}", f"{c['fraud']:,}", f"{c['good']:,}",
             f"{c['unlabeled']:,}", fmt(c["fraud_amount"], "money"), fmt(c["good_amount"], "money")]
            for c in compare["changed"]]


CHANGED_HEADERS = ["decision", "events", "fraud", "good", "unlabelled", "fraud money", "good money"]


def _segment_rows(report: dict) -> tuple[list[str], list[list]]:
    compare = report.get("compare") or {}
    if compare.get("segments"):
        rows = [[("⚠ " if r["segment"] in compare["segments"]["worse"] else "") + r["segment"],
                 f"{r['population']:,}", fmt(r["candidate"]["recall"], "pct"), _delta(r["delta"]["recall"], "pct"),
                 fmt(r["candidate"]["precision"], "pct"), _delta(r["delta"]["precision"], "pct"),
                 _delta(r["delta"]["net_benefit"], "money")] for r in compare["segments"]["rows"]]
        return ["segment", "events", "recall", "Δ recall", "precision", "Δ precision", "Δ net benefit"], rows
    rows = [[r["segment"], f"{r['population']:,}", fmt(r["recall"], "pct"), fmt(r["precision"], "pct"),
             fmt(r["net_benefit"], "money"), f"{r['review_cases']:,}"] for r in report["segments"]["rows"]]
    return ["segment", "events", "recall", "precision", "net benefit", "review cases"], rows


def _header(report: dict) -> str:
    compare = report.get("compare")
    versus = f" vs {compare['baseline_strategy']}" if compare else ""
    as_of = f", labels as of {report['as_of']}" if report.get("as_of") else ""
    return (f"{report['strategy']}{versus}: window {report['window']['from']} … {report['window']['to']}{as_of}, "
            f"population {report['overall']['population']:,} events "
            f"({report['overall']['unlabeled_total']:,} unlabelled)")


def html_page(report: dict) -> str:
    """report.html: KPIs and deltas with intervals, charts, rules, changed decisions, segments, warnings."""
    compare = report.get("compare")
    tiles = "".join(
        f"<div class=tile><div class=k>{html.escape(k['title'])}</div><div class=v>{k['value']}</div>"
        + (f"<div class=d>{k['delta']} vs {k['baseline']}</div><div class=ci>{k['interval']}</div>" if compare
           else "") + "</div>" for k in kpi_rows(report))
    parts = [f"<h1>Backtest: {html.escape(report['strategy'])}</h1><p>{html.escape(_header(report))}</p>",
             f"<div class=tiles>{tiles}</div>", "<h2>Warnings</h2><ul>"
             + ("".join(f"<li>{html.escape(w)}</li>" for w in report["warnings"] + (compare or {}).get("warnings", []))
                or "<li>none</li>") + "</ul>",
             "<h2>Daily alerts, caught fraud and review load</h2>"
             + svg(daily_chart(report["daily"], report["overall"]["review_capacity"]).properties(width=960))]
    if compare:
        parts.append("<h2>Decisions that change</h2>" + _table(CHANGED_HEADERS, _changed_rows(compare)))
    parts.append("<h2>Rules</h2>" + _table(RULE_HEADERS, _rules_rows(report), numeric_from=2))
    removal = report.get("attribution", {}).get("removal_candidates")
    if removal:
        parts.append(f"<p>Catch nothing on their own (candidates for removal): {html.escape(', '.join(removal))}</p>")
    if report.get("segments"):
        headers, rows = _segment_rows(report)
        parts.append(f"<h2>Segments by {html.escape(str(report['segments']['by']))}</h2>" + _table(headers, rows))
        if compare and compare.get("segments"):
            parts.append(svg(segment_delta_chart(compare["segments"]["rows"]).properties(width=600)))
    return _PAGE.format(title=html.escape(report["strategy"]), body="\n".join(parts))


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>riskconsole: {title}</title>
<style>body{{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;color:#222}}
.tiles{{display:grid;grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:.6em}}
.tile{{border:1px solid #ddd;border-radius:8px;padding:.6em .9em}}.k{{color:#666;font-size:.85em}}
.v{{font-size:1.5em;font-weight:600}}.d{{font-size:.9em}}.ci{{color:#666;font-size:.8em}}
table{{border-collapse:collapse;margin:.6em 0;font-size:.92em}}th{{text-align:left;border-bottom:2px solid #ccc}}
td,th{{padding:.25em .7em;border-bottom:1px solid #eee}}td.n{{text-align:right}}svg{{max-width:100%;height:auto}}
</style></head><body>
{body}
<p style="color:#888;font-size:.8em">Made by riskconsole; this file needs no network.</p></body></html>
"""


def markdown(report: dict) -> str:
    """report.md: the same content as tables, for pasting into a pull request."""
    compare = report.get("compare")
    lines = [f"# Backtest: {report['strategy']}", "", _header(report) + ".", ""]
    if compare:
        lines += ["| metric | candidate | baseline | change | 95% CI |", "| --- | ---: | ---: | ---: | --- |"]
        lines += [f"| {k['title']} | {k['value']} | {k['baseline']} | {k['delta']} | "
                  f"{k['interval'].removeprefix('95% CI ')} |" for k in kpi_rows(report)]
        lines += ["", "## Decisions that change", "", _md_table(CHANGED_HEADERS, _changed_rows(compare))]
    else:
        lines += ["| metric | value |", "| --- | ---: |"] + [f"| {k['title']} | {k['value']} |" for k in kpi_rows(report)]
    lines += ["", "## Rules", "", _md_table(RULE_HEADERS, _rules_rows(report))]
    if report.get("segments"):
        headers, rows = _segment_rows(report)
        lines += ["", f"## Segments by {report['segments']['by']}", "", _md_table(headers, rows)]
    warnings = report["warnings"] + (compare or {}).get("warnings", [])
    if warnings:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in warnings]
    return "\n".join(lines) + "\n"


def _md_table(headers: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(out)

"""Reports a person reads: one self-contained HTML page (charts as inline SVG, no network) and Markdown for a PR."""

from __future__ import annotations

import re

from riskconsole.escape import html_text as esc
from riskconsole.escape import markdown as md
from riskconsole.escape import xml_safe
from riskconsole.export import fmt, metric_text, why_undefined
from riskconsole.glossary import metric
from riskconsole.report import unit_of

KPIS = ("precision", "recall", "amount_recall", "net_benefit", "fraud_amount_stopped", "good_amount_blocked",
        "review_cases", "review_overflow_days", "alert_rate")  # titles and formats: riskconsole.glossary
_XMLNS = re.compile(r'\s+xmlns(:xlink)?="[^"]*"')


def svg(chart) -> str:
    """An Altair chart as inline SVG (rendered by vl-convert, offline).

    Chart data holds segment values from the data: a control character in one made vl-convert abort
    the process (a panic, not an exception), so every string is made XML-safe first.
    """
    import vl_convert

    return _XMLNS.sub("", vl_convert.vegalite_to_svg(xml_safe(chart.to_dict())))


def _delta(value: float | None, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "pct":
        return f"{value * 100:+.2f} pts"
    return f"{value:+,.0f}"


def _change(key: str, delta: float | None, candidate: dict, baseline: dict, kind: str) -> str:
    """A comparison's delta; where undefined, which side's metric is, and why (`export.why_undefined`)."""
    if delta is None:
        sides = (("candidate", candidate), ("baseline", baseline))
        for side, row in sides:
            if not row:
                return f"— (not in the {side})"
        why = {side: why_undefined(key, row) for side, row in sides if row.get(key) is None}
        if len(set(why.values())) == 1 and len(why) == 2:  # a segment with no fraud at all: neither side's fault
            return f"— (both: {why['candidate']})"
        if why:
            return f"— ({'; '.join(f'{side}: {reason}' for side, reason in why.items())})"
    return _delta(delta, kind)


def _interval(interval: list | None, kind: str) -> str:
    if not interval:
        return ""
    return f"95% CI {_delta(interval[0], kind)} … {_delta(interval[1], kind)}"


def kpi_rows(report: dict) -> list[dict]:
    """Each KPI with its value and, in a comparison, the baseline, delta and interval."""
    o, compare = report["overall"], report.get("compare")
    hidden = (compare or {}).get("bounds") or {}
    rows = []
    for key in KPIS:
        title, kind = metric(key).title, metric(key).kind
        row = {"key": key, "title": title, "value": value_text(key, o), "kind": kind}
        if compare:
            row["baseline"] = metric_text(key, compare["baseline"], kind)
            if _ranged(hidden.get("baseline"), key):
                row["baseline"] = " … ".join(fmt(v, kind) for v in sorted(hidden["baseline"][key]))
            row["delta"] = _change(key, compare["delta"].get(key), o, compare["baseline"], kind)
            if _ranged(hidden.get("delta"), key):
                row["delta"] = " … ".join(_delta(v, kind) for v in sorted(hidden["delta"][key]))
            row["interval"] = _interval(compare["intervals"]["delta"].get(key), kind)
        rows.append(row)
    return rows


def value_text(key: str, overall: dict) -> str:
    """A metric of a report's `overall` as every table writes it: `low … high` where only a range is known (outcomes
    production hid: never a point, DESIGN §6.2), else its value (or why it is undefined)."""
    kind = metric(key).kind
    if _ranged(overall.get("bounds"), key):
        return " … ".join(fmt(v, kind) for v in sorted(overall["bounds"][key]))
    return metric_text(key, overall, kind)


def _ranged(bounds: dict | None, key: str) -> bool:
    """Whether the metric has bounds over the outcomes production hid that are a range, not a point."""
    pair = (bounds or {}).get(key)
    return bool(pair) and None not in pair and pair[0] != pair[1]


def top_table(card: dict) -> tuple[list[dict], str] | None:
    """The `top` rows the Detectors page shows (the out-of-time window's, else the validation window's) and the line
    saying what they count: a share of that window's LABELLED events, ranked by score (`detectors.card.at_top`), so 5% of a window
    whose labels are young can be one event. None without such a window."""
    for part in ("out_of_time", "valid"):
        window = card.get(part) or {}
        if window.get("top"):
            return window["top"], (
                f"Top scores of the {part.replace('_', '-')} window ({window['from']} … {window['to']}): each share is "
                f"of its {window['labelled']:,} labelled events of {window['rows']:,} (unlabelled events are not "
                "ranked), flagged at or above the threshold.")
    return None


def removal_text(report: dict) -> str | None:
    """The report's removal candidates as every face says them (a candidate that alone flags unlabelled events is
    named again in the warnings: `report.removal_warnings`), with what those that add net benefit would lose (a rule
    blocking fraud another rule only reviews catches nothing on its own and still pays)."""
    attribution = report.get("attribution", {})
    names = attribution.get("removal_candidates")
    if not names:
        return None
    added = {row["name"]: row.get("net_benefit_added") for row in attribution.get("leave_one_out", [])}
    paying = [f"{name} adds {_delta(added[name], 'money')}" for name in names
              if (added.get(name) or 0) >= 0.5]  # (what reads +1 at least: never 'adds +0')
    lose = f"; but {', '.join(paying)} net benefit, which removing {'it' if len(paying) == 1 else 'them'} would lose"
    return "Catch no labelled fraud on their own (candidates for removal): " + ", ".join(names) + lose * bool(paying)


def _table(headers: list[str], rows: list[list], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(
        f"<td{' class=n' if i >= numeric_from else ''}>{esc(str(c))}</td>" for i, c in enumerate(r))
        + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _rules_rows(report: dict) -> list[list]:
    loo = {r["name"]: r for r in report.get("attribution", {}).get("leave_one_out", [])}
    return [[r["name"] + ("" if r["enabled"] else " (off)"), r["action"], f"{r['hits']:,}",
             metric_text("precision", r), metric_text("recall", r), f"{r['unique_tp']:,}",
             _delta(loo.get(r["name"], {}).get("recall_added"), "pct"),
             _delta(loo.get(r["name"], {}).get("net_benefit_added"), "money")] for r in report["rules"]]


RULE_HEADERS = ["rule", "action", "hits", "precision", "recall", "unique catches", "recall added",
                "net benefit added"]


def changed_rows(compare: dict) -> list[list]:
    return [[f"{c['before']} → {c['after']}", f"{c['events']:,}", f"{c['fraud']:,}", f"{c['good']:,}",
             f"{c['unlabeled']:,}", fmt(c["fraud_amount"], "money"), fmt(c["good_amount"], "money")]
            for c in compare["changed"]]


def changed_headers(report: dict) -> list[str]:
    """Headers of the "decisions that change" rows; the count is of the report's unit (events, merchant periods)."""
    return ["decision", unit_of(report), "fraud", "good", "unlabelled", "fraud money", "good money"]


def _side_change(key: str, row: dict) -> str:
    return _change(key, row["delta"][key], row["candidate"], row["baseline"], metric(key).kind)


def segment_table(report: dict) -> tuple[list[str], list[list]]:
    """(headers, rows as text) of the report's segments: the html and markdown reports and the console show this."""
    compare = report.get("compare") or {}
    if compare.get("segments"):
        rows = [[("⚠ " if r["segment"] in compare["segments"]["worse"] else "") + r["segment"],
                 f"{r['population']:,}", metric_text("recall", r["candidate"]), _side_change("recall", r),
                 metric_text("precision", r["candidate"]), _side_change("precision", r),
                 _side_change("net_benefit", r)] for r in compare["segments"]["rows"]]
        return ["segment", "events", "recall", "Δ recall", "precision", "Δ precision", "Δ net benefit"], rows
    rows = [[r["segment"], f"{r['population']:,}", metric_text("recall", r), metric_text("precision", r),
             fmt(r["net_benefit"], "money"), f"{r['review_cases']:,}"] for r in report["segments"]["rows"]]
    return ["segment", "events", "recall", "precision", "net benefit", "review cases"], rows


def _header(report: dict, text=str) -> str:
    """The one-line summary under the title; `text` escapes the names in it for the medium."""
    compare = report.get("compare")
    versus = f" vs {text(compare['baseline_strategy'])}" if compare else ""
    as_of = f", labels as of {report['as_of']} UTC" if report.get("as_of") else ""
    window = report["window"]
    return (f"{text(report['strategy'])}{versus}: window {window['from']} … {window['to']} (UTC days){as_of}, "
            f"population {report['overall']['population']:,} {unit_of(report)} "
            f"({report['overall']['unlabeled_total']:,} unlabelled)")


def html_page(report: dict) -> str:
    """report.html: KPIs and deltas with intervals, charts, rules, changed decisions, segments, warnings."""
    from riskconsole.charts import daily_chart, segment_delta_chart  # altair: only for the pages that draw

    compare = report.get("compare")
    tiles = "".join(
        f"<div class=tile><div class=k>{esc(k['title'])}</div><div class=v>{esc(k['value'])}</div>"
        + (f"<div class=d>{esc(k['delta'])} vs {esc(k['baseline'])}</div><div class=ci>{esc(k['interval'])}</div>"
           if compare else "") + "</div>" for k in kpi_rows(report))
    description = f"<p><em>{esc(report['description'])}</em></p>" if report.get("description") else ""
    parts = [f"<h1>Backtest: {esc(report['strategy'])}</h1>{description}<p>{esc(_header(report))}</p>",
             f"<div class=tiles>{tiles}</div>", "<h2>Warnings</h2><ul>"
             + ("".join(f"<li>{esc(w)}</li>" for w in report["warnings"] + (compare or {}).get("warnings", []))
                or "<li>none</li>") + "</ul>",
             "<h2>Daily alerts, caught fraud and review load (per UTC day)</h2>"
             + svg(daily_chart(report["daily"], report["overall"]["review_capacity"]).properties(width=960))]
    if compare:
        parts.append("<h2>Decisions that change</h2>" + _table(changed_headers(report), changed_rows(compare)))
    parts.append("<h2>Rules</h2>" + _table(RULE_HEADERS, _rules_rows(report), numeric_from=2))
    removal = removal_text(report)
    if removal:
        parts.append(f"<p>{esc(removal)}</p>")
    if report.get("segments"):
        headers, rows = segment_table(report)
        parts.append(f"<h2>Segments by {esc(str(report['segments']['by']))}</h2>" + _table(headers, rows))
        if compare and compare.get("segments"):
            parts.append(svg(segment_delta_chart(compare["segments"]["rows"]).properties(width=600)))
    return _PAGE.format(title=esc(report["strategy"]), body="\n".join(parts))


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
    """report.md: the same content as tables, for pasting into a pull request.

    Every text that comes from a user or from data (names, description, segment values, warnings) goes
    through `escape.markdown`: one line, no heading, link, image or HTML can start from it.
    """
    compare = report.get("compare")
    lines = [f"# Backtest: {md(report['strategy'])}", ""]
    if report.get("description"):
        lines += [f"_{md(report['description'])}_", ""]
    lines += [_header(report, md) + ".", ""]
    if compare:
        lines += ["| metric | candidate | baseline | change | 95% CI |", "| --- | ---: | ---: | ---: | --- |"]
        lines += [_md_row([k["title"], k["value"], k["baseline"], k["delta"], k["interval"].removeprefix("95% CI ")])
                  for k in kpi_rows(report)]
        lines += ["", "## Decisions that change", "", _md_table(changed_headers(report), changed_rows(compare))]
    else:
        lines += ["| metric | value |", "| --- | ---: |"] + [_md_row([k["title"], k["value"]]) for k in kpi_rows(report)]
    lines += ["", "## Rules", "", _md_table(RULE_HEADERS, _rules_rows(report))]
    removal = removal_text(report)
    if removal:
        lines += ["", md(removal)]
    if report.get("segments"):
        headers, rows = segment_table(report)
        lines += ["", f"## Segments by {md(report['segments']['by'])}", "", _md_table(headers, rows)]
    warnings = report["warnings"] + (compare or {}).get("warnings", [])
    if warnings:
        lines += ["", "## Warnings", ""] + [f"- {md(w)}" for w in warnings]
    return "\n".join(lines) + "\n"


def _md_row(cells: list) -> str:
    """One table row; each cell escaped (a `|` in a value stays inside its cell)."""
    return "| " + " | ".join(md(c, line_start=False) for c in cells) + " |"


def _md_table(headers: list[str], rows: list[list]) -> str:
    out = [_md_row(headers), "|" + " --- |" * len(headers)]
    out += [_md_row(r) for r in rows]
    return "\n".join(out)


# ---------------------------------------------------------------- monitor.html / monitor.md

MONITOR_KPIS = ("alert_rate", "blocked", "review_cases", "review_load", "fraud_amount_stopped", "precision", "recall",
                "label_coverage")
KPI_TITLES = {"alert_rate": "alert rate", "blocked": "blocked", "review_cases": "review cases",
              "review_load": "review load (× capacity)", "fraud_amount_stopped": "caught money",
              "precision": "precision (labels so far)", "recall": "recall (labels so far)",
              "label_coverage": "label maturity (never alerts)"}
BAND_NOTE = ("The shaded band is each day's acceptance region: a point outside it alerts (red), a point inside it "
             "does not. A count or a rate also needs an exact Poisson or binomial tail as small as the ±4-spread "
             "band's, so a small count's band reaches higher than its spread alone. Precision and recall never alert "
             "on a day whose labels are immature (the band covers 0–100% there), caught money alerts there only "
             "above, review load only above its band and over capacity, and label maturity never.")


def _monitor_header(result: dict) -> str:
    w, r = result["window"], result["reference"]
    return (f"window {w['from']} … {w['to']} against reference {r['from']} … {r['to']} (UTC days), labels known by "
            f"{result['labels_known_by']}; bands: {result['method']['band']}")


def alert_rows(result: dict) -> list[list]:
    """The monitor's alerts as text rows under `ALERT_HEADERS` (monitor.html, monitor.md and the Monitor page)."""
    return [[a["day"], a["metric"], fmt(a["value"]), f"{fmt(a['expected'][0])} … {fmt(a['expected'][1])}",
             ", ".join(a["top"])] for a in result["alerts"]]


def _drift_rows(result: dict, top: int = 15) -> list[list]:
    return [[d["column"], d["kind"], f"{d['psi']:.3f}", "—" if d["js_distance"] is None else f"{d['js_distance']:.3f}",
             "—" if d["max_daily_psi"] is None else f"{d['max_daily_psi']:.3f} ({d['max_day']})",
             "; ".join(f"{b['bin']}: {b['reference']:.1%} → {b['window']:.1%}" for b in d["bins"][:3])]
            for d in result.get("drift", [])[:top]]


def _incident_rows(result: dict) -> list[list]:
    from riskconsole.monitor import incident_row

    return [[r["incident"], (r["first_day"] if r["days"] == 1 else f"{r['first_day']} … {r['last_day']}")
             + (" (ongoing)" if r["ongoing"] else ""), r["days"],
             r["alerts"], r["rules"] or "—", r["top"] or "—", r["metrics"], f"{r['lead']} {fmt(r['size'])}"]
            for r in map(incident_row, result.get("incidents", []))]


INCIDENT_HEADERS = ["#", "days", "days alerting", "alerts", "rules", "top segments", "metrics that moved",
                    "beyond the band"]
ALERT_HEADERS = ["day", "metric", "value", "expected", "top segments"]
CLUSTER_HEADERS = ["group", "rule condition", "since", "events since", "per day", "usual per day", "lift", "p"]


def _cluster_rows(result: dict) -> list[list]:
    return [[c["group"], c["when"], c["since"], f"{c['events_since']:,}", f"{c['per_day']:,.1f}",
             f"{c['usual_per_day']:,.2f}", f"{c['lift']:,.1f}×", f"{c['p_value']:.1e}"] for c in result["clusters"]]


def _estimate_text(estimate: dict) -> str:
    gaps = [d["day"] for d in estimate["daily"] if d["disagree"]]
    return (f"Precision of flagged events estimated from {estimate['detector']}'s calibrated score (CBPE) against "
            f"the labels already in: {len(gaps)} day(s) disagree by more than 3 standard errors"
            + (f" ({', '.join(gaps)})" if gaps else "") + ".")
DRIFT_HEADERS = ["column", "kind", "PSI", "JS distance", "worst day PSI", "bins that moved most"]


def monitor_html(result: dict) -> str:
    """monitor.html: incidents, KPI bands with alert days, alerts with their top segments, attribution waterfalls, drift."""
    from riskconsole.charts import kpi_band_chart, waterfall_chart

    parts = [f"<h1>Monitor: {esc(result['strategy'])}</h1><p>{esc(_monitor_header(result))}</p>"
             + "".join(f"<p><strong>Warning:</strong> {esc(w)}</p>" for w in result.get("warnings", [])),
             f"<h2>Incidents ({len(result.get('incidents', []))})</h2><p>Alerts that share a cause (a rule) on days "
             "at most two apart, reported once.</p>" + _table(INCIDENT_HEADERS, _incident_rows(result), numeric_from=len(INCIDENT_HEADERS)),
             f"<h2>Daily KPIs against their expected band</h2><p>{esc(BAND_NOTE)}</p>"
             + svg(kpi_band_chart(result["daily"], list(MONITOR_KPIS), KPI_TITLES, columns=2)),
             f"<h2>Alerts ({len(result['alerts'])})</h2>" + _table(ALERT_HEADERS, alert_rows(result), numeric_from=2)]
    for entry in result["attribution"][:5]:
        by = next((c["by"] for c in entry["contributions"] if c["by"] != "rule"), "rule")
        parts.append(f"<h3>{esc(entry['metric'])} on {esc(entry['day'])}: why</h3>"
                     + svg(waterfall_chart(entry, by).properties(width=700)))
    parts.append("<h2>Drift against the reference</h2>" + _table(DRIFT_HEADERS, _drift_rows(result), numeric_from=2))
    if result.get("estimate"):
        from riskconsole.charts import estimate_chart

        parts.append(f"<h2>Early warning before labels arrive</h2><p>{esc(_estimate_text(result['estimate']))}</p>"
                     + svg(estimate_chart(result["estimate"]["daily"]).properties(width=900)))
    if result.get("clusters"):
        parts.append("<h2>Possible attacks the strategy lets through</h2>"
                     + _table(CLUSTER_HEADERS, _cluster_rows(result), numeric_from=3))
    return _PAGE.format(title=esc(result["strategy"]) + " monitor", body="\n".join(parts))


def monitor_markdown(result: dict) -> str:
    """monitor.md: the incidents, the alerts and the drift table, for a ticket or a pull request."""
    lines = [f"# Monitor: {md(result['strategy'])}", "", md(_monitor_header(result)) + ".", "",
             *[f"**Warning:** {md(w)}\n" for w in result.get("warnings", [])],
             f"## Incidents ({len(result.get('incidents', []))})", "",
             _md_table(INCIDENT_HEADERS, _incident_rows(result)), "",
             f"## Alerts ({len(result['alerts'])})", "", _md_table(ALERT_HEADERS, alert_rows(result)), "",
             "## Drift against the reference", "", _md_table(DRIFT_HEADERS, _drift_rows(result))]
    if result.get("estimate"):
        lines += ["", "## Early warning before labels arrive", "", md(_estimate_text(result["estimate"]))]
    if result.get("clusters"):
        lines += ["", "## Possible attacks the strategy lets through", "",
                  _md_table(CLUSTER_HEADERS, _cluster_rows(result))]
    return "\n".join(lines) + "\n"

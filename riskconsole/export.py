"""Turn a backtest into files: report.json, rules.csv, daily.csv, decisions.parquet, report.html, report.md.

Each file is rendered to bytes by one function, so the CLI and the console write the same bytes.
"""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from riskconsole.errors import RiskConsoleError

FORMATS = ("json", "csv", "html", "md")
_KPIS = [("precision", "pct"), ("recall", "pct"), ("amount_recall", "pct"), ("alert_rate", "pct"),
         ("fraud_amount_stopped", "money"), ("good_amount_blocked", "money"), ("review_cases", "int"),
         ("review_cost", "money"), ("net_benefit", "money"), ("review_overflow_days", "int"),
         ("tp", "int"), ("fp", "int"), ("fn", "int"), ("tn", "int"), ("unlabeled_flagged", "int"),
         ("unlabeled_total", "int")]


def parse_formats(text: str) -> list[str]:
    """`json,csv` -> ['json', 'csv']; an unknown format is an error."""
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise RiskConsoleError(f"--format {text}: unknown format {', '.join(bad) or '(none)'} "
                               f"(choose from {', '.join(FORMATS)})")
    return formats


def fmt(value: object, kind: str = "num") -> str:
    """Format a number for people: percentages, money with thousands separators, counts."""
    if value is None:
        return "—"
    if kind == "pct":
        return f"{value:.1%}" if abs(value) >= 0.1 else f"{value:.2%}"
    if kind == "money":
        return f"{value:,.0f}"
    if kind == "compact":
        size = abs(value)
        for limit, unit, suffix in ((1e9, 1e9, "B"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
            if size >= limit:
                return f"{value / unit:,.1f}{suffix}" if size < 100 * unit else f"{value / unit:,.0f}{suffix}"
        return f"{value:,.0f}"
    if kind == "int":
        return f"{int(value):,}"
    return f"{value:,.4g}" if isinstance(value, float) else str(value)


def json_bytes(report: dict) -> bytes:
    """report.json."""
    return (json.dumps(report, indent=2, default=str, allow_nan=False) + "\n").encode()


def table_csv_bytes(rows: list[dict]) -> bytes:
    """A list of flat-ish dicts as CSV (nested dicts flattened as `key.sub`)."""
    flat = [_flatten(r) for r in rows]
    columns = list(dict.fromkeys(k for r in flat for k in r))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in flat)
    return buffer.getvalue().encode()


def _flatten(row: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in row.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def parquet_bytes(table: pa.Table) -> bytes:
    """decisions.parquet."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def markdown(report: dict) -> str:
    """report.md: KPIs, rules and warnings as Markdown tables, for a pull request."""
    o = report["overall"]
    lines = [f"# Backtest: {report['strategy']}", "",
             f"Window {report['window']['from']} … {report['window']['to']}"
             + (f", labels as of {report['as_of']}" if report.get("as_of") else "")
             + f", population {o['population']:,} events.", "",
             "| metric | value |", "| --- | ---: |"]
    lines += [f"| {k} | {fmt(o[k], kind)} |" for k, kind in _KPIS]
    lines += ["", "## Rules", "", "| rule | action | hits | precision | recall | unique catches |",
              "| --- | --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['name']}{'' if r['enabled'] else ' (off)'} | {r['action']} | {r['hits']:,} | "
              f"{fmt(r['precision'], 'pct')} | {fmt(r['recall'], 'pct')} | {r['unique_tp']:,} |"
              for r in report["rules"]]
    if report["warnings"]:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in report["warnings"]]
    return "\n".join(lines) + "\n"


def html_page(report: dict) -> str:
    """report.html: one self-contained page (no external resources)."""
    o = report["overall"]
    tiles = "".join(f"<div class=tile><div class=k>{html.escape(k.replace('_', ' '))}</div>"
                    f"<div class=v>{fmt(o[k], kind)}</div></div>" for k, kind in _KPIS[:10])
    rules = "".join(
        f"<tr><td>{html.escape(r['name'])}</td><td>{r['action']}</td><td>{r['hits']:,}</td>"
        f"<td>{fmt(r['precision'], 'pct')}</td><td>{fmt(r['recall'], 'pct')}</td><td>{r['unique_tp']:,}</td></tr>"
        for r in report["rules"])
    days = "".join(f"<tr><td>{d['day']}</td><td>{d['population']:,}</td><td>{d['flagged']:,}</td>"
                   f"<td>{d['tp']:,}</td><td>{d['fp']:,}</td><td>{d['review_cases']:,}</td></tr>"
                   for d in report["daily"])
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in report["warnings"])
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(report['strategy'])}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}.tiles{{display:flex;flex-wrap:wrap;gap:.6em}}
.tile{{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:9em}}.k{{color:#666;font-size:.85em}}
.v{{font-size:1.4em;font-weight:600}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border-bottom:1px solid #eee;padding:.3em .8em;text-align:right}}td:first-child,th:first-child{{text-align:left}}
</style></head><body><h1>Backtest: {html.escape(report['strategy'])}</h1>
<p>Window {report['window']['from']} … {report['window']['to']} · population {o['population']:,}</p>
<div class=tiles>{tiles}</div><h2>Warnings</h2><ul>{warnings or '<li>none</li>'}</ul>
<h2>Rules</h2><table><tr><th>rule</th><th>action</th><th>hits</th><th>precision</th><th>recall</th>
<th>unique catches</th></tr>{rules}</table>
<h2>Daily</h2><table><tr><th>day</th><th>population</th><th>flagged</th><th>tp</th><th>fp</th><th>reviews</th></tr>
{days}</table></body></html>
"""


def render_files(report: dict, formats: list[str], decisions: pa.Table | None = None) -> dict[str, bytes]:
    """File name -> bytes for the requested formats (report.json always)."""
    files = {"report.json": json_bytes(report)}
    if "csv" in formats:
        files["rules.csv"] = table_csv_bytes(report["rules"])
        files["daily.csv"] = table_csv_bytes(report["daily"])
        if decisions is not None:
            files["decisions.parquet"] = parquet_bytes(decisions)
    if "html" in formats:
        files["report.html"] = html_page(report).encode()
    if "md" in formats:
        files["report.md"] = markdown(report).encode()
    return files


def write_files(files: dict[str, bytes], out_dir: Path) -> list[Path]:
    """Write each file atomically (temp name, then rename)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in files.items():
        target = out_dir / name
        tmp = target.with_name(f".{name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
        written.append(target)
    return written

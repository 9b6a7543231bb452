"""Turn a backtest into files: report.json, rules.csv, daily.csv, decisions.parquet, report.html, report.md.

Each file is rendered to bytes by one function, so the CLI and the console write the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from riskconsole.errors import RiskConsoleError
from riskconsole.escape import csv_cell

if TYPE_CHECKING:
    import pyarrow as pa

FORMATS = ("json", "csv", "parquet", "html", "md")  # csv: rules.csv, daily.csv and decisions.parquet


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


RATIO_KINDS = {"precision": "pct", "recall": "pct", "f1": "pct", "amount_recall": "pct", "alert_rate": "pct"}


def why_undefined(key: str, row: Mapping) -> str:
    """Why metric `key` of `row` (a report's overall, a rule, a segment, a leave-one-out row) has no value: the
    count its formula divides by is zero. In a few words a risk analyst reads ("no hits", "no fraud labelled")."""
    base = key.removesuffix("_added").removesuffix("_without")
    without = "_without" if base != key else ""  # leave-one-out: the counts of the strategy without the rule
    if base == "f1":
        for part in ("precision", "recall"):
            if row.get(part + without) is None and part + without in row:
                return why_undefined(part + without, row)
        return why_undefined("precision" + without, row)
    if base in ("recall", "amount_recall"):
        return "no fraud labelled"
    if base == "alert_rate":
        return "no events"
    if base != "precision":
        return "undefined"
    if without:  # undefined without the rule, or for the whole strategy
        labelled = (row.get("tp_without") or 0) + (row.get("fp_without") or 0)
        return "no labelled hits without it" if labelled == 0 else "no labelled hits"
    hits = next((row[k] for k in ("hits", "flagged") if row.get(k) is not None), None)
    return "no hits" if hits == 0 else "no labelled hits"


def metric_text(key: str, row: Mapping, kind: str | None = None) -> str:
    """Metric `key` of `row` as people read it: its value (`fmt`), or `— (no hits)` where it is undefined (null in
    report.json): every page, the CLI and the markdown/html reports show an undefined metric this one way."""
    value = row.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"— ({why_undefined(key, row)})"
    base = key.removesuffix("_added").removesuffix("_without")
    if kind is None:
        from riskconsole.glossary import BY_KEY

        kind = RATIO_KINDS.get(base) or (BY_KEY[base].kind if base in BY_KEY else "num")
    return fmt(value, kind)


def json_bytes(report: dict) -> bytes:
    """report.json."""
    return (json.dumps(report, indent=2, default=str, allow_nan=False) + "\n").encode()


def table_csv_bytes(rows: list[dict]) -> bytes:
    """A list of flat-ish dicts as CSV (nested dicts flattened as `key.sub`)."""
    flat = [_flatten(r) for r in rows]
    columns = list(dict.fromkeys(k for r in flat for k in r))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([csv_cell(c) for c in columns])  # names and values may be user text: never a formula
    writer.writerows([csv_cell("" if r.get(c) is None else r[c]) for c in columns] for r in flat)
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
    import pyarrow as pa  # imported here: a backtest exporting json only never needs pyarrow
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def render_files(report: dict, formats: list[str], decisions: pa.Table | None = None) -> dict[str, bytes]:
    """File name -> bytes for the requested formats (report.json always)."""
    files = {"report.json": json_bytes(report)}
    if "csv" in formats:
        files["rules.csv"] = table_csv_bytes(report["rules"])
        files["daily.csv"] = table_csv_bytes(report["daily"])
    if ("csv" in formats or "parquet" in formats) and decisions is not None:
        files["decisions.parquet"] = parquet_bytes(decisions)
    files.update(page_files(formats, "report", report, "html_page", "markdown"))
    return files


def page_files(formats: list[str], stem: str, result: dict, html: str, md: str) -> dict[str, bytes]:
    """STEM.html and STEM.md as asked, rendered by the `riskconsole.share` functions named `html` and `md`
    (imported only when asked for: charts are slow to import)."""
    if "html" not in formats and "md" not in formats:
        return {}
    from riskconsole import share

    return {**({f"{stem}.html": getattr(share, html)(result).encode()} if "html" in formats else {}),
            **({f"{stem}.md": getattr(share, md)(result).encode()} if "md" in formats else {})}


def write_files(files: dict[str, bytes], out_dir: Path) -> list[Path]:
    """Write each file atomically (temp name, then rename)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in files.items():
        target = out_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)  # lists/NAME.csv go in a folder of their own
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
        written.append(target)
    return written


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """A zip of path -> bytes (a reviewed strategy with the list files it reads)."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()

"""`riskconsole` command line: thin wrappers over the core library (DESIGN.md §5)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from riskconsole import limits
from riskconsole.errors import ConfigError, RiskConsoleError
from riskconsole.escape import terminal

if TYPE_CHECKING:  # imported where used: `riskconsole --help` loads no data library (issue 14)
    from riskconsole.report import Baseline
    from riskconsole.session import Session
    from riskconsole.workspace import Workspace


def _parse_sets(items: list[str] | None) -> dict:
    """`--set P=V` pairs; V is read as a YAML scalar."""
    if not items:
        return {}  # no config models loaded for nothing (a cached backtest loads none: issue 14)
    from riskconsole.config import parse_overrides

    return parse_overrides(items)


def _out_dir(ws: Workspace, args: argparse.Namespace, name: str) -> Path:
    from riskconsole.report import now_stamp

    return Path(args.out).resolve() if args.out else ws.reports_dir / f"{name}-{now_stamp()}"


def cmd_demo(ws: Workspace, args: argparse.Namespace) -> None:
    from riskconsole.scaffold import build_demo_workspace

    result = build_demo_workspace(ws, n_events=args.events, seed=args.seed, progress=print)
    print(result.summary())
    _entity_frames(ws, args)
    print(f"demo workspace ready: {ws.root}")


def cmd_init(ws: Workspace, args: argparse.Namespace) -> None:
    from riskconsole.scaffold import init_workspace

    if not args.workspace and not os.environ.get("RISKCONSOLE_WORKSPACE"):
        raise RiskConsoleError("init: give --workspace DIR, the folder for your workspace (it may not exist yet)")
    for path in init_workspace(ws.root):
        print(f"wrote {path}")
    print(f"next: edit {ws.root / 'data' / 'dataset.yaml'} for your data, then see {ws.root / 'README.md'}")


def cmd_load(ws: Workspace, args: argparse.Namespace) -> None:
    from riskconsole.escape import terminal
    from riskconsole.ingest import reload

    result = reload(ws, args.dataset, progress=lambda m: print(m, file=sys.stderr), trusted=True,
                    engine=getattr(args, "engine", None), accept_quarantine=args.accept_quarantine)
    print(result.summary())
    print(f"features: {', '.join(result.features) or 'none'} (the whole load took {result.seconds:.1f} s)")
    if result.rescored:  # `_pos` moved with the new events: every trained detector scored the new frame
        print("re-scored: " + ", ".join(f"{name} ({rows:,} rows)" for name, rows in result.rescored.items()))
    for warning in result.warnings:
        print(f"warning: {terminal(warning)}", file=sys.stderr)
    _entity_frames(ws, args)
    _spark_build(ws, args)


def _session(ws: Workspace, args: argparse.Namespace, cache: bool = False) -> Session:
    """The session of a command; `cache`: the compiled-query cache (`querycache.py`, docs/cli.md)."""
    from riskconsole.session import Session

    return Session(ws, getattr(args, "connection", None), engine=getattr(args, "engine", None),
                   progress=lambda m: print(m, file=sys.stderr), cache=cache, once=True)


@contextmanager
def _last_session(ws: Workspace, args: argparse.Namespace) -> Iterator[Session]:
    """The session of a backtest or a gate, with the compiled-query cache. Where the command ends the process
    (`_end`), its read-only connection is left to the exit: closing it frees DuckDB's buffers one by one (~30 ms
    of CPU at 2M events, issue 14) just before the system takes the whole process back."""
    session = _session(ws, args, cache=True)
    try:
        yield session
    finally:
        if not getattr(args, "ends_process", False):
            session.close()


def _entity_frames(ws: Workspace, args: argparse.Namespace) -> None:
    """Build the entity frame of each entity-level strategy now, so its first backtest reads it."""
    with _session(ws, args) as session:
        for line in session.prepare_entities():
            print(f"entity frame: {line}")


def _spark_build(ws: Workspace, args: argparse.Namespace) -> None:
    """With engine spark, build this load's frame on Spark now (else the first backtest does)."""
    with _session(ws, args) as session:
        if session.engine != "spark":
            return
        engine = session.spark_engine()
        if "frame" not in engine.seconds:  # this load built it on Spark
            print(f"spark: frame built by the load on {session.engine_text}: {engine.where}")
            return
        print(f"spark: frame built on {session.engine_text} in {sum(engine.seconds.values()):.1f} s "
              f"(export {engine.seconds.get('export', 0):.1f} s, features {engine.seconds.get('frame', 0):.1f} s): "
              f"{engine.where}")


def cmd_validate(ws: Workspace, args: argparse.Namespace) -> int:
    from riskconsole.validate import validate_file

    failed = 0
    for path in args.files:
        try:
            print(f"ok: {ws.rel(path)}: {terminal(validate_file(ws, path, getattr(args, 'engine', None)))}")
        except RiskConsoleError as err:
            for line in getattr(err, "lines", [err]):  # Problems: every bad rule of the file, one line each
                print(f"error: {terminal(line)}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


BOOTSTRAP, SEED = 1000, 7  # defaults of --bootstrap and --seed
from riskconsole.names import ENGINES  # noqa: E402 - a module of names only: `--help` loads no data library


def _baseline(args: argparse.Namespace) -> Baseline | None:
    from riskconsole.report import Baseline

    if not args.baseline:
        given = [flag for flag, on in (("--bootstrap", args.bootstrap != BOOTSTRAP), ("--seed", args.seed != SEED),
                                       ("--allow-different-population", args.allow_different_population)) if on]
        if given:
            raise RiskConsoleError(f"{', '.join(given)}: only used with --baseline (the intervals are on the change "
                                   "against it); add --baseline STRATEGY_YAML or drop the flag")
        return None
    if not 0 <= args.bootstrap <= limits.MAX_BOOTSTRAP:
        raise RiskConsoleError(f"--bootstrap {args.bootstrap}: give a number of day resamples from 0 to "
                               f"{limits.MAX_BOOTSTRAP:,} (1,000 is plenty for 95% intervals)")
    return Baseline(args.baseline, args.bootstrap, args.seed, args.allow_different_population)


def _window(session: Session, args: argparse.Namespace):
    """The window of --from/--to/--as-of; without --to, the last mature day of the label the strategy counts."""
    return session.window(args.from_, args.to, args.as_of, args.strategy)


def cmd_backtest(ws: Workspace, args: argparse.Namespace) -> None:
    from riskconsole.export import parse_formats, write_files

    formats = parse_formats(args.format)
    with _last_session(ws, args) as session:
        bt = session.backtest(args.strategy, _window(session, args), _parse_sets(args.set), _baseline(args), args.by,
                              args.assume)
        files = session.export(bt, formats)
        engine = session.engine_text + (" (compiled queries from data/cache/compiled/)" if session.cached_plan else "")
    out = _out_dir(ws, args, bt.report["strategy"])
    write_files(files, out)
    _print_summary(bt.report)
    print(f"computed on {engine}; wrote {terminal(out)}")


def cmd_gate(ws: Workspace, args: argparse.Namespace) -> int:
    from riskconsole.gate import describe
    from riskconsole.report import all_warnings

    with _last_session(ws, args) as session:
        gate = session.gate(args.strategy, args.require or [], _window(session, args), _parse_sets(args.set),
                            _baseline(args), args.assume)
    for result in gate.results:
        print(terminal(describe(result)))
    window = gate.report["window"]
    print(f"{'PASSED' if gate.passed else 'FAILED'}: {gate.held} of {len(gate.results)} guardrails hold "
          f"({terminal(gate.report['strategy'])} vs {terminal(gate.baseline or 'no baseline')}, "
          f"{window['from']}..{window['to']}, UTC days)")
    if window.get("note"):  # a gate judged on fewer days than the data holds says so
        print(f"  note: {terminal(window['note'])}")
    for warning in all_warnings(gate.report):  # what the numbers judged are worth (a detector scored on its own
        if warning != window.get("note"):  # training days, immature labels), as the backtest's summary says
            print(f"  warning: {terminal(warning)}")
    return 0 if gate.passed else 1


def _print_summary(report: dict) -> None:
    from riskconsole.export import fmt, metric_text
    from riskconsole.glossary import metric
    from riskconsole.report import all_warnings, unit_of

    o = report["overall"]
    print(f"{terminal(report['strategy'])}: {report['window']['from']}..{report['window']['to']} (UTC days), "
          f"population {o['population']:,} {unit_of(report)}, flagged {o['flagged']:,}")
    shown = ("precision", "recall", "amount_recall", "fraud_amount_stopped", "net_benefit")
    hidden = o.get("bounds") or {}  # where production hid outcomes, only a range is known: print the range

    def value(k: str) -> str:
        pair = hidden.get(k)
        if pair and None not in pair and pair[0] != pair[1]:
            return " … ".join(fmt(v, metric(k).kind) for v in sorted(pair))
        return metric_text(k, o)

    print("  " + "  ".join(f"{metric(k).title} {value(k)}" for k in shown)
          + f"  review cases {o['review_cases']:,} ({o['review_overflow_days']} days over capacity)")
    if report.get("compare"):
        _print_comparison(report, shown)
    for used in report.get("lists", []):  # which list version the numbers come from
        print(f"  list {terminal(used['name'])}: {terminal(used['file'])}, {used['entries']:,} entries "
              f"({used['active_entries']:,} active at the window's end), sha256 {used['sha256'][:12]}")
    for warning in all_warnings(report):
        print(f"  warning: {terminal(warning)}")


def _print_comparison(report: dict, shown: tuple[str, ...]) -> None:
    """The change against the baseline: the report's KPI rows (as report.html and the console show them) and the
    decisions that change."""
    from riskconsole.share import changed_headers, changed_rows, kpi_rows

    compare = report["compare"]
    rows = {r["key"]: r for r in kpi_rows(report)}
    print(f"  vs {terminal(compare['baseline_strategy'])}:")
    for key in (*shown, "good_amount_blocked", "review_cases"):
        r = rows.get(key)
        if r:
            print(f"    {r['title']:<22} {r['baseline']:>12} -> {r['value']:>12}  {r['delta']:>12}  {r['interval']}")
    changes = changed_rows(compare)
    if not changes:
        print("  no decision changes")
    for row in changes:
        print("  changed: " + ", ".join(f"{h} {terminal(str(v))}" for h, v in zip(changed_headers(report), row)))


def cmd_monitor(ws: Workspace, args: argparse.Namespace) -> None:
    from riskconsole.export import fmt, parse_formats, write_files
    from riskconsole.monitor import monitor_files

    formats = parse_formats(args.format)
    with _session(ws, args) as session:
        result = session.monitor(args.strategy, args.from_, args.to, args.reference, args.by)
        engine = session.engine_text
    out = _out_dir(ws, args, f"{result['strategy']}-monitor")
    write_files(monitor_files(result, formats), out)
    found = result.get("incidents", [])
    print(f"{terminal(result['strategy'])}: window {result['window']['from']}..{result['window']['to']} vs reference "
          f"{result['reference']['from']}..{result['reference']['to']} (UTC days): {len(found)} incidents, "
          f"{len(result['alerts'])} alerts")
    for warning in result.get("warnings", []):
        print(f"  warning: {terminal(warning)}")
    for item in found[:10]:
        print(f"  incident {item['id']}: {terminal(item['summary'])}")
    if len(found) > 10:
        print(f"  ... {len(found) - 10} more incidents in monitor.json")
    if result["alerts"]:
        print("  alerts:")
    for alert in result["alerts"][:20]:
        low, high = alert["expected"]
        print(f"  {alert['day']} {terminal(alert['metric'])} {fmt(alert['value'])} (expected {fmt(low)}..{fmt(high)})"
              + (f"  top: {terminal(', '.join(alert['top']))}" if alert["top"] else ""))
    if len(result["alerts"]) > 20:
        print(f"  ... {len(result['alerts']) - 20} more in monitor.json")
    print(f"computed on {engine}; wrote {terminal(out)}")


def cmd_sweep(ws: Workspace, args: argparse.Namespace) -> None:
    from riskconsole.export import fmt, metric_text, write_files
    from riskconsole.sweep import parse_values, sweep_files

    values = parse_values(args.values)
    with _session(ws, args) as session:
        window, sets = _window(session, args), _parse_sets(args.set)
        result = session.sweep(args.strategy, args.param, values, window, sets)
        caveats = _labelled_only(session, args.strategy, window, sets)
        engine = session.engine_text
    out = _out_dir(ws, args, f"{result['strategy']}-sweep-{args.param}")
    write_files(sweep_files(result), out)
    print(f"{len(result['points']):,} values of {args.param} ({result['method']}, computed on {engine})")
    for row in result["points"]:
        print(f"{args.param}={row['value']!s:>10}  precision {metric_text('precision', row):>7}  "
              f"recall {metric_text('recall', row):>7}  net benefit {fmt(row['net_benefit'], 'money'):>12}  "
              f"reviews {row['review_cases']:>9,}  overflow days {row['review_overflow_days']}")
    _print_caveats(caveats)
    print(f"wrote {terminal(out)}")


def _labelled_only(session, path: str, window, sets: dict) -> tuple[dict, list[str]]:
    """What the rows of a sweep or optimize (labelled events only, one per setting) cannot say themselves: the
    warnings of the backtest at the file's params over the same window (immature labels, the outcomes production
    hid, a detector scored on its training days), with those params. One more grouped pass."""
    from riskconsole.report import all_warnings

    report = session.backtest(path, window, sets).report
    return report["params"], all_warnings(report)


def _print_caveats(caveats: tuple[dict, list[str]]) -> None:
    params, warnings = caveats
    if warnings:
        shown = ", ".join(f"{k}={v}" for k, v in params.items())
        print(f"  the rows count labelled events only; at the file's params ({terminal(shown)}) the backtest warns:")
    for warning in warnings:
        print(f"  warning: {terminal(warning)}")


def cmd_train(ws: Workspace, args: argparse.Namespace) -> int:
    from riskconsole.detectors import train_detector
    from riskconsole.detectors.training import Tune

    if args.tune_budget is not None and not args.tune:
        raise ConfigError("--tune-budget: only means something with --tune N (how many trials)")
    if args.tune is not None and args.tune < 1:
        raise ConfigError(f"--tune {args.tune}: give the number of trials, at least 1")
    if args.tune_budget is not None and args.tune_budget <= 0:
        raise ConfigError(f"--tune-budget {args.tune_budget:g}: give a number of seconds above 0")
    tune = Tune(args.tune, args.tune_budget) if args.tune else None
    failed = 0
    for path in args.detectors:
        try:
            result = train_detector(ws, path, progress=_progress, tune=tune, engine=args.engine)
        except RiskConsoleError as err:
            print(f"error: {terminal(err)}", file=sys.stderr)
            failed += 1
            continue
        print(result.summary())
        print(f"  card: {ws.rel(result.model_dir / 'card.md')}")
        for warning in result.warnings:
            print(f"warning: {terminal(warning)}", file=sys.stderr)
    return 1 if failed else 0


def _progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr)


def cmd_explain(ws: Workspace, args: argparse.Namespace) -> None:
    from riskconsole.detectors import explain
    from riskconsole.detectors.explain import explain_many, read_ids

    ids = list(args.event_id) + (read_ids(args.ids_file) if args.ids_file else [])
    if not ids:
        raise ConfigError("explain: give an EVENT_ID (or several), or --ids-file FILE")
    if len(ids) == 1 and not args.ids_file:
        result = explain(ws, ids[0], args.detector, top=args.top)
        if args.json:
            print(json.dumps(result, indent=2, default=str))
            return
        for line in explain_lines(result):
            print(line)
        return
    many = explain_many(ws, ids, args.detector, top=args.top)
    if many["missing"]:
        shown = ", ".join(many["missing"][:5]) + (" ..." if len(many["missing"]) > 5 else "")
        print(f"warning: {len(many['missing']):,} ids are not among the loaded events: {shown}", file=sys.stderr)
    if args.json:  # compact: Python's C encoder (indent falls back to the pure-Python one, ~10x slower)
        print(json.dumps(many, default=str, separators=(",", ":")))
        return
    for result in many["events"]:
        for line in explain_lines(result):
            print(line)
        print()


def _value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return "null" if value is None else str(value)


def explain_lines(result: dict) -> list[str]:
    """A reviewer-readable rendering of `explain()`'s result."""
    event = result["event"]
    lines = ["event " + "  ".join(f"{k} {_value(v)}" for k, v in event.items())]
    for d in result["detectors"]:
        raw = f" (raw {d['raw']:+.3f} log-odds = base {d['base']:+.3f} + every feature's contribution)" \
            if isinstance(d.get("raw"), float) and isinstance(d.get("base"), float) else ""
        lines.append(f"{d['name']} ({d['kind']}): score {d['score']:.4f}{raw}")
        for r in d["reasons"]:
            if "contribution" in r:
                lines.append(f"  + {r['feature']} = {_value(r['value'])}  pushes {r['contribution']:+.3f} log-odds")
            elif "share" in r:  # a text value read as its share of the training rows
                lines.append(f"  ! {r['feature']} = {_value(r['value'])}  read as its share of the training rows, "
                             f"{r['share']:.2%} ({r['encoding']})")
            else:
                side = "above" if r["z"] > 0 else "below"
                lines.append(f"  ! {r['feature']} = {_value(r['value'])}  {abs(r['z']):.1f} robust SDs {side} "
                             f"typical {_value(r['typical'])}")
        if not d["reasons"]:
            lines.append("  (no feature pushes this score up)")
        for u in d.get("unseen", []):
            lines.append(f"  ? {u['feature']} = {_value(u['value'])}  not among the {u['learned']:,} values it learned "
                         f"in training: read as {u['read_as']}")
        if d.get("warning"):
            lines.append(f"  warning: {d['warning']}")
    return lines


def _values_by_param(params: list[str], specs: list[str] | None) -> dict[str, str | None]:
    values: dict[str, str | None] = {p: None for p in params}
    for spec in specs or []:
        name, sep, rest = spec.partition("=")
        if sep and name in values:
            values[name] = rest
        elif len(params) == 1 and not sep:
            values[params[0]] = spec
        else:
            raise RiskConsoleError(f"--values {spec}: write PARAM=a:b:step (or a list) for one of {', '.join(params)}")
    return values


FRONTIER_SHOWN = 8  # the whole frontier is in optimize.json


def cmd_optimize(ws: Workspace, args: argparse.Namespace) -> int:
    from riskconsole.export import fmt, metric_text, write_files
    from riskconsole.sweep import sweep_files

    with _session(ws, args) as session:
        window, sets = _window(session, args), _parse_sets(args.set)
        result = session.optimize(args.strategy, _values_by_param(args.param, args.values), window, sets,
                                  args.max_overflow_days, args.min_precision)
        caveats = _labelled_only(session, args.strategy, window, sets)
    out = _out_dir(ws, args, f"{result['strategy']}-optimize")
    write_files(sweep_files(result), out)
    names = result["params"]

    def setting(p: dict) -> str:
        return ", ".join(f"{n}={p[n]}" for n in names)

    shown = result["frontier"][-FRONTIER_SHOWN:]
    more = f"; the {len(shown)} paying most:" if len(shown) < len(result["frontier"]) else ":"
    print(f"{len(result['points']):,} settings tried ({result['method']}); frontier of {len(result['frontier'])} "
          f"settings (none pays more with fewer reviews){more}")
    for p in shown:
        print(f"  frontier: {setting(p):<40} net benefit {fmt(p['net_benefit'], 'money'):>12}  "
              f"reviews {p['review_cases']:>9,}  overflow days {p['review_overflow_days']}")
    _print_caveats(caveats)
    print(f"wrote {terminal(out)}")
    if not result["feasible"]:
        c = result["closest"]
        raise RiskConsoleError(
            f"no setting of {', '.join(names)} keeps review load within capacity (at most "
            f"{args.max_overflow_days} day(s) over)" + (f" and precision >= {args.min_precision}" if args.min_precision
                                                         else "")
            + f"; closest: {setting(c)} with {c['review_overflow_days']} day(s) over, precision "
              f"{metric_text('precision', c)}, net benefit {fmt(c['net_benefit'], 'money')}")
    b = result["best"]
    print(f"best: {setting(b)}: net benefit {fmt(b['net_benefit'], 'money')}, precision {metric_text('precision', b)}, "
          f"recall {metric_text('recall', b)}, {b['review_overflow_days']} day(s) over capacity "
          f"(now: {setting(result['current'])})")
    return 0


def cmd_schema(ws: Workspace, args: argparse.Namespace) -> None:
    import json

    from riskconsole.validate import KINDS

    print(json.dumps(KINDS[args.kind].model_json_schema(by_alias=True), indent=2))


def cmd_daemon(ws: Workspace, args: argparse.Namespace) -> int:
    """`riskconsole daemon`: serve this workspace's read-only commands from one warm process (`daemon.py`)."""
    from riskconsole import daemon
    from riskconsole.daemon_client import ask, listener

    if not (args.stop or args.status):
        if not args.idle > 0:
            raise RiskConsoleError(f"--idle {args.idle:g}: give the minutes without a request after which the daemon "
                                   "stops, above 0")
        daemon.serve(ws, args.idle)
        return 0
    found = ask(ws.root, b"t" if args.stop else b"s")
    if found is None:
        return _daemon_busy(ws, args, listener(ws.root))
    if args.stop:
        print(f"stopped the riskconsole daemon (PID {found['pid']}) of {terminal(ws.root)} after {found['served']:,} "
              "commands")
        return 0
    print(f"riskconsole daemon (PID {found['pid']}) serves {terminal(ws.root)}: {found['served']:,} commands since "
          f"{_clock(found['since'])}, database {'open' if found['open'] else 'closed'}, stops after "
          f"{found['idle_minutes']:g} minutes without a request")
    return 0


def _daemon_busy(ws: Workspace, args: argparse.Namespace, pid: int | None) -> int:
    """--status or --stop where no daemon answered: none listens (`pid` None), or one is busy with a command (it
    answers one connection at a time): --stop then ends it now (SIGTERM: that command's client says it stopped)."""
    if pid is None:
        print(f"no riskconsole daemon serves {terminal(ws.root)}")
        return 0 if args.stop else 1
    if args.stop:
        import signal

        os.kill(pid, signal.SIGTERM)
        print(f"stopped the riskconsole daemon (PID {pid}) of {terminal(ws.root)} in the middle of a command")
        return 0
    print(f"riskconsole daemon (PID {pid}) serves {terminal(ws.root)}: busy with a command (meanwhile other commands "
          "run in their own process)")
    return 0


def _clock(seconds: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def cmd_console(ws: Workspace, args: argparse.Namespace) -> None:
    """The console on this workspace (what `python -m riskconsole.ui.serve` starts), until stopped."""
    import os

    from riskconsole.ui.serve import serve

    os.environ["RISKCONSOLE_WORKSPACE"] = str(ws.root)  # the console's pages open the workspace named there
    serve(args.port, args.address)


def _moment(text: str) -> str:
    """A --from/--to/--as-of value as given; an empty one (an unset shell variable, `--from "$START"`) is refused:
    taken as absent, it would silently widen the window to all the data."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty: give a day (2026-03-01) or a timestamp, or leave the flag out for "
                                         "the default")
    return text


def _demo_events(text: str) -> int:
    """`demo --events N`: a whole number of orders, at least the demo's fewest (its scenarios need a month of them)."""
    from riskconsole.demo import MIN_EVENTS

    try:
        n = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of orders (e.g. 200000)") from None
    if n < MIN_EVENTS:
        raise argparse.ArgumentTypeError(f"the demo needs at least {MIN_EVENTS:,} orders (got {n:,}): its fraud "
                                         "scenarios need a month of them")
    return n


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="riskconsole", description="Backtest fraud strategies before deploying.")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_: str,
                workspace: str = "workspace folder (default: $RISKCONSOLE_WORKSPACE, else the workspace the current "
                                 "directory is in, else the repository)",
                ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--workspace", metavar="DIR", help=workspace)
        return p

    def window(p: argparse.ArgumentParser) -> None:
        p.add_argument("--from", dest="from_", metavar="D", type=_moment,
                       help="first day (YYYY-MM-DD, whole day) or timestamp of the window, UTC unless it ends in an offset "
                            "(+05:00) or a zone name (Europe/Berlin) (default: first event)")
        p.add_argument("--to", metavar="D", type=_moment,
                       help="last day (whole day included) or timestamp of the window's end (events before it) (default: the last day whose labels are "
                            "mature when they are dated: the events' label, or an entity-level strategy's own, saying "
                            "which days were left out; else the last event)")
        p.add_argument("--as-of", dest="as_of", metavar="D", type=_moment,
                       help="count a label as known only if its label_time is before the end of day D "
                            "(replays what was known then)")
        p.add_argument("--set", action="append", metavar="PARAM=VALUE",
                       help="override a param of the strategy for this run; VALUE is read as YAML (repeatable)")

    def engine(p: argparse.ArgumentParser, what: str = "where loading (files, quarantine), features and the "
               "backtest run") -> None:
        p.add_argument("--engine", choices=ENGINES, help=f"{what} (default: $RISKCONSOLE_ENGINE, else engine: in "
                       "data/dataset.yaml, else duckdb); see docs/scale.md")

    def out(p: argparse.ArgumentParser) -> None:
        p.add_argument("--out", metavar="DIR",
                       help="folder for the output files (default: reports/STRATEGY-YYYYMMDD-HHMMSS/ of the workspace)")

    command("init", "write a commented skeleton workspace for your own data (never overwrites a file)",
            "the folder to write (created if missing; or $RISKCONSOLE_WORKSPACE)")
    p = command("demo", "generate and load the demo data set")
    p.add_argument("--events", type=_demo_events, default=1_000_000, metavar="N",
                   help="number of orders to generate (at least 5,000)")
    p.add_argument("--seed", type=int, default=7, metavar="S", help="random seed of the generator")
    p = command("load", "load events and build features")
    p.add_argument("dataset", nargs="?", metavar="DATASET_YAML",
                   help="dataset YAML (default: data/dataset.yaml of the workspace)")
    p.add_argument("--accept-quarantine", action="store_true",
                   help="publish the load even when a source (the events, a stream, a table) has more than half of "
                        "its rows quarantined (such a load is refused by default, the live database unchanged)")
    engine(p)
    p = command("validate", "check strategy, detector and dataset files without running them")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="YAML files to check; the kind is read from the folder (strategies/, detectors/) or the keys; "
                        "a .csv file is checked as a list (lists/NAME.csv)")
    engine(p, "the engine the files are checked for: with spark, a dataset's sources as a load on Spark reads them "
              "and a strategy's rules as Spark renders them")
    for name, help_ in (("backtest", "backtest a strategy"), ("sweep", "backtest a strategy over values of a param"),
                        ("gate", "exit 0 only if every guardrail holds against the baseline")):
        p = command(name, help_)
        p.add_argument("strategy", metavar="STRATEGY_YAML", help="the strategy file to run")
        window(p)
        if name != "gate":
            out(p)
        engine(p)
        if name in ("backtest", "gate"):
            p.add_argument("--baseline", metavar="STRATEGY_YAML",
                           help="strategy YAML to compare against (fills the report's `compare`)")
            p.add_argument("--bootstrap", type=int, default=BOOTSTRAP, metavar="N",
                           help="day resamples for the 95%% intervals (0: no intervals)")
            p.add_argument("--seed", type=int, default=SEED, metavar="S", help="random seed of the bootstrap")
            p.add_argument("--allow-different-population", action="store_true",
                           help="compare strategies whose population filters differ (each allows the events "
                                "outside its own population)")
            p.add_argument("--assume", metavar="unobserved=WHAT",
                           help="where production blocked events that have no label (columns.prod_action), judge "
                                "at an explicit assumption instead of the worst case: unobserved=good, "
                                "unobserved=fraud or unobserved=fraud-rate-of-explored (the report prints it)")
        if name == "gate":
            p.add_argument("--require", action="append", metavar="GUARDRAIL",
                           help="e.g. recall>=+0.00 (signed: change vs baseline) or review_overflow_days<=0 "
                                "(repeatable; adds to the strategy's `guardrails:`)")
        if name == "backtest":
            p.add_argument("--format", default="json,csv", metavar="LIST",
                           help="comma-separated: json (report.json), csv (rules.csv, daily.csv, decisions.parquet), "
                                "parquet (decisions.parquet), html (report.html), md (report.md)")
            p.add_argument("--by", metavar="COLUMN[:N]",
                           help="segment the report: a column, or COLUMN:N quantile buckets; a name with spaces is "
                                "quoted for the shell (--by \"Coupon Code\")")
        if name == "sweep":
            p.add_argument("--param", required=True, metavar="PARAM", help="the param to vary")
            p.add_argument("--values", required=True, metavar="VALUES",
                           help="a:b:step (both ends included), or a comma-separated list")
    p = command("optimize", "param values that maximise net benefit within review capacity")
    p.add_argument("strategy", metavar="STRATEGY_YAML", help="the strategy file to tune")
    p.add_argument("--param", action="append", required=True, metavar="PARAM", help="a param to search (repeatable)")
    p.add_argument("--values", action="append", metavar="PARAM=VALUES",
                   help="PARAM=a:b:step or PARAM=v1,v2 (default: a range around the param's value; repeatable)")
    p.add_argument("--max-overflow-days", type=int, default=0, metavar="N",
                   help="days allowed over review capacity (default 0)")
    p.add_argument("--min-precision", type=float, metavar="X", help="a floor on precision, e.g. 0.3")
    window(p)
    out(p)
    engine(p)
    p = command("monitor", "daily KPIs of a deployed strategy against a reference, alerts, and what moved them")
    p.add_argument("strategy", metavar="STRATEGY_YAML", help="the strategy as deployed")
    p.add_argument("--from", dest="from_", metavar="D", type=_moment,
                   help="first day of the monitored window (default: 28 days before --to)")
    p.add_argument("--to", metavar="D", type=_moment, help="last day of the monitored window (default: the last day of data); "
                                             "labels count as known if they arrived by its end")
    p.add_argument("--reference", metavar="D:D",
                   help="FIRST:LAST days of the normal period the bands come from (default: the 28 days before "
                        "--from); must end before --from")
    p.add_argument("--by", action="append", metavar="COLUMN[:N]",
                   help="attribute each alert to the segments of this column (or COLUMN:N quantile buckets); "
                        "repeatable")
    engine(p)
    p.add_argument("--format", default="json,csv", metavar="LIST",
                   help="comma-separated: json (monitor.json), csv (monitor_daily.csv, alerts.csv, attribution.csv, "
                        "drift.csv), html (monitor.html), md (monitor.md)")
    out(p)
    p = command("schema", "JSON Schema of a YAML kind, for editors")
    p.add_argument("kind", choices=["dataset", "strategy", "detector"], help="which kind of file")
    p = command("train", "fit detectors, write their model cards, score every event")
    p.add_argument("detectors", nargs="+", metavar="DETECTOR_YAML", help="detector files to train")
    p.add_argument("--tune", type=int, metavar="N", help="lightgbm: first search N hyperparameter settings with "
                   "Optuna on time splits of the training window; the card lists the trials")
    p.add_argument("--tune-budget", type=float, metavar="SECONDS", help="with --tune: stop searching after this "
                   "many seconds (a trial still running then is not counted)")
    engine(p, "where every event is scored once the model is fitted: with spark, on the executors when this load's "
                "frame is built there (the scores Spark's backtests then read)")
    p = command("explain", "why an event scored high: each detector's score and top reasons")
    p.add_argument("event_id", nargs="*", metavar="EVENT_ID",
                   help="the id of the event (the id column of the dataset); several ids are explained in one batch")
    p.add_argument("--ids-file", metavar="FILE", help="explain every event id in FILE (one per line; a CSV's first "
                   "column, header skipped if it is not an id) in one batch call")
    p.add_argument("--detector", action="append", metavar="NAME", help="only this detector (repeatable)")
    p.add_argument("--top", type=int, default=5, metavar="N", help="reasons per detector (default 5)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p = command("daemon", "keep this workspace open in one process that answers backtest, gate, sweep, optimize "
                "and monitor for the other riskconsole commands you run (faster scripts); Ctrl-C stops it")
    p.add_argument("--idle", type=float, default=60.0, metavar="MINUTES",
                   help="stop after this many minutes without a request")
    p.add_argument("--stop", action="store_true", help="stop the daemon of the workspace instead")
    p.add_argument("--status", action="store_true", help="say whether a daemon serves the workspace (exit 1: none)")
    from riskconsole.ui.serve import add_flags  # argparse only: `--help` imports no Streamlit

    add_flags(command("console", "start the console (the web app) on this workspace; it runs until stopped (Ctrl-C)"))
    return parser


COMMANDS = {"console": cmd_console, "init": cmd_init, "demo": cmd_demo, "load": cmd_load, "validate": cmd_validate, "backtest": cmd_backtest,
            "sweep": cmd_sweep, "gate": cmd_gate, "optimize": cmd_optimize, "schema": cmd_schema,
            "train": cmd_train, "explain": cmd_explain, "monitor": cmd_monitor, "daemon": cmd_daemon}


from riskconsole.names import DELEGATED  # noqa: E402 - `--help` imports no socket

FAST_EXIT = ("backtest", "gate")  # the script's process ends without tearing every module down (`_end`)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `riskconsole` script; returns the exit code. Run as the script (no `argv`), a backtest or a
    gate ends the process itself (`_end`)."""
    args = _parser().parse_args(argv)
    if args.command in DELEGATED:  # before DuckDB's import: a daemon may answer (`daemon.py`)
        code = _through_daemon(args, sys.argv[1:] if argv is None else [str(a) for a in argv])
        if code is not None:
            return code
    args.ends_process = argv is None and args.command in FAST_EXIT
    if args.ends_process:  # before numpy's import: a backtest multiplies no matrices, so OpenBLAS needs no thread
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # pool (its start is ~40% of numpy's import, issue 14)
    code = _run(args)
    if args.ends_process:
        _end(code)
    return code


def _through_daemon(args: argparse.Namespace, argv: list[str]) -> int | None:
    """A read-only command run by the workspace's daemon: its exit code (its output printed); None: run it here. (A
    command that writes the database asks the daemon to let go of it where it opens the file: `Workspace.connect`.)"""
    from riskconsole import daemon_client
    from riskconsole.roots import resolve_root

    return daemon_client.delegate(argv, resolve_root(args.workspace))


def parse(argv: list[str]) -> argparse.Namespace:
    """The arguments of a command line (what `main` parses), for a daemon running a client's command."""
    return _parser().parse_args(argv)


def run_parsed(args: argparse.Namespace, ws: Workspace) -> int:
    """Run parsed arguments on `ws` as `main` would, the process going on after (a daemon's request)."""
    args.ends_process = False
    return _run(args, ws)


def _run(args: argparse.Namespace, ws: Workspace | None = None) -> int:
    import duckdb

    from riskconsole.workspace import Workspace, lock_holder

    try:
        ws = ws or Workspace.resolve(args.workspace)
        return COMMANDS[args.command](ws, args) or 0
    except RiskConsoleError as err:
        print(f"error: {terminal(err)}", file=sys.stderr)
    except duckdb.IOException as err:
        message = str(err).splitlines()[0]
        if "Conflicting lock" in message:
            pid = lock_holder(err) or "?"
            inside = {"train": ", train from its Detectors page (Train detectors)"}.get(args.command, "")
            message = (f"the database is open in another process (PID {pid}, e.g. a running console or `riskconsole "
                       f"daemon`); stop it{inside}, or run this on another workspace")
        print(f"error: {terminal(message)}", file=sys.stderr)
    return 1


def _end(code: int) -> None:
    """End the process with `code` now: output flushed and exit handlers run, but no teardown of every module and
    object (~0.05 of the ~1 CPU-s of a CLI backtest at 2M events, issue 14). The command has closed every file it
    wrote (its read-only connection is left open: `_last_session`); where the output cannot be flushed (a closed
    pipe), Python's own exit reports it."""
    import atexit

    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:  # None: the stream was closed before the process started (`>&-`)
                stream.flush()
    except (OSError, ValueError):
        return
    atexit._run_exitfuncs()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())

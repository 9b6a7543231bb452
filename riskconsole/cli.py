"""`riskconsole` command line: thin wrappers over the core library (DESIGN.md §5)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import duckdb

from riskconsole.config import parse_overrides
from riskconsole.errors import RiskConsoleError
from riskconsole.escape import terminal
from riskconsole.export import fmt, parse_formats, write_files
from riskconsole.glossary import metric
from riskconsole.report import Baseline, all_warnings, now_stamp
from riskconsole.session import Session
from riskconsole.workspace import Workspace


def _parse_sets(items: list[str] | None) -> dict:
    """`--set P=V` pairs; V is read as a YAML scalar."""
    return parse_overrides(items)


def _out_dir(ws: Workspace, args: argparse.Namespace, name: str) -> Path:
    return Path(args.out).resolve() if args.out else ws.reports_dir / f"{name}-{now_stamp()}"


def cmd_demo(ws: Workspace, args: argparse.Namespace) -> None:
    from riskconsole.scaffold import build_demo_workspace

    result = build_demo_workspace(ws, n_events=args.events, seed=args.seed, progress=print)
    print(result.summary())
    print(f"demo workspace ready: {ws.root}")


def cmd_load(ws: Workspace, args: argparse.Namespace) -> None:
    from riskconsole.ingest import load

    result = load(ws, args.dataset)
    print(result.summary())
    print(f"features: {', '.join(result.features) or 'none'} ({result.seconds:.1f} s)")
    from riskconsole.detectors import rescore_all

    rescored = rescore_all(ws, progress=lambda m: print(m, file=sys.stderr))
    if rescored:  # `_pos` may have moved: every trained detector scores the new frame
        print("re-scored: " + ", ".join(f"{name} ({rows:,} rows)" for name, rows in rescored.items()))


def cmd_validate(ws: Workspace, args: argparse.Namespace) -> int:
    from riskconsole.validate import validate_file

    failed = 0
    for path in args.files:
        try:
            print(f"ok: {ws.rel(path)}: {terminal(validate_file(ws, path))}")
        except RiskConsoleError as err:
            print(f"error: {terminal(err)}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def _baseline(args: argparse.Namespace) -> Baseline | None:
    if not args.baseline:
        return None
    if args.bootstrap < 0:
        raise RiskConsoleError(f"--bootstrap {args.bootstrap}: give a number of resamples >= 0")
    return Baseline(args.baseline, args.bootstrap, args.seed, args.allow_different_population)


def _window(session: Session, args: argparse.Namespace):
    return session.window(args.from_, args.to, args.as_of)


def cmd_backtest(ws: Workspace, args: argparse.Namespace) -> None:
    formats = parse_formats(args.format)
    with Session(ws) as session:
        bt = session.backtest(args.strategy, _window(session, args), _parse_sets(args.set), _baseline(args), args.by)
        files = session.export(bt, formats)
    out = _out_dir(ws, args, bt.report["strategy"])
    write_files(files, out)
    _print_summary(bt.report)
    print(f"wrote {terminal(out)}")


def cmd_gate(ws: Workspace, args: argparse.Namespace) -> int:
    from riskconsole.gate import describe

    with Session(ws) as session:
        gate = session.gate(args.strategy, args.require or [], _window(session, args), _parse_sets(args.set),
                            _baseline(args))
    for result in gate.results:
        print(terminal(describe(result)))
    window = gate.report["window"]
    print(f"{'PASSED' if gate.passed else 'FAILED'}: {gate.held} of {len(gate.results)} guardrails hold "
          f"({terminal(gate.report['strategy'])} vs {terminal(gate.baseline or 'no baseline')}, "
          f"{window['from']}..{window['to']})")
    return 0 if gate.passed else 1


def _print_summary(report: dict) -> None:
    o = report["overall"]
    print(f"{terminal(report['strategy'])}: {report['window']['from']}..{report['window']['to']}, "
          f"population {o['population']:,}, flagged {o['flagged']:,}")
    shown = ("precision", "recall", "amount_recall", "fraud_amount_stopped", "net_benefit")
    print("  " + "  ".join(f"{metric(k).title} {fmt(o[k], metric(k).kind)}" for k in shown)
          + f"  review cases {o['review_cases']:,} ({o['review_overflow_days']} days over capacity)")
    for warning in all_warnings(report):
        print(f"  warning: {terminal(warning)}")


def cmd_sweep(ws: Workspace, args: argparse.Namespace) -> None:
    from riskconsole.sweep import parse_values, sweep_files

    values = parse_values(args.values)
    with Session(ws) as session:
        result = session.sweep(args.strategy, args.param, values, _window(session, args), _parse_sets(args.set))
    out = _out_dir(ws, args, f"{result['strategy']}-sweep-{args.param}")
    write_files(sweep_files(result), out)
    print(f"{len(result['points']):,} values of {args.param} ({result['method']})")
    for row in result["points"]:
        print(f"{args.param}={row['value']!s:>10}  precision {fmt(row['precision'], 'pct'):>7}  "
              f"recall {fmt(row['recall'], 'pct'):>7}  net benefit {fmt(row['net_benefit'], 'money'):>12}  "
              f"reviews {row['review_cases']:>9,}  overflow days {row['review_overflow_days']}")
    print(f"wrote {terminal(out)}")


def cmd_train(ws: Workspace, args: argparse.Namespace) -> int:
    from riskconsole.detectors import train_detector

    failed = 0
    for path in args.detectors:
        try:
            result = train_detector(ws, path, progress=_progress)
        except RiskConsoleError as err:
            print(f"error: {terminal(err)}", file=sys.stderr)
            failed += 1
            continue
        print(result.summary())
        print(f"  card: {ws.rel(result.model_dir / 'card.md')}")
    return 1 if failed else 0


def _progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr)


def cmd_explain(ws: Workspace, args: argparse.Namespace) -> None:
    from riskconsole.detectors import explain

    result = explain(ws, args.event_id, args.detector, top=args.top)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return
    for line in explain_lines(result):
        print(line)


def _value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return "null" if value is None else str(value)


def explain_lines(result: dict) -> list[str]:
    """A reviewer-readable rendering of `explain()`'s result."""
    event = result["event"]
    lines = ["event " + "  ".join(f"{k} {_value(v)}" for k, v in event.items())]
    for d in result["detectors"]:
        lines.append(f"{d['name']} ({d['kind']}): score {d['score']:.4f}")
        for r in d["reasons"]:
            if "contribution" in r:
                lines.append(f"  + {r['feature']} = {_value(r['value'])}  pushes {r['contribution']:+.3f} log-odds")
            else:
                side = "above" if r["z"] > 0 else "below"
                lines.append(f"  ! {r['feature']} = {_value(r['value'])}  {abs(r['z']):.1f} robust SDs {side} "
                             f"typical {_value(r['typical'])}")
        if not d["reasons"]:
            lines.append("  (no feature pushes this score up)")
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
    from riskconsole.sweep import sweep_files

    with Session(ws) as session:
        result = session.optimize(args.strategy, _values_by_param(args.param, args.values), _window(session, args),
                                  _parse_sets(args.set), args.max_overflow_days, args.min_precision)
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
    print(f"wrote {terminal(out)}")
    if not result["feasible"]:
        c = result["closest"]
        raise RiskConsoleError(
            f"no setting of {', '.join(names)} keeps review load within capacity (at most "
            f"{args.max_overflow_days} day(s) over)" + (f" and precision >= {args.min_precision}" if args.min_precision
                                                         else "")
            + f"; closest: {setting(c)} with {c['review_overflow_days']} day(s) over, precision "
              f"{fmt(c['precision'], 'pct')}, net benefit {fmt(c['net_benefit'], 'money')}")
    b = result["best"]
    print(f"best: {setting(b)}: net benefit {fmt(b['net_benefit'], 'money')}, precision {fmt(b['precision'], 'pct')}, "
          f"recall {fmt(b['recall'], 'pct')}, {b['review_overflow_days']} day(s) over capacity "
          f"(now: {setting(result['current'])})")
    return 0


def cmd_schema(ws: Workspace, args: argparse.Namespace) -> None:
    import json

    from riskconsole.validate import KINDS

    print(json.dumps(KINDS[args.kind].model_json_schema(by_alias=True), indent=2))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="riskconsole", description="Backtest fraud strategies before deploying.")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        p.add_argument("--workspace", help="workspace folder (default: $RISKCONSOLE_WORKSPACE or the repository)")
        return p

    p = command("demo", "generate and load the demo data set")
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=7)
    p = command("load", "load events and build features")
    p.add_argument("dataset", nargs="?", help="dataset YAML (default: data/dataset.yaml of the workspace)")
    p = command("validate", "check strategy, detector and dataset files without running them")
    p.add_argument("files", nargs="+")
    for name, help_ in (("backtest", "backtest a strategy"), ("sweep", "backtest a strategy over values of a param"),
                        ("gate", "exit 0 only if every guardrail holds against the baseline")):
        p = command(name, help_)
        p.add_argument("strategy")
        p.add_argument("--from", dest="from_")
        p.add_argument("--to")
        p.add_argument("--as-of", dest="as_of")
        p.add_argument("--set", action="append", metavar="PARAM=VALUE")
        if name != "gate":
            p.add_argument("--out")
        if name in ("backtest", "gate"):
            p.add_argument("--baseline", help="strategy YAML to compare against (fills the report's `compare`)")
            p.add_argument("--bootstrap", type=int, default=1000, help="day resamples for the intervals")
            p.add_argument("--seed", type=int, default=7)
            p.add_argument("--allow-different-population", action="store_true")
        if name == "gate":
            p.add_argument("--require", action="append", metavar="GUARDRAIL",
                           help="e.g. recall>=+0.00 (signed: change vs baseline) or review_overflow_days<=0")
        if name == "backtest":
            p.add_argument("--format", default="json,csv")
            p.add_argument("--by", help="segment the report: a column, or COLUMN:N quantile buckets")
        if name == "sweep":
            p.add_argument("--param", required=True)
            p.add_argument("--values", required=True, help="a:b:step, or a comma-separated list")
    p = command("optimize", "param values that maximise net benefit within review capacity")
    p.add_argument("strategy")
    p.add_argument("--param", action="append", required=True, help="a param to search (repeatable)")
    p.add_argument("--values", action="append", help="PARAM=a:b:step or PARAM=v1,v2 (default: the param's range)")
    p.add_argument("--max-overflow-days", type=int, default=0, help="days allowed over review capacity (default 0)")
    p.add_argument("--min-precision", type=float, help="a floor on precision")
    for flag, dest in (("--from", "from_"), ("--to", "to"), ("--as-of", "as_of"), ("--out", "out")):
        p.add_argument(flag, dest=dest)
    p.add_argument("--set", action="append", metavar="PARAM=VALUE")
    p = command("schema", "JSON Schema of a YAML kind, for editors")
    p.add_argument("kind", choices=["dataset", "strategy", "detector"])
    p = command("train", "fit detectors, write their model cards, score every event")
    p.add_argument("detectors", nargs="+", metavar="DETECTOR_YAML")
    p = command("explain", "why an event scored high: each detector's score and top reasons")
    p.add_argument("event_id")
    p.add_argument("--detector", action="append", metavar="NAME", help="only this detector (repeatable)")
    p.add_argument("--top", type=int, default=5, help="reasons per detector (default 5)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


COMMANDS = {"demo": cmd_demo, "load": cmd_load, "validate": cmd_validate, "backtest": cmd_backtest,
            "sweep": cmd_sweep, "gate": cmd_gate, "optimize": cmd_optimize, "schema": cmd_schema,
            "train": cmd_train, "explain": cmd_explain}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `riskconsole` script; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        ws = Workspace.resolve(args.workspace)
        return COMMANDS[args.command](ws, args) or 0
    except RiskConsoleError as err:
        print(f"error: {terminal(err)}", file=sys.stderr)
    except duckdb.IOException as err:
        message = str(err).splitlines()[0]
        if "Conflicting lock" in message:
            pid = message.split("(PID ")[-1].split(")")[0] if "(PID " in message else "?"
            message = (f"the database is open in another process (PID {pid}, e.g. a running console); stop it, "
                       "or run this on another workspace")
        print(f"error: {terminal(message)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())

"""Reference tables of docs/, generated from the code so they cannot drift from it.

Each docs/*.md page mixes hand-written prose with generated blocks:

    <!-- generated:metrics -->
    ... rewritten by `python -m riskconsole.reference` ...
    <!-- /generated -->

Blocks are rendered from the pydantic models of `riskconsole/config.py` (field names, types,
defaults, `Field(description=...)`, nested models walked), the metric list of
`riskconsole/glossary.py`, the detector kinds and expression functions the code accepts, and the
argparse parser of `riskconsole/cli.py`. `--check` exits 1 when a block is stale; tests run it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any, Callable, Iterator

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

DOCS_DIR = Path(__file__).resolve().parents[1] / "docs"
_BLOCK = re.compile(r"(<!-- generated:([a-z0-9_-]+) -->\n)(.*?)(<!-- /generated -->)", re.S)
_SCALARS = {str: "text", int: "integer", float: "number", bool: "true/false", type(None): "null",
            typing.Any: "any", dt.date: "date", dt.datetime: "time"}


# ---------------------------------------------------------------- pydantic models


def type_name(annotation: Any) -> str:
    """A field type in words a YAML author reads: `text`, `list of text`, `Columns`, `text or null`."""
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation.__name__
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " / ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]  # optional-ness shows in the default column
        if all(a in _SCALARS or typing.get_origin(a) is list for a in members) and len(members) > 3:
            words = ["number", "text", "true/false", *(["date", "time"] if dt.date in members else []),
                     *(["null"] if type(None) in args else [])]
            lists = any(typing.get_origin(a) is list for a in members)
            return f"{', '.join(words[:-1])} or {words[-1]}" + (", or a list of them" if lists else "")
        return " or ".join(dict.fromkeys(type_name(a) for a in members)) or "null"
    if origin in (list, tuple, set, frozenset):
        return f"list of {type_name(args[0]) if args else 'any'}"
    if origin is dict:
        return f"map of {type_name(args[0])} to {type_name(args[1])}" if args else "map"
    return getattr(annotation, "__name__", str(annotation))


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "**required**"
    if info.default_factory is not None:
        value = info.default_factory()
        if isinstance(value, BaseModel):
            return "(see its keys)"
        return f"`{value!r}`" if value not in ([], {}) else "empty"
    if info.default is PydanticUndefined or info.default is None:
        return "—"
    value = info.default
    shown = str(value).lower() if isinstance(value, bool) else repr(value).replace("'", '"')
    return f"`{shown}`"


def _models_in(annotation: Any) -> Iterator[tuple[str, type[BaseModel]]]:
    """Nested models of a field type, each with the path suffix that reaches it (`[]`, `.NAME`)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield "", annotation
        return
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (list, tuple, set, frozenset) and args:
        for suffix, model in _models_in(args[0]):
            yield "[]" + suffix, model
    elif origin is dict and len(args) == 2:
        for suffix, model in _models_in(args[1]):
            yield ".NAME" + suffix, model
    elif origin in (typing.Union, types.UnionType):
        for arg in args:
            yield from _models_in(arg)


def field_rows(model: type[BaseModel], prefix: str = "", seen: tuple[type, ...] = ()) -> list[dict]:
    """Every key of a YAML kind, nested models walked: path, type, default, description."""
    rows = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        path = f"{prefix}{key}"
        rows.append({"key": path, "type": type_name(info.annotation), "default": _default(info),
                     "description": (info.description or "").strip()})
        for suffix, nested in _models_in(info.annotation):
            if nested not in seen:
                rows += field_rows(nested, f"{path}{suffix}.", (*seen, model, nested))
    return rows


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def model_table(model: type[BaseModel]) -> str:
    """A Markdown table of every key of `model` (see `field_rows`)."""
    lines = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for row in field_rows(model):
        lines.append(f"| `{row['key']}` | {_cell(row['type'])} | {row['default']} | {_cell(row['description'])} |")
    return "\n".join(lines)


# ---------------------------------------------------------------- metrics, kinds, functions


def metrics_table() -> str:
    """Every metric of the glossary: key, name shown, definition, formula, which direction is better."""
    from riskconsole.glossary import METRICS

    lines = ["| key | shown as | what it means | formula | better |", "| --- | --- | --- | --- | --- |"]
    for m in METRICS:
        lines.append(f"| `{m.key}` | {_cell(m.title)} | {_cell(m.definition)} | {_cell(m.formula)} | "
                     f"{m.better or '—'} |")
    return "\n".join(lines)


def detector_kinds_table() -> str:
    """The registered detector kinds and their default params."""
    from riskconsole.detectors.boosting import LightGBMDetector
    from riskconsole.detectors.outliers import PyODKind
    from riskconsole.detectors.registry import GENERIC_PYOD, KINDS

    lines = ["| kind | model | learns from labels | default params |", "| --- | --- | --- | --- |"]
    for kind, factory in KINDS.items():
        if isinstance(factory, PyODKind):
            params = ", ".join(f"{k}: {v}" for k, v in factory.defaults.items()) or "PyOD's defaults"
            lines.append(f"| `{kind}` | PyOD `{factory.cls}` | no | {params} |")
        else:
            name = getattr(factory, "__name__", type(factory).__name__)
            model = "LightGBM gradient boosting" if factory is LightGBMDetector else name
            lines.append(f"| `{kind}` | {model} | yes | see below |")
    lines.append(f"| `{GENERIC_PYOD}` | any other PyOD model, by its exact class name (e.g. `pyod.OCSVM`) | no | "
                 "the class's defaults |")
    return "\n".join(lines)


def functions_list() -> str:
    """The functions an expression may call."""
    from riskconsole.expressions import ALLOWED_FUNCTIONS, MAX_LENGTH
    from riskconsole.limits import MAX_NESTING

    names = ", ".join(f"`{f}`" for f in ALLOWED_FUNCTIONS)
    return (f"Functions: {names}.\n\nAn expression is at most {MAX_LENGTH:,} characters, and at most {MAX_NESTING} "
            "levels deep (brackets, function calls and CASE inside each other, NOT or '-' in a row); conditions joined by "
            "AND or by OR count as one level however many, a sum or product of terms as a level per term "
            "(at most about 60).")


# ---------------------------------------------------------------- CLI


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, help, parser) of each subcommand, in the order the parser defines them."""
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return []


def arguments(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The user-facing arguments of a (sub)parser (without -h/--help)."""
    return [a for a in parser._actions if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


def _usage_of(action: argparse.Action) -> str:
    if not action.option_strings:
        name = action.metavar or action.dest.upper()
        return f"{name} ..." if action.nargs in ("+", "*") else f"[{name}]" if action.nargs == "?" else name
    flag = "/".join(action.option_strings)
    if action.nargs == 0:
        return flag
    meta = action.metavar or (action.dest.upper().lstrip("_") if action.choices is None
                              else "{" + ",".join(map(str, action.choices)) + "}")
    return f"{flag} {meta}"


def _notes(action: argparse.Action) -> str:
    notes = []
    if action.required and action.option_strings:
        notes.append("required")
    if action.default is not None and action.default is not False and action.default != argparse.SUPPRESS \
            and action.nargs != 0:
        notes.append(f"default `{action.default}`")
    if action.choices is not None:
        notes.append("one of " + ", ".join(f"`{c}`" for c in action.choices))
    return "; ".join(notes)


def cli_reference() -> str:
    """Every subcommand of `riskconsole`, with each argument and its help text."""
    from riskconsole.cli import _parser

    blocks = []
    for name, help_, sub in _subcommands(_parser()):
        usage = " ".join(_usage_of(a) for a in arguments(sub) if not a.option_strings)
        summary = _cell(help_).rstrip(".")
        lines = [f"### `riskconsole {name}{' ' + usage if usage else ''}`", "", summary[:1].upper() + summary[1:] + ".", "",
                 "| argument | meaning | notes |", "| --- | --- | --- |"]
        for action in arguments(sub):
            text = (action.help or "").replace("%%", "%")  # argparse's escape for a literal %
            lines.append(f"| `{_usage_of(action)}` | {_cell(text)} | {_notes(action)} |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


# ---------------------------------------------------------------- the blocks and their files


def _model(name: str) -> Callable[[], str]:
    def render() -> str:
        from riskconsole import config

        return model_table(getattr(config, name))
    return render


BLOCKS: dict[str, Callable[[], str]] = {
    "dataset-fields": _model("Dataset"),
    "strategy-fields": _model("Strategy"),
    "detector-fields": _model("Detector"),
    "metrics": metrics_table,
    "detector-kinds": detector_kinds_table,
    "functions": functions_list,
    "cli": cli_reference,
}


def render_page(text: str, where: str = "page") -> str:
    """The page with every generated block re-rendered.

    Raises:
        KeyError: a block names no known generator.
    """
    def replace(match: re.Match) -> str:
        name = match.group(2)
        if name not in BLOCKS:
            raise KeyError(f"{where}: unknown generated block '{name}' (known: {', '.join(BLOCKS)})")
        return f"{match.group(1)}{BLOCKS[name]().rstrip()}\n{match.group(4)}"

    return _BLOCK.sub(replace, text)


def block_names(text: str) -> list[str]:
    """Names of the generated blocks of a page, in order."""
    return [m.group(2) for m in _BLOCK.finditer(text)]


def stale_pages(docs: Path = DOCS_DIR, write: bool = False) -> list[Path]:
    """Pages whose generated blocks differ from what the code renders now (rewritten when `write`)."""
    stale = []
    for page in sorted(docs.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        fresh = render_page(text, page.name)
        if fresh != text:
            stale.append(page)
            if write:
                page.write_text(fresh, encoding="utf-8")
    return stale


def main(argv: list[str] | None = None) -> int:
    """`python -m riskconsole.reference [--check] [--docs DIR]`: rewrite (or check) the generated blocks."""
    parser = argparse.ArgumentParser(prog="python -m riskconsole.reference",
                                     description="Regenerate the reference tables in docs/ from the code.")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block is stale")
    parser.add_argument("--docs", type=Path, default=DOCS_DIR, help="the docs folder (default: the repository's)")
    args = parser.parse_args(argv)
    stale = stale_pages(args.docs, write=not args.check)
    for page in stale:
        verb = "stale" if args.check else "rewrote"
        print(f"{verb}: {page}", file=sys.stderr if args.check else sys.stdout)
    if args.check and stale:
        print("run `python -m riskconsole.reference` to regenerate them", file=sys.stderr)
        return 1
    if not stale:
        print(f"docs up to date ({args.docs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

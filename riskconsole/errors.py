"""The one error type every riskconsole failure derives from."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RiskConsoleError(Exception):
    """A problem the user can fix; its message is one line: where, what, how to fix."""


class ConfigError(RiskConsoleError):
    """A YAML file (dataset, strategy, detector) is invalid."""


class ExpressionError(RiskConsoleError):
    """A `when`, `population` or `sql:` expression was refused."""


class DataError(RiskConsoleError):
    """Event data cannot be loaded or is missing."""


class QuarantineRefused(DataError):
    """A load would quarantine more than ingest.REFUSE_SHARE of a source's rows: nothing was published (a load with
    `accept_quarantine`, `riskconsole load --accept-quarantine`, publishes it anyway)."""


class Problems(RiskConsoleError):
    """Several problems of one file (`validate` reports every bad rule): `lines` holds each one-line message; the
    message itself stays one line, the first problem and how many more."""

    def __init__(self, problems: list[RiskConsoleError]) -> None:
        self.lines = [str(p) for p in problems]
        more = len(self.lines) - 1
        super().__init__(self.lines[0] + (f" (and {more} more problem{'s' if more != 1 else ''})" if more else ""))


def raise_all(problems: list[RiskConsoleError]) -> None:
    """Raise nothing, the one problem, or all of them as `Problems`."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise Problems(problems)


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name a did-you-mean suggests for `name`: one differing only in letter case first (`device` for
    `Device`, `ID` for `id`, which spelling distance alone misses), else the nearest spelling compared without
    regard to case, else None."""
    folded: dict[str, str] = {}
    for item in sorted(known):
        folded.setdefault(item.casefold(), item)
    same = folded.get(name.casefold())
    if same is not None:
        return same
    near = difflib.get_close_matches(name.casefold(), list(folded), n=1)
    return folded[near[0]] if near else None


def column_hint(name: str, known: Iterable[str], listing: str = "columns") -> str:
    """`did you mean 'user_id'?` for a name not among `known`, else `columns: a, b, c` (`listing` names them)."""
    near = closest(name, known)
    return f"did you mean '{near}'?" if near else f"{listing}: {', '.join(sorted(known))}"

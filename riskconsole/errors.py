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

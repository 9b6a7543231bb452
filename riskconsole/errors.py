"""The one error type every riskconsole failure derives from."""

from __future__ import annotations


class RiskConsoleError(Exception):
    """A problem the user can fix; its message is one line: where, what, how to fix."""


class ConfigError(RiskConsoleError):
    """A YAML file (dataset, strategy, detector) is invalid."""


class ExpressionError(RiskConsoleError):
    """A `when`, `population` or `sql:` expression was refused."""


class DataError(RiskConsoleError):
    """Event data cannot be loaded or is missing."""

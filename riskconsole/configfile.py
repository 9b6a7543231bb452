"""Config files without their models: a YAML file's text, and plain views of a validated dataset or strategy.

A CLI backtest served by the compiled-query cache (`querycache.py`) reads of `data/dataset.yaml` and of the strategy
only what its report needs: the column roles, the business costs, the engine, the hidden columns, the strategy's
name and description. Importing pydantic and building the config models costs ~0.13 CPU-s, the strict YAML reader
~0.04 more (issue 14), so a view of that, built from the validated model when the cache entry was written
(`querycache.validated`), is all such a run reads; it imports neither pydantic nor yaml. Anything a view does not
hold is read from the full model, parsed on first use (`full`), so a view never answers what it does not know.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

from riskconsole import limits
from riskconsole.errors import ConfigError
from riskconsole.names import ENGINES

DATASET_VIEW = ("columns", "business", "engine", "hidden_columns", "dump")  # the keys of a dataset view's data
STRATEGY_VIEW = ("name", "description", "level")  # of a strategy view's (level: None; entity levels have no view)


def read_config(path: Path, label: str) -> str:
    """The text of a YAML config file: at most `limits.MAX_CONFIG_BYTES`, UTF-8, one-line errors naming `label`."""
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(limits.MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"{label}: cannot read file ({err.strerror})") from None
    if len(data) > limits.MAX_CONFIG_BYTES:
        raise ConfigError(f"{label}: larger than {limits.MAX_CONFIG_BYTES:,} bytes, too large for a config file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ConfigError(f"{label}: line {line}: not UTF-8 text (byte 0x{data[err.start]:02x}); "
                          "save the file as UTF-8") from None


def role_columns(columns: dict) -> dict[str, str]:
    """Role -> its column, for the roles mapped to one column (id, time, label, label_time, amount, ...), from the
    dump of `config.Columns`."""
    return {k: v for k, v in columns.items() if isinstance(v, str)}


class View:
    """Attribute access over the plain data of a validated model; an attribute it does not hold comes from
    `full()`, the model itself (None: an AttributeError)."""

    def __init__(self, data: dict, full: Callable[[], Any] | None = None) -> None:
        self.__dict__["_data"], self.__dict__["_full"] = data, full

    def __getattr__(self, name: str) -> Any:
        data = self.__dict__["_data"]
        if name in data:
            return data[name]
        full = self.__dict__["_full"]
        if full is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(full(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a view of a config file is read-only ({name})")

    def model_dump(self, **options: Any) -> dict:
        """The model's `model_dump()` as kept when the view was built; with options (or none kept), the full model's."""
        data = self.__dict__["_data"]
        if options or "_dump" not in data:
            full = self.__dict__["_full"]
            if full is None:
                raise AttributeError("model_dump")
            return full().model_dump(**options)
        return copy.deepcopy(data["_dump"])


class ColumnsView(View):
    """`config.Columns` as a view."""

    def role_columns(self) -> dict[str, str]:
        return role_columns(self.__dict__["_data"]["_dump"])


def dataset_view(dataset: Any) -> dict:
    """What a cached backtest reads of a validated `config.Dataset`, as plain data (`querycache.validated` keeps it)."""
    return {"columns": dataset.columns.model_dump(), "business": dataset.business.model_dump(),
            "engine": dataset.engine, "hidden_columns": list(dataset.hidden_columns), "dump": json_dump(dataset)}


def dataset_of(data: dict, full: Callable[[], Any]) -> View:
    """The dataset view of `dataset_view`'s data; anything else is read from `full()`."""
    columns = ColumnsView({**data["columns"], "_dump": data["columns"]}, lambda: full().columns)
    business = View({**data["business"], "_dump": data["business"]}, lambda: full().business)
    return View({"columns": columns, "business": business, "engine": data["engine"],
                 "hidden_columns": list(data["hidden_columns"]), "json_dump": data["dump"]}, full)


def strategy_view(strategy: Any) -> dict | None:
    """What a cached backtest reads of a validated `config.Strategy` besides its cached plan (None: an entity-level
    strategy, which is never served from the cache)."""
    if strategy.level is not None:
        return None
    return {"name": strategy.name, "description": strategy.description, "level": None}


def strategy_of(data: dict, full: Callable[[], Any]) -> View:
    """The strategy view of `strategy_view`'s data; anything else is read from `full()`."""
    return View(dict(data), full)


def json_dump(dataset: Any) -> dict:
    """The dataset as `_meta` stores it at a load (JSON types), of a model or of a view."""
    if isinstance(dataset, View):
        return copy.deepcopy(dataset.json_dump)
    import json

    return json.loads(json.dumps(dataset.model_dump(mode="json", by_alias=True)))


def _texts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def dataset_shape(found: Any) -> bool:
    """Whether a cache entry is a dataset view's data (`dataset_view`); anything else is a miss."""
    if not (isinstance(found, dict) and tuple(found) == DATASET_VIEW):
        return False
    columns, business = found["columns"], found["business"]
    return isinstance(columns, dict) and isinstance(columns.get("time"), str) and \
        all(v is None or isinstance(v, str) or _texts(v) for v in columns.values()) and \
        isinstance(business, dict) and all(type(v) in (int, float) for v in business.values()) and \
        found["engine"] in ENGINES and _texts(found["hidden_columns"]) and isinstance(found["dump"], dict)


def strategy_shape(found: Any) -> bool:
    """Whether a cache entry is a strategy view's data (`strategy_view`); anything else is a miss."""
    return isinstance(found, dict) and tuple(found) == STRATEGY_VIEW and isinstance(found["name"], str) and \
        isinstance(found["description"], str) and found["level"] is None

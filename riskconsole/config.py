"""Pydantic models of the three YAML kinds (dataset, strategy, detector) and their loader."""

from __future__ import annotations

import datetime as dt
import math
import re
import types
import typing
from collections import Counter
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from riskconsole import limits
from riskconsole.configfile import read_config, role_columns
from riskconsole.errors import ConfigError, closest
from riskconsole.escape import printable
from riskconsole.names import ACTIONS, ENGINES, TRIMMED  # noqa: F401 - ENGINES: where features, backtests run

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A strategy name becomes a file and folder name: no separators, no dots, no leading '-'.
_STRATEGY_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
WINDOW_AGGS = ("count", "sum", "avg", "min", "max", "count_distinct", "stddev")
GRAPH_KINDS = ("component_size", "degree", "fraud_share")
LABEL_AGGS = ("count", "sum", "avg")
# `time_format:` one format, formats tried in order, or a map column -> format(s) (unmapped columns: ISO-8601); a
# format is a strptime format, `ISO-8601` (times.ISO: the reading without time_format), or epoch_s / epoch_ms /
# epoch_us (numbers since 1970: times.EPOCHS)
TimeFormat = str | list[str] | dict[str, str | list[str]] | None


def duration_seconds(text: str) -> int:
    """Parse a duration such as `1h`, `30d`, `10m` into seconds.

    Raises:
        ValueError: the text is not an integer followed by s, m, h, d or w.
    """
    match = _DURATION.match(str(text))
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"'{text}' is not a duration (write a positive integer and a unit: 30s, 10m, 1h, 7d, 2w)")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


_SOURCE = ("File or glob relative to the workspace (.csv, .parquet, .json, .jsonl); a file that exists is read as "
           "itself, even named like a glob (orders [final].csv). With engine spark also a URI (s3a://bucket/orders/"
           "*.parquet, hdfs://…, file:///…), listed and read by Spark.")

class _Strict(BaseModel):
    # inf/nan (also as text: "inf") would turn costs into inf and money metrics into NaN
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"'{value}' is not a valid name (letters, digits and _, not starting with a digit)")
    return value


def _check_loaded_name(value: str) -> str:
    """A `rename:` target: a column name as an events export could have it (a stream's or table's key column is
    renamed to the events' own name, which may be a spreadsheet's 'Customer ID'): printable, not empty, no spaces
    around it. A name that is not a plain one is quoted wherever SQL names it, as the events' columns are."""
    if not value.strip() or value != value.strip() or not value.isprintable():
        shown = printable(value)
        raise ValueError(f"'{shown}' is not a column name: give the name as the events file writes it (no spaces "
                         "around it, no control characters), e.g. customer_id or Customer ID")
    return value


def _check_label_values(value: dict[str, int | None]) -> dict[str, int | None]:
    """At most one key is empty text (`""`, `" "`: what an empty cell means, e.g. `"": 0` for an export that writes
    `chargeback` for fraud and nothing for good orders)."""
    if len([key for key in value if not key.strip(TRIMMED)]) > 1:
        raise ValueError("an empty label is mapped twice (keys that are only spaces are all the empty label): keep one")
    return value


# ---------------------------------------------------------------- dataset


class Columns(_Strict):
    """Which source column plays which role."""

    id: str = Field(description="Unique event id column.")
    time: str = Field(description="Event timestamp column (UTC; an offset or zone in the data is converted to UTC).")
    label: str | None = Field(None, description="1 = fraud, 0 = good, empty = unknown.")
    label_time: str | None = Field(None, description="When the label became known (e.g. chargeback date). Without "
                                   "--to, backtest windows then end on the last day whose labels are mature.")
    amount: str | None = Field(None, description="Money at stake; drives the business metrics.")
    entities: list[str] = Field(default_factory=list, description="Keys that features group by.")
    label_derived: list[str] = Field(
        default_factory=list,
        description="Columns that are a function of the label (answer keys): no rule, feature or model may read them.",
    )
    prod_action: str | None = Field(
        None, description="What the production strategy decided for the event: allow, review or block (for an "
                          "explored event, the block it would have made). Production-blocked events never get a "
                          "chargeback, so reports give bounds over their unknown outcomes.")
    explore: str | None = Field(
        None, description="1 where production let the event through at random despite its decision (an "
                          "exploration sample, so its outcome gets a label), else 0 or empty; needs prod_action and "
                          "propensity.")
    propensity: str | None = Field(
        None, description="The chance, in (0, 1], with which an explored event was let through; its outcome is "
                          "weighted by the inverse in the report's `estimate`.")

    @model_validator(mode="after")
    def _outcome_roles(self) -> Columns:
        if self.explore and not self.propensity:
            raise ValueError(f"explore: '{self.explore}' needs columns.propensity (the chance each explored event "
                             "was let through): map it, or remove explore")
        if (self.explore or self.propensity) and not self.prod_action:
            raise ValueError("explore/propensity need columns.prod_action (what production decided: allow, review or "
                             "block): map it")
        return self

    def role_columns(self) -> dict[str, str]:
        """Role -> its column, for the roles mapped to one column (id, time, label, label_time, amount, ...)."""
        return role_columns(self.model_dump())


class Feature(_Strict):
    """One point-in-time feature: a window aggregate (of the decision stream or of a stream), a label aggregate, a
    table lookup, or a derived SQL expression."""

    name: str = Field(description="Column name of the feature in the frame; rules and detectors read it by this "
                                  "name (letters, digits and _).")
    description: str | None = Field(None, description="Free text shown next to the feature in the console.")
    count: str | None = Field(None, description="Count the non-null values of this column in the window, or '*' "
                                                "for every event; 0 when the window is empty.")
    sum: str | None = Field(None, description="Sum of this numeric column over the window; 0 when empty.")
    avg: str | None = Field(None, description="Average of this numeric column over the window; null when empty.")
    min: str | None = Field(None, description="Smallest value of this column (a number, text or time) in the "
                                              "window; null when empty.")
    max: str | None = Field(None, description="Largest value of this column (a number, text or time) in the "
                                              "window; null when empty.")
    count_distinct: str | None = Field(None, description="Number of distinct values of this column in the window "
                                                         "(e.g. users per device); 0 when empty.")
    stddev: str | None = Field(None, description="Sample standard deviation of this numeric column over the window "
                                                 "(the entity's usual spread); null with fewer than two values.")
    first_seen: str | None = Field(None, description="1 when no decision event of the same `by` entity had this "
                                   "column's value in [t - window, t) (a new device for the user), else 0; NULL "
                                   "when the value or the `by` entity is NULL.")
    graph: str | None = Field(None, description="Graph feature of the `node` column's entity over the last `window` "
                              "(whole days, as of the start of the event's day): component_size (nodes in its "
                              "connected component, 1 when alone), degree (direct neighbours) or fraud_share (share "
                              "of the component's other nodes with a fraud-labelled decision event).")
    node: str | None = Field(None, description="Graph features: the entity column whose nodes are linked (a column "
                             "of the decision events, e.g. user_id).")
    links: list[str] | None = Field(None, description="Graph features: columns whose shared value links two nodes "
                                    "(device_id, payment_id, ...); read from the decision events and every stream "
                                    "holding the node column and the link column.")
    max_degree: int | None = Field(None, description="Graph features: a link value shared by more than this many "
                                   "nodes in the window (a NAT IP, a marketplace address) is a hub and links "
                                   "nothing; at least 1.")
    from_: str | None = Field(None, alias="from", description="Aggregate the rows of this stream (a name under "
                              "`streams:`) instead of the decision events; the `by` columns must exist under the "
                              "same names in both.")
    by: str | list[str] | None = Field(None, description="Entity column the window groups by; a list for a "
                                       "compound key (a NULL part means an empty window: count 0); absent: every "
                                       "row of the stream.")
    window: str | None = Field(None, description="Look-back, e.g. 1h, 30d: rows with time in [t - window, t).")
    label_delay: str | None = Field(None, description="Label features only: labels of events in [t - delay - window, "
                                    "t - delay); for graph: fraud_share, labels of events in [start of day - window, "
                                    "start of day - delay) (whole days).")
    lookup: str | None = Field(None, description="TABLE.COLUMN: the column of the table row matching the event "
                               "(by key, as of the event's time with valid_from, or by range); NULL when none.")
    sql: str | None = Field(None, description="Derived feature: an expression over columns and earlier features "
                            "(one a window aggregates, e.g. hour(ts), reads the event's own columns only).")
    where: str | None = Field(None, description="Window features: only the rows for which this condition holds are "
                              "aggregated (e.g. `NOT ok` for failed logins); it reads the aggregated rows' own "
                              "columns (the stream's, with `from:`), never features or the label.")

    _name = field_validator("name")(_check_name)

    @field_validator("by")
    @classmethod
    def _by_list(cls, value: str | list[str] | None) -> str | list[str] | None:
        """A compound key names at least two distinct columns (one column is written without a list)."""
        if isinstance(value, list):
            if not value or len(set(value)) != len(value):
                raise ValueError("by: a compound key is a list of distinct columns, e.g. [device_id, ip]")
            if len(value) == 1:
                return value[0]
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Feature:
        aggs = [a for a in WINDOW_AGGS if getattr(self, a) is not None]
        kinds = aggs + [k for k in ("first_seen", "graph", "sql", "lookup") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"give exactly one of {', '.join(WINDOW_AGGS)}, first_seen, graph, lookup or sql "
                             f"(got {', '.join(kinds) or 'none'})")
        if self.graph is None and (self.node or self.links or self.max_degree is not None):
            raise ValueError("node, links and max_degree are for graph features (graph: component_size, ...)")
        if self.sql is not None or self.lookup is not None:
            kind = "sql" if self.sql is not None else "lookup"
            if self.by or self.window or self.label_delay or self.from_ or self.where:
                raise ValueError(f"a `{kind}:` feature takes no aggregate, from, by, window, where, label_delay or other "
                                 "kind")
            if self.lookup is not None and not re.match(r"^[^.]+\.[^.]+$", self.lookup):
                raise ValueError(f"lookup: write TABLE.COLUMN (e.g. merchants.tier), not '{self.lookup}'")
            return self
        if not self.window:
            raise ValueError("a window feature needs `window:` (e.g. 1h)")
        duration_seconds(self.window)
        if self.label_delay is not None:
            duration_seconds(self.label_delay)
        if self.where is not None and (self.graph is not None or self.first_seen is not None):
            raise ValueError(f"where: filters the rows a window aggregates; a {'graph' if self.graph else 'first_seen'} "
                             "feature takes none")
        if self.graph is not None:
            self._check_graph()
        elif self.first_seen is not None and (self.from_ or self.label_delay):
            raise ValueError("first_seen reads the decision events: it takes no from or label_delay")
        return self

    def _check_graph(self) -> None:
        if self.graph not in GRAPH_KINDS:
            raise ValueError(f"graph: unknown kind '{self.graph}' (kinds: {', '.join(GRAPH_KINDS)})")
        if not self.node or not self.links:
            raise ValueError("a graph feature needs node: (a column) and links: (a list of columns)")
        if self.by or self.from_:
            raise ValueError("a graph feature takes no by or from (node: and links: say what is linked)")
        if self.node in self.links or len(set(self.links)) != len(self.links):
            raise ValueError("links: distinct columns, other than the node column")
        if self.max_degree is not None and self.max_degree < 1:
            raise ValueError(f"max_degree: at least 1 (got {self.max_degree})")
        if self.label_delay is not None and self.graph != "fraud_share":
            raise ValueError(f"label_delay is only for graph: fraud_share, not {self.graph}")
        for key in ("window", "label_delay"):
            text = getattr(self, key)
            if text is not None and duration_seconds(text) % 86_400:
                raise ValueError(f"{key}: a graph feature is built per day: write whole days (e.g. 30d), not {text}")

    @property
    def agg(self) -> str | None:
        """The aggregate name (count, sum, ...) or None for a derived or lookup feature."""
        return next((a for a in WINDOW_AGGS if getattr(self, a) is not None), None)

    @property
    def of(self) -> str | None:
        """The column the aggregate reads ('*' for count(*))."""
        return getattr(self, self.agg) if self.agg else None

    @property
    def keys(self) -> list[str]:
        """The `by` columns as a list (empty: every row)."""
        if self.by is None or self.graph is not None:
            return []
        return [self.by] if isinstance(self.by, str) else list(self.by)


class StreamColumns(_Strict):
    """Which column of a stream plays which role."""

    time: str = Field(description="The row's timestamp column (parsed like every time: ISO-8601 or time_format).")
    id: str | None = Field(None, description="Optional unique row id: a missing or repeated one is quarantined.")


class Stream(_Strict):
    """A context stream: rows that are never decided, only aggregated by `from:` features."""

    source: str = Field(description=_SOURCE)
    columns: StreamColumns = Field(description="Which source column is the time (and the optional id).")
    rename: dict[str, str] = Field(default_factory=dict, description="Source column -> loaded name, so key "
                                   "columns match the decision stream's names (e.g. {uid: user_id}, or {customer_id: Customer ID} where the "
                                   "orders export's header says Customer ID).")
    time_format: TimeFormat = Field(None, description="strptime format(s) of text times, as for the "
                                                "decision stream.")
    decimal_separator: Literal[".", ","] = Field(".", description="The decimal mark of numbers in text files "
                                                 "(CSV, JSON text): ',' for 723,03 (European spreadsheets). A number "
                                                 "grouped in thousands is read with its decimals (1.234,56), "
                                                 "quarantined without (1.234), never misread.")
    types: dict[str, str] = Field(default_factory=dict, description="Optional DuckDB type per source column.")

    @field_validator("rename")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        for target in value.values():
            _check_loaded_name(target)
        return value


class Range(_Strict):
    """A range table's columns: the event column matched and the bounds that hold it."""

    value: str = Field(description="Event column looked up (e.g. ip_num).")
    low: str = Field(description="Table column: lowest value of the range, included.")
    high: str = Field(description="Table column: highest value of the range, included.")


class Table(_Strict):
    """A table joined onto every decision event: by key (optionally as of the event's time) or by range."""

    source: str = Field(description=_SOURCE)
    key: str | None = Field(None, description="Column joined on the event column of the same loaded name (one row "
                            "per key, or per key and valid_from; repeats are quarantined); if the events call it "
                            "otherwise, rename it under rename:.")
    valid_from: str | None = Field(None, description="Time from which a row is in force: an event at t sees the "
                                   "row with the latest valid_from <= t (a later update never leaks back).")
    range: Range | None = Field(None, description="Range join: the row whose [low, high] holds the event's "
                                "value; the first by low if several overlap (load warns); no match gives NULL.")
    time_format: TimeFormat = Field(None, description="strptime format(s) of text times (valid_from "
                                                "and TIMESTAMP-typed columns).")
    decimal_separator: Literal[".", ","] = Field(".", description="The decimal mark of numbers in text files "
                                                 "(CSV, JSON text): ',' for 723,03 (European spreadsheets). A number "
                                                 "grouped in thousands is read with its decimals (1.234,56), "
                                                 "quarantined without (1.234), never misread.")
    types: dict[str, str] = Field(default_factory=dict, description="Optional DuckDB type per source column.")
    rename: dict[str, str] = Field(default_factory=dict, description="Source column -> loaded name, applied at "
                                   "load (e.g. {user_id: Customer} to join the events' Customer column). key, "
                                   "valid_from, range, label, label_time and types: still name source columns; "
                                   "lookups read loaded names.")
    label: str | None = Field(None, description="Entity label column (1 = the entity is fraudulent, 0 = good, "
                              "empty = unknown): entity-level strategies deciding this table's key read their label "
                              "from it. Hidden from rules and features, like the events' label.")
    label_time: str | None = Field(None, description="When the entity label became known (e.g. the ban date): "
                                   "with --as-of, a label known later counts as unknown. Parsed like every time "
                                   "(ISO-8601 or the table's time_format); empty text: not known yet.")
    label_values: dict[str, Literal[0, 1] | None] = Field(
        default_factory=dict, description="Texts of `label` that mean fraud (1), good (0) or not known (null), as the "
        "dataset's label_values, e.g. {banned: 1, active: 0}; any other value quarantines its row.")
    _label_values = field_validator("label_values")(_check_label_values)

    @model_validator(mode="after")
    def _one_join(self) -> Table:
        if (self.key is None) == (self.range is None):
            raise ValueError("give exactly one of key: (a column) or range: {value, low, high}")
        if self.valid_from is not None and self.key is None:
            raise ValueError("valid_from works with key: (as-of join), not with range:")
        if (self.label is not None or self.label_time is not None) and self.key is None:
            raise ValueError("label: and label_time: are entity labels: they need key: (the entity column)")
        if self.label_time is not None and self.label is None:
            raise ValueError("label_time: needs label: (the entity label column it dates)")
        if self.label_values and self.label is None:
            raise ValueError("label_values: needs label: (the entity label column whose words it maps)")
        return self

    @field_validator("rename")
    @classmethod
    def _renamed(cls, value: dict[str, str]) -> dict[str, str]:
        """Every loaded name is a valid name, and no two columns are renamed to one (SQL names ignore case)."""
        seen: dict[str, str] = {}
        for source, loaded in value.items():
            _check_loaded_name(loaded)
            other = seen.setdefault(loaded.casefold(), source)
            if other != source:
                raise ValueError(f"'{other}' and '{source}' are both renamed to '{loaded}' (names ignore letter "
                                 "case): give each its own name")
        return value

    def loaded(self, column: str | None) -> str | None:
        """The loaded name of one of the table's source columns (after `rename:`); None stays None."""
        return None if column is None else self.rename.get(column, column)


class Business(_Strict):
    """Costs and capacities that turn decisions into money."""

    review_cost: float = Field(3.0, ge=0, description="Money per reviewed event.")
    review_capacity: int = Field(400, ge=0, description="Reviews per day the team can do.")
    review_catch_rate: float = Field(0.9, ge=0, le=1, description="Share of reviewed fraud that review stops.")
    good_block_cost: float = Field(0.3, ge=0, description="Money lost per unit of good amount blocked.")


def redact_remote(url: str) -> str:
    """A Spark Connect URL without its `;param=value` part (a token, a user id) for messages."""
    return url.split(";", 1)[0].rstrip("/")


class SparkSettings(_Strict):
    """Settings of the Spark session the `spark` engine starts (DESIGN §7, docs/scale.md)."""

    master: str = Field("local[*]", description="spark.master: local[*] (every core of this machine), local[2], "
                        "spark://host:7077, yarn, k8s://... A cluster needs data/spark/ (or spark.store) on storage "
                        "its executors read.")
    remote: str | None = Field(None, description="Spark Connect instead of a driver here: sc://host:15002 (with "
                               "Spark's own ;token=... parameters if the server wants them), or local[N] for a Connect "
                               "server PySpark starts on this machine. The server's Python needs riskconsole, LightGBM "
                               "and PyOD; spark.store must be storage both the server and this machine reach.")
    driver_memory: str | None = Field(None, description="spark.driver.memory, e.g. 8g (default in local mode: a third of "
                                       "this machine's memory, 1 to 16g; otherwise Spark's, 1g).")
    conf: dict[str, str | int | float | bool] = Field(default_factory=dict, description="Any other Spark settings, "
                                                      "e.g. spark.sql.shuffle.partitions: 64 (the session time zone "
                                                      "is always UTC, as in DuckDB, and a `quoted` column name is "
                                                      "never a regex: quotedRegexColumnNames is off).")
    store: str | None = Field(None, description="Where engine spark keeps its Parquet (the events by day, streams, "
                              "tables, the frame, scores): a URI (file:///mnt/shared/x, s3a://bucket/prefix) or an "
                              "absolute path, read and written through Spark's Hadoop FileSystem API (pyarrow's "
                              "file systems under spark.remote; default: data/spark/ of the workspace). One folder per data version; only this workspace's "
                              "versions are removed there.")

    @field_validator("conf", mode="before")
    @classmethod
    def _conf(cls, value: Any) -> Any:
        """One value per Spark setting, each wrong one named in one line with its fix (pydantic's own text named a
        member of the value's union per problem: `spark.conf.spark.jars.packages.str: Input should be a valid
        string (+11 more)`)."""
        if not isinstance(value, dict):
            raise ValueError("write Spark settings as a mapping of names to values, e.g. "
                             "conf: {spark.sql.shuffle.partitions: 64}")
        wrong = [key for key, item in value.items() if not isinstance(key, str) or "." not in key or item is None
                 or isinstance(item, (list, dict))]
        if not wrong:
            return value
        more = f" (more to fix: {', '.join(repr(k) for k in wrong[1:])})" if wrong[1:] else ""
        raise ValueError(_conf_problem(wrong[0], value[wrong[0]]) + more)

    @field_validator("master")
    @classmethod
    def _master(cls, value: str) -> str:
        """A master URL Spark's launcher takes: refused here in one line, not by the JVM's stack trace."""
        if re.fullmatch(r"local(\[(\d+|\*)(\s*,\s*\d+)?\])?|local-cluster\[\s*\d+\s*,\s*\d+\s*,\s*\d+\s*\]|yarn",
                        value) or re.fullmatch(r"[a-z][a-z0-9+.-]*://\S+", value):
            return value
        raise ValueError(f"'{value}' is not a Spark master URL: write local[*] (every core of this machine), local[2], "
                         "spark://host:7077, yarn or k8s://https://host:443")

    @field_validator("driver_memory")
    @classmethod
    def _driver_memory(cls, value: str | None) -> str | None:
        """The JVM's heap size syntax (Spark passes it as -Xmx in local and client mode): digits, one of k, m, g, t."""
        if value is None or re.fullmatch(r"\d+[kmgtKMGT]?", value):
            return value
        raise ValueError(f"'{value}' is not a JVM memory size: write a whole number and a unit, e.g. 8g or 512m "
                         "(no space, no 'b')")

    @field_validator("remote")
    @classmethod
    def _remote(cls, value: str | None) -> str | None:
        """A Spark Connect URL (`sc://host[:port][/;param=value...]`) or `local`/`local[N]`/`local[*]` (a Connect
        server PySpark starts here, as its `builder.remote` takes)."""
        if value is None or re.fullmatch(r"sc://[^\s/;:=]+(:\d+)?(/(;[^\s;=]+=[^\s;=]*)*)?", value) \
                or re.fullmatch(r"local(\[(\d+|\*)\])?", value):
            return value
        raise ValueError(f"'{redact_remote(value)}' is not a Spark Connect URL: write sc://host:15002 (a Connect "
                         "server; parameters after a slash, sc://host:15002/;token=...), or local[2] for one PySpark "
                         "starts on this machine")

    @model_validator(mode="after")
    def _one_target(self) -> SparkSettings:
        if self.remote is not None and "master" in self.model_fields_set:
            raise ValueError("set spark.master (riskconsole is the Spark driver) or spark.remote (a Spark Connect "
                             "server is), not both")
        if self.server is not None and self.driver_memory:
            raise ValueError("spark.driver_memory: a Spark Connect server's driver memory is set where the server "
                             "starts (spark.driver.memory of its start-connect-server.sh), not by a client: remove it")
        if self.server is not None and not self.store and self.server[0] not in ("localhost", "127.0.0.1"):
            raise ValueError(f"spark.remote {redact_remote(self.remote)}: a Connect server on another machine "
                             "cannot see this workspace's data/spark/: set spark.store to storage both reach "
                             "(s3a://bucket/prefix, or a shared mount file:///mnt/shared/riskconsole)")
        return self

    @property
    def connect(self) -> bool:
        """Whether the engine is a Spark Connect client (`remote`) rather than the driver (`master`)."""
        return self.remote is not None

    @property
    def server(self) -> tuple[str, int] | None:
        """(host, port) of an `sc://` Connect server (port 15002 unless the URL says); None without one (`master`,
        or `remote: local[N]`, a server PySpark starts here)."""
        if self.remote is None or not self.remote.startswith("sc://"):
            return None
        host, _, port = self.remote.removeprefix("sc://").split("/")[0].rpartition(":")
        return (host, int(port)) if host and port.isdigit() else (port, 15002)

    @property
    def target(self) -> str:
        """Where Spark runs, as the CLI and console say it: the master URL, or `connect sc://host:port` (a URL's
        parameters, which may hold a token, never shown)."""
        return f"connect {redact_remote(self.remote)}" if self.remote is not None else self.master

    @field_validator("store")
    @classmethod
    def _store(cls, value: str | None) -> str | None:
        """A URI with a scheme and a location, or an absolute path (a relative one would depend on the cwd)."""
        if value is None:
            return value
        scheme, _, rest = value.partition("://") if "://" in value else ("", "", value)
        if scheme:
            fine = re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme) and rest.strip("/") and \
                (scheme.lower() != "file" or rest.startswith("/"))  # file:///abs/path (file://host/... is not local)
        else:
            fine = value.startswith("/")
        if not fine or any(c.isspace() for c in value):
            raise ValueError(f"'{value}' is neither an absolute path nor a URI with a scheme and a location: write an "
                             "absolute path (/mnt/shared/riskconsole) or a URI (file:///mnt/shared/riskconsole, "
                             "s3a://bucket/prefix)")
        return value


def _conf_problem(key: Any, value: Any) -> str:
    """What is wrong with one entry of `spark.conf` and how to write it (`SparkSettings._conf`)."""
    unnamed = f"{key!r} is not a Spark setting's name: write the full name, e.g. spark.sql.shuffle.partitions: 64"
    if not isinstance(key, str):
        return unnamed
    kinds = "text, a number or true/false"
    one = f"a Spark setting is one value ({kinds})"
    if value is None:
        return f"'{key}' has no value: give it one ({kinds}), or remove it"
    if isinstance(value, dict):
        name, leaf = key, value
        while isinstance(leaf, dict) and leaf:
            sub, leaf = next(iter(leaf.items()))
            name = f"{name}.{sub}"
        example = f", e.g. {name}: {leaf}" if name != key and not isinstance(leaf, (dict, list)) else ""
        return f"'{key}' is a mapping, but {one}: write each setting on a line of its own by its full name{example}"
    if not isinstance(value, list):  # one value under a name without a dot: every Spark setting is dotted
        return unnamed
    if all(isinstance(v, (str, int, float)) for v in value):
        joined = ",".join(str(v).lower() if isinstance(v, bool) else str(v) for v in value)
        return f"'{key}' is a list, but {one}: write the list as one comma-separated string, {key}: '{joined}'"
    return f"'{key}' is a list, but {one}: write it as one string (Spark's lists are comma-separated)"


class Dataset(_Strict):
    """`data/dataset.yaml`: where events come from, column roles, features, business costs."""

    source: str = Field(description=_SOURCE)
    columns: Columns = Field(description="Which source column plays which role (id, time, label, amount, ...).")
    types: dict[str, str] = Field(default_factory=dict, description="Optional DuckDB type per column.")
    time_format: TimeFormat = Field(
        None, description="strptime format(s) of text times, tried in order (e.g. '%m/%d/%y %H:%M'); applies to "
                          "time, label_time and every column typed TIMESTAMP. Without it only ISO-8601 text is a time; "
                          "the entry ISO-8601 reads it beside other layouts (e.g. [ISO-8601, '%d/%m/%Y %H:%M']); "
                          "epoch_s, epoch_ms or epoch_us read numbers since 1970 (1730800000000: epoch_ms). "
                          "An offset or zone (%z, %Z) is converted to UTC. A map gives each column its own format(s) "
                          "and leaves the others ISO-8601 (e.g. {chargeback_date: '%d.%m.%Y'}).")
    decimal_separator: Literal[".", ","] = Field(".", description="The decimal mark of numbers in text files "
                                                 "(CSV, JSON text): ',' for 723,03 (European spreadsheets). A number "
                                                 "grouped in thousands is read with its decimals (1.234,56), "
                                                 "quarantined without (1.234), never misread.")
    label_values: dict[str, Literal[0, 1] | None] = Field(
        default_factory=dict, description="Label texts that mean fraud (1), good (0) or not known (null), for labels "
        "written as words, e.g. {fraud: 1, legit: 0, pending: null}; matched ignoring case and surrounding spaces. "
        "1, 0, true, false and empty (not known) are always understood; \"\": 0 reads an empty label as good; any "
        "other value quarantines its row.")
    _label_values = field_validator("label_values")(_check_label_values)
    prod_action_values: dict[str, Literal["allow", "review", "block"]] = Field(
        default_factory=dict, description="Words of columns.prod_action that mean allow, review or block, for an "
        "export that writes production's decisions its own way, e.g. {approve: allow, decline: block, "
        "manual_review: review}; matched ignoring case and surrounding spaces. allow, review and block (any case) "
        "are always understood; \"\": allow reads an empty decision as allowed; any other value is a load error.")
    streams: dict[str, Stream] = Field(default_factory=dict, description="Context streams by name (signups, "
                                       "logins, refunds, ...): loaded into table stream_NAME, read by `from:` features.")
    tables: dict[str, Table] = Field(default_factory=dict, description="Tables by name (merchants, IP ranges, ...): "
                                     "loaded into table table_NAME, read by `lookup:` features.")
    features: list[Feature] = Field(default_factory=list, description="Point-in-time features built at load, in "
                                    "order (a derived feature may read earlier ones).")
    business: Business = Field(default_factory=Business, description="Costs and capacities that turn decisions "
                               "into money and review load.")
    engine: Literal["duckdb", "spark"] = Field("duckdb", description="Where loading, features and backtests run: "
                                               "duckdb (this machine) or spark (the files read and quarantined, "
                                               "features and backtests on Spark; see docs/scale.md). --engine and "
                                               "$RISKCONSOLE_ENGINE override it.")
    spark: SparkSettings = Field(default_factory=SparkSettings, description="Spark session settings for engine: spark (master, "
                         "driver memory, extra conf).")

    @model_validator(mode="after")
    def _unique_features(self) -> Dataset:
        seen: set[str] = set()
        for feature in self.features:
            if feature.name in seen:
                raise ValueError(f"feature '{feature.name}' is defined twice")
            seen.add(feature.name)
        return self

    @model_validator(mode="after")
    def _empty_label_beside_prod_action(self) -> Dataset:
        """`"": 0` cannot sit beside prod_action: an order production blocked has no outcome, its empty label is
        what makes it unobservable (DESIGN §6.2), and mapped to good it would read as a good order blocked."""
        empty = [v for k, v in self.label_values.items() if not k.strip(TRIMMED)]
        if self.columns.prod_action and empty and empty[0] is not None:
            raise ValueError(f"label_values: an empty label mapped to {empty[0]} cannot go with columns.prod_action: "
                             "an event production blocked has no outcome, and its empty label is what says so; write "
                             "a word for the outcome you know in the export (e.g. none) and map that instead")
        return self

    @model_validator(mode="after")
    def _action_words(self) -> Dataset:
        """prod_action_values maps words of a mapped prod_action; a decision's own name means that decision; two keys
        that read alike (case, spaces) say one thing."""
        if not self.prod_action_values:
            return self
        if not self.columns.prod_action:
            raise ValueError("prod_action_values: needs columns.prod_action (the column whose words it maps)")
        seen: dict[str, tuple[str, str]] = {}
        for key, decision in self.prod_action_values.items():
            word = key.strip(TRIMMED).lower()  # as the load trims it (sources.action_word)
            if word in ACTIONS and word != decision:
                raise ValueError(f"prod_action_values: '{key}' always means {word}; remove it or map another word")
            if word in seen and seen[word][1] != decision:
                raise ValueError(f"prod_action_values: '{seen[word][0]}' and '{key}' are the same word (case and "
                                 f"spaces aside) mapped to {seen[word][1]} and {decision}: keep one")
            seen[word] = (key, decision)
        return self

    @model_validator(mode="after")
    def _known_sources(self) -> Dataset:
        """Stream and table names are plain and distinct; every `from:` and `lookup:` names one that exists."""
        for name in [*self.streams, *self.tables]:
            _check_name(name)
        both = sorted(set(self.streams) & set(self.tables))
        if both:
            raise ValueError(f"'{both[0]}' is both a stream and a table (give them different names)")
        for feature in self.features:
            where = f"feature '{feature.name}'"
            if feature.from_ is not None and feature.from_ not in self.streams:
                known = ", ".join(sorted(self.streams)) or "none: add it under streams:"
                raise ValueError(f"{where}: from: unknown stream '{feature.from_}' (streams: {known})")
            if feature.lookup is not None and feature.lookup.split(".")[0] not in self.tables:
                known = ", ".join(sorted(self.tables)) or "none: add it under tables:"
                raise ValueError(f"{where}: lookup: unknown table '{feature.lookup.split('.')[0]}' (tables: {known})")
        return self

    @property
    def hidden_columns(self) -> list[str]:
        """Columns no rule, non-label feature or model may read (the answer)."""
        cols = self.columns
        return [c for c in (cols.label, cols.label_time, *cols.label_derived) if c]


# ---------------------------------------------------------------- strategy

# a date or time written unquoted in YAML (2026-03-01, 2026-03-01 12:00:00) is a DATE or TIMESTAMP in rules
ParamValue = bool | int | float | str | None | dt.datetime | dt.date | list[bool | int | float | str | None | dt.datetime
                                                                           | dt.date]


def _utc(value: Any) -> Any:
    """A time with an offset (YAML's 2026-10-25T02:30:00+02:00) as the UTC time it is, as every time riskconsole
    reads; anything else as it is."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value


class Rule(_Strict):
    """`{action} if {when}`."""

    name: str = Field(description="Rule name, unique in the strategy (letters, digits and _).")
    when: str = Field(description="SQL boolean expression over columns, features and detector scores; $param for params.")
    action: Literal["allow", "block", "review"] = Field(description="What a match does: allow exempts (beats "
                                                         "everything), block beats review.")
    enabled: bool = Field(True, description="A disabled rule is reported (hits) but takes no part in decisions.")
    description: str | None = Field(None, description="Free text: why the rule exists.")

    _name = field_validator("name")(_check_name)


class Level(_Strict):
    """An entity-level strategy's unit: one decision per entity per period in which it had events (DESIGN §3.2)."""

    entity: str = Field(description="Entity column decided (e.g. merchant_id): an events column listed in "
                        "columns.entities.")
    every: str = Field("1d", description="Period length (1d: one decision per entity per day it had events); "
                       "periods start at UTC midnight multiples of it since 1970-01-01, a Thursday (7d periods run "
                       "Thursday to Wednesday).")
    horizon: str | None = Field(None, description="Money window after the period's start: a block stops the "
                                "entity's fraud amount there and loses its good amount (default: the period).")

    @field_validator("every", "horizon")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            duration_seconds(value)
        return value

    @property
    def every_seconds(self) -> int:
        """The period length in seconds."""
        return duration_seconds(self.every)

    @property
    def horizon_seconds(self) -> int:
        """The money window in seconds (the period when not given)."""
        return duration_seconds(self.horizon or self.every)


class Strategy(_Strict):
    """`strategies/NAME.yaml`: rules, params and the population they decide."""

    name: str = Field(description="Strategy name, shown in reports and used in report folder names: letters, "
                      "digits, _ and - (not starting with -), at most 100 characters.")
    description: str = Field("", description="Free text: what the strategy does and why.")
    population: str | None = Field(None, description="Optional SQL filter: which events the strategy decides.")
    level: Level | None = Field(None, description="Decide entities, not events: {entity: merchant_id, every: 1d, "
                                "horizon: 7d}. Rules then read the entity's features as of each period's start.")
    params: dict[str, ParamValue] = Field(default_factory=dict, description="Named values that rules read as "
                                          "$name; sliders, --set, sweep and optimize change them, never the text.")
    rules: list[Rule] = Field(default_factory=list, description="The rules, in order (at least one); the final "
                              "decision is allow > block > review > allow.")
    guardrails: list[str] = Field(
        default_factory=list,
        description="Deploy-gate conditions checked by `riskconsole gate`, e.g. 'recall>=+0.00' (signed: change vs "
                    "the baseline) or 'review_overflow_days<=0'.")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        """The name becomes a folder under reports/: no '/', '..', spaces or control characters."""
        if len(value) > limits.MAX_NAME_LENGTH:
            raise ValueError(f"a strategy name is at most {limits.MAX_NAME_LENGTH} characters (got {len(value):,})")
        if not _STRATEGY_NAME.match(value):
            raise ValueError(f"'{value}' is not a valid strategy name (letters, digits, _ and -, not starting "
                             "with -; it names report folders)")
        return value

    @field_validator("params")
    @classmethod
    def _param_names(cls, params: dict[str, ParamValue]) -> dict[str, ParamValue]:
        """Params are referenced as `$name` and may name report folders (sweep): plain names only."""
        for name, value in params.items():
            _check_name(name)
            if isinstance(value, list) and len(value) > limits.MAX_LIST_PARAM:
                raise ValueError(f"param '{name}' holds {len(value):,} values (at most {limits.MAX_LIST_PARAM:,}; "
                                 "put long lists in lists/NAME.csv)")
        return {name: [_utc(v) for v in value] if isinstance(value, list) else _utc(value)
                for name, value in params.items()}

    @field_validator("rules")
    @classmethod
    def _rule_count(cls, rules: list[Rule]) -> list[Rule]:
        if len(rules) > limits.MAX_RULES:
            raise ValueError(f"{len(rules):,} rules is too many (at most {limits.MAX_RULES:,}; split the strategy)")
        return rules

    @model_validator(mode="after")
    def _unique_rules(self) -> Strategy:
        counts = Counter(r.name for r in self.rules)
        dupes = sorted(n for n, c in counts.items() if c > 1)
        if dupes:
            raise ValueError(f"rule names must be unique: {', '.join(dupes)} appears more than once")
        if not self.rules:
            raise ValueError("a strategy needs at least one rule")
        return self

    @model_validator(mode="after")
    def _bounded_expansion(self) -> Strategy:
        """Refuse before any expression is built a strategy whose params would multiply it past a bound."""
        texts = [r.when for r in self.rules] + [self.population or ""]
        size = sum(limits.expanded_size(t, self.params) for t in texts)
        if size > limits.MAX_STRATEGY_EXPANDED:
            raise ValueError(f"its expressions would be {size:,} characters once params are substituted (at most "
                             f"{limits.MAX_STRATEGY_EXPANDED:,}): refer to long params fewer times, or use lists/")
        return self


# ---------------------------------------------------------------- detector


class Window(_Strict):
    """A closed date/timestamp range; a date means its whole day."""

    from_: str = Field(alias="from", description="First day (or timestamp) of the window, included.")
    to: str = Field(description="Last day of the window, its whole day included; or a timestamp: the window's end, events before it.")

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> str:
        return str(value)


class Detector(_Strict):
    """`detectors/NAME.yaml`: which model scores events."""

    name: str = Field(description="Detector name; its score is a column of this name that rules can read.")
    kind: str = Field(description="Which model: lightgbm, pyod.iforest, pyod.ecod, ... (see the kinds table).")
    features: list[str] = Field(description="Columns and features of the frame the model reads (never the label or "
                                            "a label-derived column). Numbers and booleans are read as numbers; text "
                                            "as categories fixed on the training rows (lightgbm: native categoricals, "
                                            "at most 255, unseen -> missing; pyod: each value's share of the "
                                            "training rows, unseen -> 0), saved in categories.json and named on the "
                                            "card. Lists, structs and times are refused: add a feature that derives "
                                            "one value.")
    train: Window = Field(description="Events the model is fitted on (by event time).")
    valid: Window | None = Field(None, description="Held-out window: early stopping for lightgbm, and the card's "
                                 "out-of-sample metrics.")
    params: dict[str, Any] = Field(default_factory=dict, description="Passed to the model (LightGBM or PyOD "
                                   "parameters); an unknown one is an error.")
    seed: int = Field(7, description="Random seed, so training twice gives the same model.")

    _name = field_validator("name")(_check_name)


# ---------------------------------------------------------------- loading

M = TypeVar("M", bound=BaseModel)


def _location(loc: tuple[Any, ...], data: Any) -> str:
    """Render a pydantic error location, naming list items by their `name` when they have one."""
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int) and isinstance(node, list) and key < len(node):
            item = node[key]
            named = isinstance(item, dict) and item.get("name")
            parts.append(f"[{key}]" + (f" '{item['name']}'" if named else ""))
            node = item
        else:
            parts.append(("." if parts else "") + str(key))
            node = node.get(key) if isinstance(node, dict) else None
    return "".join(parts)


def _model_at(model: Any, loc: tuple[Any, ...]) -> Any:
    """The pydantic model expected at `loc` under `model` (through dict keys, list items and optional values)."""
    def bare(node: Any) -> Any:  # X | None -> X
        args = [a for a in typing.get_args(node) if a is not type(None)]
        return args[0] if typing.get_origin(node) in (typing.Union, types.UnionType) and len(args) == 1 else node

    node = model
    for key in loc:
        node = bare(node)
        if typing.get_origin(node) in (dict, list):
            node = typing.get_args(node)[-1]
            continue
        fields = {f.alias or name: f for name, f in getattr(node, "model_fields", {}).items()}  # keys as written
        if key not in fields:
            return None
        node = fields[key].annotation
    node = bare(node)
    return node if isinstance(node, type) and issubclass(node, BaseModel) else None


def _misplaced(errors: list[Any], data: Any, model: Any) -> str | None:
    """A required key missing where an unknown key beside it belongs inside it: a stream's `time: at` for
    `columns: {time: at}`, or `id:` at the top level for `columns: {…, id: …}`: one message naming the fix."""
    first = errors[0]
    if first["type"] != "missing" or model is None:
        return None
    parent, wanted = tuple(first["loc"][:-1]), first["loc"][-1]
    strays = {tuple(e["loc"]) for e in errors if e["type"] == "extra_forbidden"}

    def value(loc: tuple[Any, ...]) -> str:  # as YAML writes it in a flow mapping
        node = data
        for key in loc:
            node = node.get(key) if isinstance(node, dict) else node[key] if isinstance(node, list) else None
        return _flow(node)

    def more(covered: int) -> str:
        rest = len(errors) - covered
        return f" (+{rest} more)" if rest > 0 else ""

    inner = _model_at(model, (*parent, wanted))
    keys = {f.alias or name for name, f in inner.model_fields.items()} if inner is not None else set()
    belong = [loc[-1] for loc in sorted(strays, key=str) if loc[:-1] == parent and loc[-1] in keys]
    if belong:  # the whole block is missing, its keys written beside it
        moved = ", ".join(f"{k}: {value((*parent, k))}" for k in belong)
        return (f"{_location(parent, data) or 'top level'}: {', '.join(repr(k) for k in belong)} "
                f"belong{'s' if len(belong) == 1 else ''} under '{wanted}:' (write {wanted}: {{{moved}}})"
                f"{more(1 + len(belong))}")
    if parent and (*parent[:-1], wanted) in strays:  # one key of the block written beside the block
        return (f"{_location(parent[:-1], data) or 'top level'}: '{wanted}' belongs under '{parent[-1]}:' (move "
                f"it there: {parent[-1]}: {{…, {wanted}: {value((*parent[:-1], wanted))}}}){more(2)}")
    return None


def _flow(node: Any) -> str:
    """A value as YAML writes it on one line (a map as {key: value, ...})."""
    return yaml.safe_dump(node, default_flow_style=True, width=math.inf).strip().removesuffix("\n...").strip()


def _not_a_map(error: Any) -> str | None:
    """The fix for a map written as something else: a list of one-entry maps (`- approve: allow`) as the one map
    they make; anything else named by its kind."""
    if error["type"] != "dict_type" or not error["loc"]:
        return None
    field, value = error["loc"][-1], error.get("input")
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        merged = {key: v for item in value for key, v in item.items()}
        if len(merged) == sum(len(item) for item in value):
            pairs = ", ".join(f"{_flow(key)}: {_flow(v)}" for key, v in merged.items())  # in the file's order
            return f"a list of maps where one map belongs: write {field}: {{{pairs}}}"
    kind = "a list" if isinstance(value, list) else "nothing" if value is None else _quoted(value)
    return f"a map of keys to values belongs here, not {kind} (write {field}: {{key: value, ...}})"


def _key_hint(loc: tuple[Any, ...], data: Any, model: Any) -> str:
    """`did you mean 'every'?` for an unknown key close to one the model takes there and not written beside it."""
    inner = _model_at(model, loc[:-1]) if model is not None else None
    node = data
    for key in loc[:-1]:
        node = node.get(key) if isinstance(node, dict) else node[key] if isinstance(node, list) else None
    written = set(node) if isinstance(node, dict) else set()
    keys = {f.alias or name for name, f in getattr(inner, "model_fields", {}).items()} - written
    near = closest(str(loc[-1]), keys) if keys else None
    return f"did you mean '{near}'?" if near else "typo? see `riskconsole schema`"


def describe_validation_error(err: ValidationError, data: Any, model: Any = None) -> str:
    """One line for the first problem of a pydantic error (and how many more there are)."""
    errors = err.errors()
    first = errors[0]
    where = _location(tuple(first["loc"]), data)
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = f"unknown key '{first['loc'][-1]}' ({_key_hint(tuple(first['loc']), data, model)})"
        where = _location(tuple(first["loc"][:-1]), data) or "top level"
    msg = _not_a_map(first) or msg
    misplaced = _misplaced(errors, data, model)
    if misplaced:
        return misplaced
    more = f" (+{err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{where}: {msg}{more}" if where else f"{msg}{more}"


def parse_model(data: Any, model: type[M], label: str) -> M:
    """Validate already-parsed YAML data into `model`, raising a one-line ConfigError naming `label`."""
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: expected a mapping of keys at the top level, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_message(f"{label}: {describe_validation_error(err, data, model)}")) from None
    except (ValueError, TypeError, RecursionError, OverflowError) as err:  # untrusted data: never a traceback
        raise ConfigError(_message(f"{label}: cannot be read as a {model.__name__.lower()}: {err}")) from None


def _message(text: str, limit: int = 400) -> str:
    """An error message on one printable line, cut to `limit` characters (user text may be huge)."""
    text = printable(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Refused(yaml.YAMLError):
    """YAML that parses but that riskconsole refuses (duplicate keys, deep nesting, huge numbers)."""

    def __init__(self, problem: str, mark: yaml.Mark | None) -> None:
        super().__init__(problem)
        self.problem, self.problem_mark = problem, mark


class StrictLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses duplicate keys, deep or alias-amplified nesting, huge and non-finite numbers.

    Sizes are measured with aliases expanded (`*x` counts as a copy of what `&x` names), because every
    consumer downstream (pydantic, JSON, the report) walks the expanded data.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._shape: dict[int, tuple[int, int]] = {}  # id(node) -> (nodes, height), aliases expanded

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        """Compose one node, refusing depth past the bound (before recursing) and self-containing aliases."""
        self._depth += 1
        try:
            event = self.peek_event()
            if self._depth > limits.MAX_YAML_DEPTH:
                raise _Refused(f"nested more than {limits.MAX_YAML_DEPTH} levels deep (flatten the data)",
                               event.start_mark)
            target = self.anchors.get(event.anchor) if isinstance(event, yaml.AliasEvent) else None
            if target is not None and id(target) not in self._shape:
                raise _Refused("an alias refers to the collection that contains it (write the value out)",
                               event.start_mark)
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._measure(node)
        return node

    def _measure(self, node: yaml.Node) -> None:
        """Record a composed node's size and height with aliases expanded; refuse past the bounds."""
        if id(node) in self._shape:  # an alias: already measured
            return
        children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) \
            else node.value if isinstance(node, yaml.SequenceNode) else []
        shapes = [self._shape[id(c)] for c in children]
        nodes = 1 + sum(n for n, _ in shapes)
        height = 1 + max((h for _, h in shapes), default=0)
        if nodes > limits.MAX_YAML_NODES or height > limits.MAX_YAML_DEPTH:
            raise _Refused(f"aliases expand to more than {limits.MAX_YAML_NODES:,} values or "
                           f"{limits.MAX_YAML_DEPTH} levels (write the values out)", node.start_mark)
        self._shape[id(node)] = (nodes, height)

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict:
        """A mapping, refusing a key written twice (PyYAML silently keeps the last).

        A key is the text written: YAML 1.1 reads a plain `yes`, `no`, `on`, `off`, `y` or `n` as a boolean, `0`,
        `010` or `1.0` as a number (010 as 8) and `null` or `~` as null, so `label_values: {yes: 1, no: 0}` would map
        True and False and `prod_action_values: {0: allow, 2: block}` (decisions exported as codes) be refused, and no
        key of ours is a boolean, a number or null."""
        if isinstance(node, yaml.MappingNode):
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag in _TEXT_KEYS:
                    key_node.tag = "tag:yaml.org,2002:str"
            self._refuse_duplicates(node)
        return super().construct_mapping(node, deep=deep)

    def _refuse_duplicates(self, node: yaml.MappingNode) -> None:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults` may be overridden, by design
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # unhashable: SafeConstructor reports it
                continue
            if first is not None:
                raise _Refused(f"duplicate key {_quoted(key)} (first at line {first + 1}; keep one)",
                               key_node.start_mark)
            seen[key] = key_node.start_mark.line


_TEXT_KEYS = {f"tag:yaml.org,2002:{kind}" for kind in ("bool", "int", "float", "null")}  # read as written


def _quoted(key: Any, limit: int = 60) -> str:
    text = printable(str(key))
    return "'" + (text if len(text) <= limit else text[: limit - 3] + "...") + "'"


def _construct_int(loader: StrictLoader, node: yaml.ScalarNode) -> int:
    if len(node.value) > limits.MAX_NUMBER_CHARS:
        raise _Refused(f"a number of {len(node.value):,} characters (at most {limits.MAX_NUMBER_CHARS})",
                       node.start_mark)
    return yaml.SafeLoader.construct_yaml_int(loader, node)


def _construct_float(loader: StrictLoader, node: yaml.ScalarNode) -> float:
    if len(node.value) > limits.MAX_NUMBER_CHARS:
        raise _Refused(f"a number of {len(node.value):,} characters (at most {limits.MAX_NUMBER_CHARS})",
                       node.start_mark)
    value = yaml.SafeLoader.construct_yaml_float(loader, node)
    if not math.isfinite(value):
        raise _Refused(f"'{printable(node.value)}' is not a finite number (write a number)", node.start_mark)
    return value


StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
StrictLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def read_yaml(text: str, label: str) -> Any:
    """Parse untrusted YAML text; every problem is a one-line ConfigError with the line number.

    Refused besides syntax errors: duplicate keys at any depth, nesting deeper than
    `limits.MAX_YAML_DEPTH` (aliases expanded), numbers longer than `limits.MAX_NUMBER_CHARS`,
    inf/nan, and text longer than `limits.MAX_CONFIG_BYTES`.
    """
    if len(text) > limits.MAX_CONFIG_BYTES:
        raise ConfigError(f"{label}: {len(text):,} characters is too large for a config file "
                          f"(at most {limits.MAX_CONFIG_BYTES:,})")
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - StrictLoader is a SafeLoader
    except _Refused as err:
        raise ConfigError(_message(f"{label}:{_line(err)} {err.problem}")) from None
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        if "'\\t'" in problem:  # PyYAML's "found character '\t' that cannot start any token"
            problem += " (YAML indents with spaces, never tabs: replace the tab with spaces)"
        raise ConfigError(_message(f"{label}:{_line(err)} YAML syntax error: {problem}")) from None
    except (RecursionError, ValueError, TypeError, OverflowError) as err:  # untrusted text: never a traceback
        raise ConfigError(_message(f"{label}: cannot be read as YAML: {err}")) from None


def _line(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    return f" line {mark.line + 1}:" if mark else ""


def load_model(path: Path, model: type[M], label: str | None = None) -> M:
    """Read a YAML file into `model`; every problem is a one-line ConfigError naming the file."""
    label = label or str(path)
    return parse_model(read_yaml(read_config(path, label), label), model, label)


def parse_overrides(items: list[str] | None) -> dict:
    """`--set P=V` pairs as {P: V}; V is read as one YAML scalar (number, text, true/false, date, or empty = null).

    Raises:
        ConfigError: one line naming the `--set` item: no `=`, bad YAML, a list or mapping, a repeated P.
    """
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key, shown = key.strip(), _message(f"--set {item}", 120)
        if not sep or not key:
            raise ConfigError(f"{shown}: write PARAM=VALUE, e.g. --set burst=4")
        if not _NAME.match(key):
            raise ConfigError(f"{shown}: '{printable(key)}' is not a param name (letters, digits and _)")
        if key in out:
            raise ConfigError(f"{shown}: '{printable(key)}' is set twice (give each param once)")
        if len(value) > limits.MAX_OVERRIDE_CHARS:
            raise ConfigError(f"--set {printable(key)}: the value has {len(value):,} characters "
                              f"(at most {limits.MAX_OVERRIDE_CHARS:,})")
        out[key] = parse_scalar(value, shown) if value.strip() else None
    return out


def parse_scalar(text: str, label: str) -> Any:
    """One YAML scalar (number, text, true/false, date, null); a list, mapping or bad YAML is a one-line ConfigError."""
    value = read_yaml(text, label)
    if isinstance(value, (dict, list, set, bytes)):
        raise ConfigError(f"{label}: give one value (a number, text, true/false or a date), "
                          f"not a {type(value).__name__}; quote it to pass text")
    if isinstance(value, str) and not value.isprintable():  # "\e[2J" in quotes: it is printed back later
        raise ConfigError(f"{label}: the text holds control characters ({printable(value)[:60]}); remove them")
    return value

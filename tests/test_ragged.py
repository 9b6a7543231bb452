"""A CSV line with more or fewer fields than its header is refused in one line naming the file, the line, the field
counts and the fix, wherever in the file it is; nothing changes. DuckDB meets such a line three ways (its sniffer
picks another dialect, its sniffer gives up, or the read fails past the sniffed rows): each is checked to happen
here, so every one is covered."""

from __future__ import annotations

import hashlib

import duckdb
import pytest
import yaml

from riskconsole.cli import main
from riskconsole.errors import RiskConsoleError
from riskconsole.ingest import load
from riskconsole.workspace import Workspace

HEADER = ("Order ID;Created At;CustomerId;Device;Merchant;Amount (EUR);Sales Channel;Ship Country;Fraud Flag;"
          "Chargeback Date")
DATASET = {
    "source": "data/Orders Export.csv", "decimal_separator": ",", "time_format": {"Chargeback Date": "%d.%m.%Y"},
    "label_values": {"yes": 1, "no": 0},
    "columns": {"id": "Order ID", "time": "Created At", "label": "Fraud Flag", "label_time": "Chargeback Date",
                "amount": "Amount (EUR)", "entities": ["CustomerId", "Device"]},
    "features": [{"name": "user_orders_1h", "count": "*", "by": "CustomerId", "window": "1h"}],
    "business": {"review_cost": 2.0, "review_capacity": 3},
}
ROWS = 40_000
EXTRA = "quote the field that holds ';' or remove the extra field"
MISSING = "add the missing field (an empty one is fine) or remove the line"


def _line(i: int) -> str:
    """A shop export's row: a decimal comma in the amount (the one ',' of most lines), times with an offset."""
    day, second = divmod(i * 190, 86_400)
    created = f"2026-{1 + day // 28:02d}-{1 + day % 28:02d}T{second // 3600:02d}:{second // 60 % 60:02d}:00+01:00"
    label, when = ("yes", "15.02.2026") if i % 50 == 0 else ("no", "16.02.2026")
    return (f"SO-{100000 + i};{created};C{i % 800:05d};dev-{i % 900:05x};M{i % 60:03d};{10 + i % 90},{i % 100:02d};"
            f"App;DE;{label};{when}")


def _export(path, ragged: dict[int, str] | None = None) -> None:
    """The export, with the rows at the given line numbers (the header is line 1) written as given."""
    lines = [HEADER] + [_line(i) for i in range(ROWS)]
    for number, text in (ragged or {}).items():
        lines[number - 1] = text
    path.write_text("\n".join(lines) + "\n")


def _workspace(root) -> Workspace:
    (root / "data").mkdir(parents=True)
    (root / "data" / "dataset.yaml").write_text(yaml.safe_dump(DATASET))
    _export(root / "data" / "Orders Export.csv")
    return Workspace(root)


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sniffed(path) -> tuple | None:
    """DuckDB's own sniff of the file (delimiter, columns), None when its sniffer gives up."""
    try:
        row = duckdb.sql(f"SELECT Delimiter, len(Columns) FROM sniff_csv('{path}')").fetchall()[0]
    except duckdb.Error:
        return None
    return row


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> Workspace:
    ws = _workspace(tmp_path_factory.mktemp("ragged") / "ws")
    assert load(ws).loaded == ROWS
    return ws


@pytest.mark.parametrize("number, how, sniffed", [
    (101, "extra", (",", 2)),  # the sniffer reads the ';' file as ','-separated, its header skipped
    (201, "missing", (",", 2)),
    (5_000, "extra", None),  # the sniffer finds no dialect
    (5_000, "missing", None),
    (30_001, "extra", (";", 10)),  # past the sniffed rows: the read fails on it
    (30_001, "missing", (";", 10)),
])
def test_a_ragged_line_is_named_by_file_line_and_fix_and_changes_nothing(loaded, capsys, number, how, sniffed):
    path = loaded.root / "data" / "Orders Export.csv"
    before = (_digest(loaded.db_path), _digest(loaded.root / "data" / "quarantine.csv"))
    good = path.read_text()
    row = _line(number - 2)
    _export(path, {number: row + ";surprise" if how == "extra" else row.rsplit(";", 1)[0]})
    try:
        assert _sniffed(path) == sniffed  # the way DuckDB meets it, so each is covered
        with pytest.raises(RiskConsoleError) as info:
            load(loaded)
        counts = "11 fields where the header has 10" if how == "extra" else "9 fields where the header has 10"
        assert str(info.value) == (f"data/dataset.yaml: data/Orders Export.csv: line {number} has {counts} (fields "
                                   f"separated by ';'): {EXTRA if how == 'extra' else MISSING}")
        assert (_digest(loaded.db_path), _digest(loaded.root / "data" / "quarantine.csv")) == before
        code = main(["validate", str(loaded.dataset_path), "--workspace", str(loaded.root)])
        said = capsys.readouterr()
        if number < 20_000:  # in the rows validate reads: the same line
            assert (code, said.err) == (1, f"error: {info.value}\n")
        else:  # validate reads the sniffed rows only (docs/dataset.md): load finds it
            assert code == 0
    finally:
        path.write_text(good)


@pytest.mark.parametrize("extra, lines, fields", [
    (";x", (30_001, 30_500, 39_000), 11),
    # DuckDB rejects a line once per extra field ('Found: 11', then 'Found: 12'): the message said 11 fields and
    # counted the line twice
    (";x;y", (30_001, 30_500), 12),
])
def test_several_ragged_lines_name_the_first_and_count_the_others(loaded, extra, lines, fields):
    path = loaded.root / "data" / "Orders Export.csv"
    good = path.read_text()
    _export(path, {n: _line(n - 2) + extra for n in lines})
    try:
        said = (rf": line 30001 has {fields} fields where the header has 10 \(fields separated by ';'\) "
                rf"\(and {len(lines) - 1} more line\(s\) like it\): quote")
        with pytest.raises(RiskConsoleError, match=said):
            load(loaded)
    finally:
        path.write_text(good)


def test_a_mapping_typo_is_still_named_as_one_in_a_file_with_a_ragged_line(loaded):
    """The ragged line is named only when the tolerant sniff finds every missing mapped column in the header: a
    column the header lacks is the mapping's error, as before."""
    path = loaded.root / "data" / "Orders Export.csv"
    good = path.read_text()
    _export(path, {101: _line(99) + ";surprise"})
    spec = loaded.dataset_path.read_text()
    loaded.dataset_path.write_text(spec.replace("id: Order ID", "id: Order Id"))
    try:
        with pytest.raises(RiskConsoleError, match=r"^data/dataset.yaml: columns.id: column 'Order Id' is not in "):
            load(loaded)
    finally:
        path.write_text(good)
        loaded.dataset_path.write_text(spec)


def test_a_file_of_another_delimiter_and_header_loads_as_before(tmp_path):
    """A ','-separated file with a ';' in a field: nothing ragged, loaded as DuckDB sniffs it."""
    ws = _workspace(tmp_path / "ws")
    path = ws.root / "data" / "Orders Export.csv"
    lines = [line.replace(";", "|").replace(",", ".").replace("|", ",") for line in path.read_text().splitlines()]
    lines[5] = lines[5].replace(",App,", ",App;Web,")
    path.write_text("\n".join(lines) + "\n")
    spec = yaml.safe_load(ws.dataset_path.read_text())
    ws.dataset_path.write_text(yaml.safe_dump({**spec, "decimal_separator": "."}))
    assert load(ws).loaded == ROWS


@pytest.mark.parametrize("bad", ["a", "b"])
def test_a_ragged_line_in_one_file_of_several_is_named_not_quarantined_as_missing_ids(tmp_path, bad):
    """Two files of one export, one with a ragged line early: DuckDB's sniffer read that file with ',' (its header
    taken for data), the other file held the mapped columns, so the load quarantined that file's rows as `missing
    id` and lost one row as a header, without a word. Now refused naming the line, whichever file it is; and a
    source whose files differ only by an added column loads as before."""
    root = tmp_path / "ws"
    (root / "data" / "in").mkdir(parents=True)
    spec = {**DATASET, "source": "data/in/*.csv"}
    (root / "data" / "dataset.yaml").write_text(yaml.safe_dump(spec))
    rows = [_line(i) for i in range(600)]
    for name, part in (("a", rows[:300]), ("b", rows[300:])):
        lines = [HEADER, *part]
        if name == bad:
            lines[6] += ";surprise"
        (root / "data" / "in" / f"{name}.csv").write_text("\n".join(lines) + "\n")
    ws = Workspace(root)
    assert _sniffed(root / "data" / "in" / f"{bad}.csv") == (",", 2)  # the file DuckDB misreads
    with pytest.raises(RiskConsoleError, match=rf"^data/dataset.yaml: data/in/{bad}.csv: line 7 has 11 fields where "
                                               rf"the header has 10 \(fields separated by ';'\): quote"):
        load(ws)
    assert not ws.db_path.exists()
    own = rows[:5] if bad == "a" else rows[300:305]
    (root / "data" / "in" / f"{bad}.csv").write_text("\n".join([HEADER + ";Coupon", *[r + ";X" for r in own]]) + "\n")
    assert load(ws).loaded == 305  # a file with one more column: union_by_name, nothing ragged


def test_a_ragged_line_in_a_file_past_the_hundredth_is_named_too(tmp_path):
    """150 files, the ragged line in the 130th: every file is sniffed once the files' columns differ (a cap of 100
    files let this one through, its rows quarantined as missing ids and a row lost)."""
    root = tmp_path / "ws"
    (root / "data" / "in").mkdir(parents=True)
    (root / "data" / "dataset.yaml").write_text(yaml.safe_dump({**DATASET, "source": "data/in/*.csv"}))
    for f in range(150):
        lines = [HEADER, *[_line(300 * f + i) for i in range(300)]]
        if f == 129:
            lines[6] += ";surprise"
        (root / "data" / "in" / f"{f:03d}.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(RiskConsoleError, match=r"data/in/129.csv: line 7 has 11 fields where the header has 10"):
        load(Workspace(root))


@pytest.mark.parametrize("number", [101, 5_000, 30_001])
def test_a_line_one_field_over_with_its_last_empty_is_refused_not_read_one_column_off(loaded, number):
    """A field slipped into a line whose last field is empty (`…;App;DE;no;` under the 10-field header, one field
    more): DuckDB reads the final ';' as the line's end, so the line loaded with its values one column off (here
    'Sales Channel' read the country, the label read the channel) and no reject table held it. Refused, named."""
    path = loaded.root / "data" / "Orders Export.csv"
    before = _digest(loaded.db_path)
    good = path.read_text()
    row = _line(number - 2).split(";")
    _export(path, {number: ";".join(row[:6] + ["Web"] + row[6:-1]) + ";"})  # a field in, the last one empty
    try:
        with pytest.raises(RiskConsoleError) as info:
            load(loaded)
        assert str(info.value) == (f"data/dataset.yaml: data/Orders Export.csv: line {number} has 11 fields where "
                                   f"the header has 10 (fields separated by ';'): {EXTRA}")
        assert _digest(loaded.db_path) == before
    finally:
        path.write_text(good)


def test_lines_ending_with_the_delimiter_load_when_their_last_field_is_only_empty(tmp_path):
    """A last column often empty (every such line ends with ';') is no extra field: the file loads whole."""
    root = tmp_path / "ws"
    ws = _workspace(root)
    path = root / "data" / "Orders Export.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:1] + [line.rsplit(";", 1)[0] + ";" if i % 3 == 0 else line
                                           for i, line in enumerate(lines[1:])]) + "\n")
    assert load(ws).loaded == ROWS

"""House rules that keep the core honest: no Streamlit in the core; user SQL runs where files are out of reach."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import duckdb
import pytest

import riskconsole


def test_core_never_imports_streamlit():
    modules = [m.name for m in pkgutil.iter_modules(riskconsole.__path__, "riskconsole.") if m.name != "riskconsole.ui"]
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", modules


def test_safe_connection_cannot_touch_files_or_unlock(tiny_ws, tmp_path):
    con = tiny_ws.connect_safe()
    target = tmp_path / "leak.csv"
    for sql in [f"COPY (SELECT 1) TO '{target}'", "SELECT * FROM read_csv('/etc/passwd')",
                "SET enable_external_access = true", "INSTALL httpfs", "CREATE TABLE x AS SELECT 1",
                f"ATTACH '{tmp_path / 'other.db'}' AS other"]:
        with pytest.raises(duckdb.Error):
            con.execute(sql)
    assert not target.exists() and not (tmp_path / "other.db").exists()
    assert con.execute("SELECT count(*) FROM frame").fetchall() == [(400,)]
    con.close()


def test_no_undefined_names_or_unused_imports():
    """pyflakes-level checks (ruff F): a name used but never defined is a crash waiting for a user."""
    import shutil
    from pathlib import Path

    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([ruff, "check", "--select", "F,E9", "--output-format", "concise", "riskconsole", "tests",
                          "app.py", "bench"], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]


class _Terminal:
    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def test_duckdb_progress_bar_only_on_a_terminal(tiny_ws, monkeypatch):
    """DuckDB prints its progress bar to stdout: piped into a log it is carriage-return noise, so it is on only
    where stdout is a terminal (every connection of the load, the backtests and the checks opens the same way)."""
    from riskconsole.workspace import connect_duckdb

    def bar(con) -> bool:
        try:
            return con.execute("SELECT current_setting('enable_progress_bar')").fetchall()[0][0]
        finally:
            con.close()

    assert not bar(tiny_ws.connect_safe()) and not bar(tiny_ws.connect(read_only=True)) and not bar(connect_duckdb())
    monkeypatch.setattr(sys, "stdout", _Terminal())
    assert bar(connect_duckdb()) and bar(tiny_ws.connect_safe())


def test_duckdb_progress_bar_stays_out_of_a_piped_interactive_run(tiny_ws):
    """DuckDB turns its bar on by itself where `__main__` has no file (`python -c`, a notebook, a bench harness) and
    then prints ~11 KB of it into a 15 s query's piped output; riskconsole's connections turn it off there."""
    code = ("import duckdb\nfrom riskconsole.workspace import Workspace\n"
            f"ws = Workspace.resolve({str(tiny_ws.root)!r})\n"
            "q = \"SELECT current_setting('enable_progress_bar')\"\n"
            "print(duckdb.connect().execute(q).fetchall()[0][0], ws.connect_safe().execute(q).fetchall()[0][0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]  # DuckDB's own default here, and ours

# `make run` starts the console on the demo; `make test` runs every test in two pytest-xdist workers, one test file
# per worker at a time, the files using Spark together on one worker (tests/conftest.py; CI runs it on a fresh clone).
PY        ?= python3
VENV      := .venv
BIN       := $(VENV)/bin
STAMP     := $(VENV)/.installed
DEMO_EVENTS ?= 1000000
PORT      ?= 8501

.PHONY: install run demo test chromium java bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv
	$(BIN)/uv pip install -q --compile-bytecode --python $(BIN)/python -e '.[dev]'
	touch $(STAMP)

data/console.duckdb: | $(STAMP)
	$(BIN)/riskconsole demo --events $(DEMO_EVENTS)

demo: install
	$(BIN)/riskconsole demo --events $(DEMO_EVENTS)

run: install data/console.duckdb
	$(BIN)/python -m riskconsole.ui.serve --port $(PORT)

chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# PySpark (dev extra) needs a Java runtime for the DuckDB-vs-Spark function tests.
java:
	@command -v java >/dev/null || (apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null)

test: install chromium java
	$(BIN)/python -m pytest -n 2 --dist loadfile

# Long: builds a 10M-event workspace in /tmp (minutes) and a 1M demo; results go in bench/RESULTS.md by hand.
bench: install
	$(BIN)/python bench/bench_backtest.py --events 10000000 --workspace /tmp/rc-bench-10m
	$(BIN)/python bench/bench_scoring.py 10000000
	test -f /tmp/demo1m/data/console.duckdb || $(BIN)/riskconsole demo --workspace /tmp/demo1m
	$(BIN)/python bench/bench_console.py --workspace /tmp/demo1m

clean:
	rm -rf $(VENV) data/console.duckdb data/demo data/models reports

# One command each on a fresh machine: `make demo` runs the main job, `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format bench clean browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m toolkit.demo

test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

# Chromium for tests/browser, from the system's packages (never `playwright install`): installed
# here when missing and we are root with apt-get; otherwise the browser tests skip with one line
# saying how to enable them (under CI=true they fail instead). LTT_CHROMIUM=/path overrides.
browser:
	@if [ -n "$$LTT_CHROMIUM" ] || command -v chromium >/dev/null 2>&1 \
	   || command -v chromium-browser >/dev/null 2>&1; then :; \
	 elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	   echo "make: installing Chromium and CJK fonts from the system's packages for tests/browser"; \
	   { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	     chromium fonts-noto-cjk >/dev/null; } || [ "$$CI" != true ]; \
	 fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_sandbox_concurrency.py
	$(BIN)/python benchmarks/bench_fetch.py --opportunities 50000 --latency-ms 300
	$(BIN)/python benchmarks/bench_audit.py
	$(BIN)/python benchmarks/bench_writes.py
	$(BIN)/python benchmarks/bench_explorer.py

clean:
	rm -rf $(VENV) build *.egg-info

# One command each on a fresh machine: `make demo` runs the main job, `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint format bench clean fonts browser

# The set-up is quiet: pip's and the build's output go to $(VENV)/install.log (shown on failure),
# so the first lines a newcomer reads are the demo's own.
$(STAMP): pyproject.toml
	@echo "set-up: installing the toolkit into $(VENV) (log: $(VENV)/install.log)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip >$(VENV)/install.log 2>&1 \
		|| { tail -40 $(VENV)/install.log; exit 1; }
	@$(BIN)/python -m pip install --quiet -e '.[dev]' >>$(VENV)/install.log 2>&1 \
		|| { tail -40 $(VENV)/install.log; exit 1; }
	@$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null 2>&1
	@$(MAKE) --no-print-directory fonts
	@touch $(STAMP)

# Chinese, Japanese and Korean tags in the charts need a CJK font (docs/usage.md, "Fonts"):
# installed with the system's package manager when run as root, else one line says how.
fonts:
	@if fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "set-up: installing fonts-noto-cjk (CJK tags in charts)"; \
		{ apt-get install -y -q fonts-noto-cjk || { apt-get update -q && \
			apt-get install -y -q fonts-noto-cjk; }; } >>$(VENV)/install.log 2>&1 \
		|| echo "set-up: fonts-noto-cjk not installed; charts report CJK tags as missing glyphs"; \
	else \
		echo "set-up: no CJK font; charts report CJK tags as missing glyphs (to draw them: sudo apt-get install fonts-noto-cjk, then make fonts)"; \
	fi
	@$(BIN)/python -c "import matplotlib.font_manager as fm; fm._load_fontmanager(try_read_cache=False)" 2>/dev/null || true

demo: $(STAMP)
	@$(BIN)/python -m toolkit.demo $(DEMO_ARGS)

test: $(STAMP) browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n 4 --dist loadgroup

# Chromium for tests/browser, from the system's packages (never Playwright's own browser download): installed
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
	$(BIN)/lint-imports
	$(BIN)/mypy

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

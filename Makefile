# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo_out
PYTEST_ARGS ?=

.PHONY: venv demo test lint leaderboard chromium clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=23"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(VENV)/bin/rb-crossclass demo --out $(DEMO_OUT)

test: venv chromium
	$(PY) -m pytest $(PYTEST_ARGS)

# Headless Chromium for the leaderboard page tests (skipped with a reason when it cannot be had).
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	    && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "chromium not installed: the browser tests will be skipped"; }

# The published extended leaderboard: official CIFAR-10 Linf cards + our zoo.
OFFICIAL_CARDS ?= ../shared/robustbench/model_info
leaderboard: venv
	$(VENV)/bin/rb-crossclass leaderboard --cards $(OFFICIAL_CARDS) --cards model_zoo \
	    --dataset cifar10 --threat-model Linf --out leaderboards/cifar10_Linf

lint: venv
	$(VENV)/bin/ruff check rb_crossclass tests benchmarks

clean:
	rm -rf $(VENV) $(DEMO_OUT)

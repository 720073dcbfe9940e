# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo_out
PYTEST_ARGS ?=

.PHONY: venv demo test docs lint leaderboard mnist-sweep cifar10-2-255-sweep chromium clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=23"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev,docs]"
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(VENV)/bin/rb-crossclass demo --out $(DEMO_OUT)

# CI (.ci/run) runs exactly this: lint first, then the fast tests, then the slow ones (each test
# has a time limit, pyproject's [tool.pytest.ini_options] timeout), so a broken change fails in minutes.
test: venv chromium lint
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS) || [ $$? -eq 5 ]  # 5: PYTEST_ARGS selected none
	$(PY) -m pytest -m slow $(PYTEST_ARGS) || [ $$? -eq 5 ]

# Headless Chromium for the leaderboard page tests (skipped with a reason when it cannot be had).
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	    && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	    || echo "chromium not installed: the browser tests will be skipped"; }

# The published extended leaderboards: official CIFAR-10 Linf cards + our zoo; the MNIST Linf
# board and the CIFAR-10 Linf 2/255 board of published models from the committed cards of
# `make mnist-sweep` and `make cifar10-2-255-sweep`.
OFFICIAL_CARDS ?= ../shared/robustbench/model_info
leaderboard: venv
	$(VENV)/bin/rb-crossclass leaderboard --cards $(OFFICIAL_CARDS) --cards model_zoo \
	    --dataset cifar10 --threat-model Linf --out leaderboards/cifar10_Linf
	$(VENV)/bin/rb-crossclass leaderboard --cards leaderboards/cards \
	    --dataset mnist --threat-model Linf --out leaderboards/mnist_Linf
	$(VENV)/bin/rb-crossclass leaderboard --cards leaderboards/cards \
	    --dataset cifar10 --threat-model Linf --eps 2/255 --out leaderboards/cifar10_Linf_2-255

# Re-measure the MNIST board's cards (AutoAttack standard, eps 0.3, first 500 test points; about
# an hour on 2 CPU cores, resumable), copy them to leaderboards/cards and rebuild the boards.
SHARED_DATA ?= ../shared/data
MNIST_SWEEP ?= runs/mnist_sweep
mnist-sweep: venv
	$(VENV)/bin/rb-crossclass sweep --manifest leaderboards/manifests/mnist_Linf.yaml \
	    --data-dir $(SHARED_DATA) --autoattack --n-examples 500 --out $(MNIST_SWEEP)
	mkdir -p leaderboards/cards/mnist/Linf
	cp $(MNIST_SWEEP)/cards/mnist/Linf/*.json leaderboards/cards/mnist/Linf/
	$(MAKE) leaderboard

# Re-measure the CIFAR-10 Linf 2/255 board's cards: four published models (../shared/checkpoints,
# or downloaded from their original URLs), AutoAttack standard at 2/255 on all 1,017 real test
# points of ../shared/data, PGD-20 at 2/255 and 8/255; resumable. Copies the cards and the sweep
# record into leaderboards/ and rebuilds the boards.
CIFAR_SWEEP ?= runs/cifar10_2-255_sweep
cifar10-2-255-sweep: venv
	$(VENV)/bin/rb-crossclass sweep --manifest leaderboards/manifests/cifar10_Linf_2-255.yaml \
	    --data-dir npz:$(SHARED_DATA)/cifar10_partial/cifar10_test_first1017.npz --autoattack \
	    --out $(CIFAR_SWEEP)
	mkdir -p leaderboards/cards/cifar10/Linf leaderboards/sweeps/cifar10_Linf_2-255
	cp $(CIFAR_SWEEP)/cards/cifar10/Linf/*.json leaderboards/cards/cifar10/Linf/
	cp $(CIFAR_SWEEP)/sweep.json leaderboards/sweeps/cifar10_Linf_2-255/
	$(MAKE) leaderboard

# The docs site (MkDocs, strict: a broken link, a page outside the nav or an API reference that
# does not render fails the build) into build/site/.
docs: venv
	$(VENV)/bin/mkdocs build --strict

lint: venv
	$(VENV)/bin/ruff check rb_crossclass tests benchmarks

clean:
	rm -rf $(VENV) $(DEMO_OUT)

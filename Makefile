# Two commands set everything up on a fresh Debian machine with Python 3.11:
#   make demo   the embedded all-in-one Winslow runs the example pipeline end to end
#   make test   lint, architecture contract, and the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck install clean bench docker

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Winslow needs Python 3.11 or newer"'
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || (apt-get update && apt-get install -y python3-venv)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/traffic/demo.py

lint: $(STAMP)
	$(BIN)/ruff check winslow tests examples bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck docker
	$(BIN)/pytest -q

# The container tests need a docker daemon; this starts one where it can (root on Debian).
docker:
	@scripts/start-docker.sh

bench: $(STAMP)
	$(BIN)/python bench/stage_overhead.py

clean:
	rm -rf $(VENV) demo-data test-output .pytest_cache .ruff_cache .mypy_cache

# Two commands set everything up on a fresh Debian machine with Python 3.11:
#   make demo   the embedded all-in-one Winslow runs the example pipeline end to end
#   make test   lint, architecture contract, and the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck install clean bench docker nomad-dev test-nomad-live

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

# A Nomad dev agent on this machine, where the nomad binary exists (with the NVIDIA
# device plugin config when GPUs answer). Stop it with Ctrl-C.
nomad-dev:
	@command -v nomad >/dev/null 2>&1 || { echo "nomad is not installed; see https://developer.hashicorp.com/nomad/install" >&2; exit 1; }
	nomad agent -dev -bind 127.0.0.1 -config deploy/nomad/dev-agent.hcl \
	  $$(nvidia-smi -L >/dev/null 2>&1 && echo "-config deploy/nomad/nvidia.hcl")

# The backend contract tests against a real Nomad agent (default: the dev agent above).
test-nomad-live: $(STAMP)
	WINSLOW_TEST_NOMAD_ADDR=$${NOMAD_ADDR:-http://127.0.0.1:4646} \
	  $(BIN)/pytest -q tests/backends/test_contract.py -k nomad_cluster

bench: $(STAMP)
	$(BIN)/python bench/stage_overhead.py

clean:
	rm -rf $(VENV) demo-data test-output .pytest_cache .ruff_cache .mypy_cache

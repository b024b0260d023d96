# Two commands set everything up on a fresh Debian machine with Python 3.11:
#   make demo   the embedded all-in-one Winslow runs the example pipeline end to end
#   make test   lint, architecture contract, and the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck install clean bench bench-data docker browser prometheus nomad-dev test-nomad-live

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Winslow needs Python 3.11 or newer"'
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || (apt-get update && apt-get install -y python3-venv)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

# The console's one npm package (MD5 of upload parts in the browser), pinned in
# winslow/ui/package.json and winslow/ui/package-lock.json; Node.js and npm come from Debian where missing.
UI_DEPS := winslow/ui/node_modules/.installed
$(UI_DEPS): winslow/ui/package.json winslow/ui/package-lock.json
	@command -v npm >/dev/null 2>&1 || (apt-get update && apt-get install -y nodejs npm)
	cd winslow/ui && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(STAMP) $(UI_DEPS)

demo: $(STAMP) $(UI_DEPS)
	$(BIN)/python examples/traffic/demo.py

lint: $(STAMP)
	$(BIN)/ruff check winslow tests examples bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck docker browser prometheus $(UI_DEPS)
	$(BIN)/pytest -q

# The browser tests drive Debian's Chromium (installed here where missing).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update && apt-get install -y chromium) || \
	  echo "chromium could not be installed; the browser tests will skip" >&2

# tests/test_prometheus.py scrapes /metrics with Debian's Prometheus (installed here where missing).
prometheus:
	@test -x /usr/bin/prometheus || (apt-get update && apt-get install -y --no-install-recommends prometheus) || \
	  echo "prometheus could not be installed; the Prometheus test will skip" >&2

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
	$(BIN)/python bench/console.py

# The storage benchmarks at 4 GiB (about 5 minutes and 15 GB of free disk on 2 cores);
# SIZE=512M for a quick look.
SIZE ?= 4G
bench-data: $(STAMP)
	$(BIN)/python bench/upload.py --size $(SIZE)
	$(BIN)/python bench/workspace_redo.py --size $(SIZE)
	$(BIN)/python bench/stage_in_cache.py --size $(SIZE)

clean:
	rm -rf $(VENV) winslow/ui/node_modules demo-data test-output .pytest_cache .ruff_cache .mypy_cache .hypothesis

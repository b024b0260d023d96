# Two commands set everything up on a fresh Debian machine with Python 3.11:
#   make demo   the embedded all-in-one Winslow runs the example pipeline end to end
#   make test   lint, architecture contract, and the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo console bench-scale test lint typecheck install clean bench bench-data docker browser prometheus nomad-dev test-nomad-live slapd bench-detect

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Winslow needs Python 3.11 or newer"'
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || (apt-get update && apt-get install -y python3-venv)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

# The console's npm packages (MD5 of upload parts in the browser, the graph's layout, and
# axe-core for its tests), pinned in winslow/ui/package.json and winslow/ui/package-lock.json;
# Node.js and npm come from Debian where missing.
UI_DEPS := winslow/ui/node_modules/.installed
$(UI_DEPS): winslow/ui/package.json winslow/ui/package-lock.json
	@command -v npm >/dev/null 2>&1 || (apt-get update && apt-get install -y nodejs npm)
	cd winslow/ui && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(STAMP) $(UI_DEPS)

demo: $(STAMP) $(UI_DEPS)
	$(BIN)/python examples/traffic/demo.py

# The data of the last `make demo` served again, until Ctrl-C (WINSLOW_PORT, default 8080).
console: $(STAMP) $(UI_DEPS)
	$(BIN)/python examples/traffic/demo.py --console

lint: $(STAMP)
	$(BIN)/ruff check winslow tests examples bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# Four workers, each taking whole test files (module fixtures stay in one process): most
# tests wait on real processes and the browser, so on 2 cores four finish first.
test: lint typecheck docker registry-deps browser prometheus slapd $(UI_DEPS)
	$(BIN)/pytest -q -n 4 --dist loadfile --durations=15

# The browser tests drive Debian's Chromium (installed here where missing).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update && apt-get install -y chromium) || \
	  echo "chromium could not be installed; the browser tests will skip" >&2

# tests/test_prometheus.py scrapes /metrics with Debian's Prometheus (installed here where missing).
prometheus:
	@test -x /usr/bin/prometheus || (apt-get update && apt-get install -y --no-install-recommends prometheus) || \
	  echo "prometheus could not be installed; the Prometheus test will skip" >&2

# tests/identity/test_ldap*.py sign in against Debian's OpenLDAP: each run starts its own
# slapd on a free port with a configuration in a temporary folder (a system one is not used).
slapd:
	@test -x /usr/sbin/slapd || (apt-get update && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y --no-install-recommends slapd ldap-utils) || \
	  echo "slapd could not be installed; the LDAP tests will skip" >&2

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
	$(BIN)/python bench/console.py --size 1k
	$(BIN)/python bench/console.py --size 10k
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/sse.py
	$(BIN)/python bench/cli_start.py

# The engine at 100 and 1,000 projects x 10 stages, local and Nomad stand-in, then the
# requests Winslow sends Nomad as runs are added (hours on 2
# cores; `--projects 200 --baseline-projects 20 --stages 2` for a look).
bench-scale: $(STAMP)
	$(BIN)/python bench/engine_scale.py
	$(BIN)/python bench/nomad_lists.py
	$(BIN)/python bench/nomad_load.py

# The traffic example's detection kernel on every path present here (GPU paths where a GPU
# and their libraries are), 4K frames, against onnxruntime on the CPU.
bench-detect: $(STAMP)
	$(BIN)/python bench/detect.py

# The storage benchmarks at 4 GiB (about 5 minutes and 15 GB of free disk on 2 cores);
# SIZE=512M for a quick look.
SIZE ?= 4G
bench-data: $(STAMP)
	$(BIN)/python bench/upload.py --size $(SIZE)
	$(BIN)/python bench/workspace_redo.py --size $(SIZE)
	$(BIN)/python bench/stage_in_cache.py --size $(SIZE)

clean:
	rm -rf $(VENV) winslow/ui/node_modules demo-data test-output .pytest_cache .ruff_cache .mypy_cache .hypothesis

# --- Images and the registry (registry/README.md) ---
# `make images` builds the service, tools, traffic and GPU stage images with the classic
# builder, each tagged with Winslow's version and the commit; IMAGES= picks some
# (IMAGES=service,tools,traffic where no CUDA base can be pulled), BASE_IMAGE= and
# CUDA_BASE= replace the base images (pin them by digest). `make push REGISTRY=host:port`
# tags them under the registry and pushes them. `make constraints` re-pins
# registry/constraints.txt from this venv after a dependency changed.
IMAGES     ?= service,tools,traffic,gpu
BASE_IMAGE ?=
CUDA_BASE  ?=
REGISTRY   ?=
.PHONY: images push constraints base-image registry-deps

images: $(STAMP) $(UI_DEPS)
	DOCKER_BUILDKIT=0 $(BIN)/python scripts/images.py build --images $(IMAGES) \
	  $(if $(BASE_IMAGE),--base-image $(BASE_IMAGE)) $(if $(CUDA_BASE),--cuda-base $(CUDA_BASE))

push: $(STAMP)
	@test -n "$(REGISTRY)" || { echo "make push needs REGISTRY=host:port" >&2; exit 2; }
	$(BIN)/python scripts/images.py push --registry $(REGISTRY) --images $(IMAGES)

constraints: $(STAMP)
	$(BIN)/python scripts/lock_constraints.py registry/constraints.txt

# Debian bookworm with Python, made with debootstrap, for where no image can be pulled:
#   make images BASE_IMAGE=$$(scripts/build-base-image.sh) IMAGES=service,tools,traffic
base-image:
	@scripts/build-base-image.sh

# tests/test_images.py builds that base (debootstrap), runs Debian's Distribution registry
# (docker-registry) with htpasswd auth (apache2-utils); installed here where missing.
registry-deps:
	@{ command -v debootstrap && command -v docker-registry && command -v htpasswd; } >/dev/null 2>&1 || \
	  (apt-get update && apt-get install -y --no-install-recommends debootstrap docker-registry apache2-utils) || \
	  echo "debootstrap/docker-registry could not be installed; the image tests will skip" >&2

# --- The cluster: Winslow, PostgreSQL, storage and the registry as Nomad jobs (deploy/README.md) ---
# No nomad binary needed: `winslow deploy` talks to NOMAD_ADDR with NOMAD_TOKEN (and the
# NOMAD_CACERT/NOMAD_CLIENT_* TLS settings). `make deploy` registers the jobs of
# deploy/nomad/jobs/ in order (database and storage before the server) and waits until
# each is healthy; `make deploy-plan` shows what it would change; `make undeploy` stops
# and purges them (host volumes keep their data); `make cluster-status` says each job's
# health and where its services answer. STORAGE=minio|minio-distributed|seaweedfs,
# REGISTRY= and TAG= name Winslow's images, VAULT_ADDR= gives the server Vault,
# DEPLOY_ONLY=registry deploys one role (the registry first, before `make push`),
# DEPLOY_NAMESPACE= puts the jobs in another namespace than winslow-system (all four
# targets), and DEPLOY_ARGS= passes more to deploy and deploy-plan (--override FILE,
# --datacenter dc1, --timeout 900).
STORAGE     ?= minio
TAG         ?=
VAULT_ADDR  ?=
DEPLOY_ONLY ?=
DEPLOY_ARGS ?=
DEPLOY_NAMESPACE ?=
DEPLOY_OPTS  = --storage $(STORAGE) $(foreach o,$(subst $(comma), ,$(DEPLOY_ONLY)),--only $(o)) \
               $(if $(DEPLOY_NAMESPACE),--namespace $(DEPLOY_NAMESPACE))
DEPLOY_VARS  = $(if $(REGISTRY),--registry $(REGISTRY)) $(if $(TAG),--tag $(TAG)) \
               $(if $(VAULT_ADDR),--vault-addr $(VAULT_ADDR))
comma := ,
# Passed through when given on the command line or in the environment.
NOMAD_ENV    = $(if $(NOMAD_ADDR),NOMAD_ADDR=$(NOMAD_ADDR))
.PHONY: deploy deploy-plan undeploy cluster-status

deploy: $(STAMP)
	$(NOMAD_ENV) $(BIN)/winslow deploy up $(DEPLOY_OPTS) $(DEPLOY_VARS) $(DEPLOY_ARGS)

deploy-plan: $(STAMP)
	$(NOMAD_ENV) $(BIN)/winslow deploy plan $(DEPLOY_OPTS) $(DEPLOY_VARS) $(DEPLOY_ARGS)

undeploy: $(STAMP)
	$(NOMAD_ENV) $(BIN)/winslow deploy down $(DEPLOY_OPTS)

cluster-status: $(STAMP)
	$(NOMAD_ENV) $(BIN)/winslow deploy status $(DEPLOY_OPTS)

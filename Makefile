# One command per job. Each target installs what it needs into .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test check lint typecheck format verify helm-check controlplane flux dev-cluster dev-cluster-stop dev-cluster-env e2e e2e-kind bench clean venv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

## demo: sync the seed-sized simulated inventory into an embedded PostgreSQL and verify it
demo: $(STAMP)
	$(BIN)/inventory-sync demo

## test: the suite (unit, integration, control plane); builds the control plane first (cached)
test: $(STAMP) controlplane
	$(BIN)/python -m pytest -m "not node"

## e2e: the image and the Helm chart on a real single-node Kubernetes (root; see docs/e2e-node.md)
e2e: $(STAMP) flux
	$(BIN)/python -m pytest -m node tests/node

## flux: build or reuse Flux's source-controller and kustomize-controller from Go modules
## (about 8 CPU-minutes cold, 0.1 s cached in ~/.cache/inventory-sync/flux; tools/flux/)
flux:
	tools/flux/build.sh

## controlplane: build or reuse kube-apiserver, etcd, kubectl, helm from Go modules
## (about 8 minutes cold on 2 cores, 0.3 s cached in ~/.cache/inventory-sync/controlplane)
controlplane:
	tools/controlplane/build.sh

## dev-cluster: a local etcd + kube-apiserver in the background; prints how to use and stop it
dev-cluster: $(STAMP) controlplane
	PYTHON=$(abspath $(BIN)/python) DEV_CLUSTER_STOP_COMMAND="make dev-cluster-stop" tools/controlplane/dev-cluster.sh start

## e2e-kind: on a machine with Docker and kind, the control-plane tests against a kind cluster
KIND_CLUSTER ?= inventory-sync-e2e
e2e-kind: $(STAMP)
	kind create cluster --name $(KIND_CLUSTER) --kubeconfig .kind-kubeconfig
	INVENTORY_SYNC_TEST_KUBECONFIG=$(abspath .kind-kubeconfig) $(BIN)/python -m pytest -m controlplane; \
	  status=$$?; kind delete cluster --name $(KIND_CLUSTER); rm -f .kind-kubeconfig; exit $$status

## dev-cluster-stop: stop it (honours DEV_CLUSTER_STATE_DIR, like dev-cluster)
dev-cluster-stop:
	PYTHON=$(abspath $(BIN)/python) tools/controlplane/dev-cluster.sh stop

## dev-cluster-env: print the KUBECONFIG/PATH exports for it: eval "$$(make -s dev-cluster-env)"
dev-cluster-env:
	@PYTHON=$(abspath $(BIN)/python) tools/controlplane/dev-cluster.sh env

## check: lint, types, import layers, then the tests
check: lint typecheck test

lint: $(STAMP)
	$(BIN)/ruff check operator tests tools bench
	$(BIN)/ruff format --check operator tests tools bench
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

typecheck: $(STAMP)
	$(BIN)/mypy
	MYPYPATH=tools/controlplane $(BIN)/mypy --strict tools/controlplane/localcluster.py
	MYPYPATH=tools/node $(BIN)/mypy --strict tools/node/*.py
	$(BIN)/mypy --strict tools/generate_manifests.py
	MYPYPATH=bench:tools/controlplane $(BIN)/mypy --strict bench/*.py

format: $(STAMP)
	$(BIN)/ruff format operator tests tools bench
	$(BIN)/ruff check --fix operator tests tools bench

## verify: the generated files (the chart's crds/, manifests/) match helm/ and crds/; fails on drift.
## Regenerate them with: .venv/bin/python tools/generate_manifests.py
verify: $(STAMP) controlplane
	$(BIN)/python tools/generate_manifests.py --check

## helm-check: helm lint --strict and helm template with each values file in the chart's ci/
## (the server-side dry-run of every render is tests/controlplane/test_packaging.py)
CHART := helm/inventory-sync-operator
helm-check: controlplane
	@helm="$$(tools/controlplane/build.sh --print-bin-dir)/helm"; set -e; \
	for values in $(CHART)/ci/*-values.yaml; do \
	  echo "helm lint --strict + template: $$values"; \
	  "$$helm" lint --strict --quiet $(CHART) -f "$$values"; \
	  "$$helm" template inventory-sync-operator $(CHART) -n inventory-sync-system \
	    --include-crds -f "$$values" >/dev/null; \
	done

## bench: the recorded benchmarks (ratios against a baseline in the same run); see bench/results/
## BENCH_FLAGS=--quick for the 50k-device version of issue 13's table (minutes, not an hour)
BENCH_FLAGS ?=
bench: $(STAMP)
	$(BIN)/python bench/sync_run.py --repeat 3
	$(BIN)/python bench/floor.py $(BENCH_FLAGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

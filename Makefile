# EV Charging Network: one entry point for running, testing, benchmarking and deploying.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION ?= 0.13.9
UV := .tools/bin/uv
PY := .venv/bin/python
CPS ?= 3
# Images are tagged with the chart's appVersion, so the chart's default tag exists.
APP_VERSION := $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$$/\1/p' charts/evcharging/Chart.yaml)
VERSION ?= $(APP_VERSION)
REGISTRY ?= evcharging
# docker (a client that builds with BuildKit) or podman; images/engine.sh picks one.
CONTAINER_ENGINE ?= $(shell images/engine.sh)
# The base of every image; `make base-image` makes LOCAL_BASE_IMAGE without a registry.
BASE_IMAGE ?= python:3.11-slim-bookworm
LOCAL_BASE_IMAGE ?= evcharging/python:3.11-bookworm
# An extra CA bundle (PEM) for builds behind a TLS-inspecting proxy: a build secret only.
CA_BUNDLE ?=
BUILD_NETWORK ?= host
BUILD_FLAGS ?=
comma := ,
KIND_CLUSTER ?= evcharging
NAMESPACE ?= evcharging
HELM_RELEASE ?= evcharging
MONITORING ?= 0
KIND_CONTEXT := kind-$(KIND_CLUSTER)
SERVICES := central engine monitor driver

.PHONY: help install lint test test-fast run bench images base-image kind-up kind-load deploy e2e-kind kind-down clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(UV):
	python3 -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.installed: $(UV) uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml bench/pyproject.toml)
	$(UV) sync --all-packages --frozen
	touch $@

install: .venv/.installed ## create .venv with every package and tool (uv, one lock file)

lint: install ## ruff, mypy and the import contracts (services never import each other)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy libs/*/src services/*/src bench/src
	.venv/bin/lint-imports

test: lint ## lint, then every test (unit, integration, e2e, chart, metrics)
	@# pytest exits 5 when it collected nothing: a broken testpaths, not a pass
	.venv/bin/pytest $(PYTEST_ARGS) || { rc=$$?; \
	  if [ $$rc = 5 ]; then echo "make test: pytest collected no tests (see testpaths in pyproject.toml)" >&2; fi; \
	  exit $$rc; }

test-fast: install ## unit tests only
	.venv/bin/pytest -m "not e2e and not slow" $(PYTEST_ARGS)

run: install ## the whole system locally on the embedded broker (CPS=3)
	.venv/bin/evstack run --cps $(CPS)

bench: install ## load benchmark; writes docs/benchmarks.md and docs/benchmarks.json
	$(PY) -m evbench --out docs/benchmarks

images: ## the four images, tagged $(VERSION) (BASE_IMAGE=, CA_BUNDLE=, CONTAINER_ENGINE=docker|podman)
	@for s in $(SERVICES); do \
	  echo "building $(REGISTRY)/ev$$s:$(VERSION) on $(BASE_IMAGE) with $(CONTAINER_ENGINE)"; \
	  DOCKER_BUILDKIT=1 $(CONTAINER_ENGINE) build $(BUILD_FLAGS) --network $(BUILD_NETWORK) \
	    $(if $(CA_BUNDLE),--secret id=ca$(comma)src=$(CA_BUNDLE)) \
	    --build-arg BASE_IMAGE=$(BASE_IMAGE) --build-arg SERVICE=$$s \
	    --build-arg UV_VERSION=$(UV_VERSION) --build-arg VERSION=$(VERSION) \
	    -t $(REGISTRY)/ev$$s:$(VERSION) . || exit 1; \
	done

base-image: ## Debian bookworm + Python 3.11 base without a registry; then make images BASE_IMAGE=$(LOCAL_BASE_IMAGE)
	CONTAINER_ENGINE=$(CONTAINER_ENGINE) images/base-image.sh $(LOCAL_BASE_IMAGE)

kind-up: ## kind cluster + Strimzi operator (MONITORING=1 adds kube-prometheus-stack)
	MONITORING=$(MONITORING) k8s/kind-up.sh $(KIND_CLUSTER)

kind-load: ## load the images into the kind cluster
	@for s in $(SERVICES); do kind load docker-image --name $(KIND_CLUSTER) $(REGISTRY)/ev$$s:$(VERSION) || exit 1; done

deploy: ## helm upgrade --install the umbrella chart into the kind cluster and wait
	helm upgrade --install $(HELM_RELEASE) charts/evcharging --kube-context $(KIND_CONTEXT) \
	  --namespace $(NAMESPACE) --create-namespace -f k8s/values-kind.yaml \
	  --set global.image.registry=$(REGISTRY) --set global.image.tag=$(VERSION) --wait --timeout 10m

e2e-kind: install ## end-to-end tests against the kind cluster
	EV_KIND_CLUSTER=$(KIND_CLUSTER) EV_KIND_NAMESPACE=$(NAMESPACE) EV_HELM_RELEASE=$(HELM_RELEASE) \
	  EV_IMAGE_REGISTRY=$(REGISTRY) EV_IMAGE_TAG=$(VERSION) \
	  .venv/bin/pytest tests/e2e/kind -m kind $(PYTEST_ARGS)

kind-down: ## delete the kind cluster
	kind delete cluster --name $(KIND_CLUSTER)

clean: ## remove the virtualenv, caches and local run state
	rm -rf .venv .tools .run .pytest_cache .mypy_cache .ruff_cache

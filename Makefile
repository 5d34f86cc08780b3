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
CHART_VERSION := $(shell sed -n 's/^version: *"\{0,1\}\([^"]*\)"\{0,1\} *$$/\1/p' charts/evcharging/Chart.yaml)
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
# REGISTRY given on the command line or in the environment: `make release` pushes there.
PUSH := $(filter command environment,$(firstword $(origin REGISTRY)))
# The cluster: kind or minikube, its name (kind cluster / minikube profile) and
# kubectl context; every cluster target takes these, never the current context.
CLUSTER ?= kind
CLUSTER_NAME ?= evcharging
KUBE_CONTEXT ?= $(if $(filter minikube,$(CLUSTER)),$(CLUSTER_NAME),kind-$(CLUSTER_NAME))
VALUES ?= k8s/values-$(CLUSTER).yaml
NAMESPACE ?= evcharging
HELM_RELEASE ?= evcharging
MONITORING ?= 0
LOAD_IMAGE_kind = kind load docker-image --name $(CLUSTER_NAME)
LOAD_IMAGE_minikube = minikube --profile $(CLUSTER_NAME) image load
SERVICES := central engine monitor driver ocpp

.PHONY: help install lint test test-fast fuzz run bench images base-image release chart-docs kind-up minikube-up load kind-load deploy e2e-cluster e2e-kind kind-down minikube-down clean

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

fuzz: install ## property tests in their long mode (EV_FUZZ_EXAMPLES inputs per target, default 1,000,000; about an hour of CPU)
	EV_FUZZ=long .venv/bin/pytest -q -s -p evstack.fuzzing --timeout=0 $(PYTEST_ARGS) \
	  libs/evproto/tests/test_evproto_framing_fuzz.py libs/evproto/tests/test_evproto_messages_fuzz.py \
	  services/central/tests/test_central_fuzz.py

run: install ## the whole system locally on the embedded broker (CPS=3)
	.venv/bin/evstack run --cps $(CPS)

bench: install ## load benchmark; writes docs/benchmarks.md and .json (STEPS=1000,...,50000 BENCH_ARGS=)
	$(PY) -m evbench --out docs/benchmarks $(if $(STEPS),--steps $(STEPS)) $(BENCH_ARGS)

images: ## the five images, tagged $(VERSION) (BASE_IMAGE=, CA_BUNDLE=, CONTAINER_ENGINE=docker|podman)
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

release: ## images tagged with the appVersion, the chart packaged into dist/; REGISTRY=host/org pushes both (the chart as OCI)
	$(MAKE) images VERSION=$(APP_VERSION)
	mkdir -p dist
	helm package charts/evcharging --destination dist
ifneq ($(PUSH),)
	@for s in $(SERVICES); do \
	  echo "pushing $(REGISTRY)/ev$$s:$(APP_VERSION)"; \
	  $(CONTAINER_ENGINE) push $(REGISTRY)/ev$$s:$(APP_VERSION) || exit 1; \
	done
	helm push dist/evcharging-$(CHART_VERSION).tgz oci://$(REGISTRY)
	@echo "helm install evcharging oci://$(REGISTRY)/evcharging --version $(CHART_VERSION) --set global.image.registry=$(REGISTRY)"
endif

chart-docs: install ## the values table of charts/evcharging/README.md and the schema's descriptions, from values.yaml
	$(PY) charts/values_docs.py

kind-up: ## kind cluster + Strimzi operator (MONITORING=1 adds kube-prometheus-stack)
	MONITORING=$(MONITORING) k8s/kind-up.sh $(CLUSTER_NAME)

minikube-up: ## minikube profile + Strimzi operator (MONITORING=1 adds kube-prometheus-stack); then CLUSTER=minikube
	MONITORING=$(MONITORING) k8s/minikube-up.sh $(CLUSTER_NAME)

load: ## load the images into the cluster (CLUSTER=kind: kind load; CLUSTER=minikube: minikube image load)
	@$(if $(LOAD_IMAGE_$(CLUSTER)),,echo "make load: CLUSTER must be kind or minikube" >&2; exit 2;)
	@for s in $(SERVICES); do \
	  echo "loading $(REGISTRY)/ev$$s:$(VERSION) into $(CLUSTER) $(CLUSTER_NAME)"; \
	  $(LOAD_IMAGE_$(CLUSTER)) $(REGISTRY)/ev$$s:$(VERSION) || exit 1; \
	done

kind-load: load ## the same as make load CLUSTER=kind

deploy: ## helm upgrade --install the chart into KUBE_CONTEXT with k8s/values-$(CLUSTER).yaml, and wait
	helm upgrade --install $(HELM_RELEASE) charts/evcharging --kube-context $(KUBE_CONTEXT) \
	  --namespace $(NAMESPACE) --create-namespace -f $(VALUES) \
	  --set global.image.registry=$(REGISTRY) --set global.image.tag=$(VERSION) --wait --timeout 10m

e2e-cluster: install ## end-to-end tests against the release in KUBE_CONTEXT
	EV_KUBE_CONTEXT=$(KUBE_CONTEXT) EV_KIND_NAMESPACE=$(NAMESPACE) EV_HELM_RELEASE=$(HELM_RELEASE) \
	  EV_VALUES=$(VALUES) EV_IMAGE_REGISTRY=$(REGISTRY) EV_IMAGE_TAG=$(VERSION) \
	  .venv/bin/pytest tests/e2e/kind -m kind $(PYTEST_ARGS)

e2e-kind: e2e-cluster ## the same as make e2e-cluster CLUSTER=kind

kind-down: ## delete the kind cluster
	kind delete cluster --name $(CLUSTER_NAME)

minikube-down: ## delete the minikube profile
	minikube delete --profile $(CLUSTER_NAME)

clean: ## remove the virtualenv, caches and local run state
	rm -rf .venv .tools .run .pytest_cache .mypy_cache .ruff_cache dist

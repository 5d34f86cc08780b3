#!/usr/bin/env bash
# Create the kind cluster and its add-ons: the Strimzi operator (pinned) and,
# with MONITORING=1, kube-prometheus-stack (pinned). Safe to run again.
#   k8s/kind-up.sh [CLUSTER_NAME]
set -euo pipefail

CLUSTER="${1:-evcharging}"
STRIMZI_VERSION="1.2.0"
KUBE_PROMETHEUS_STACK_VERSION="88.5.3"
MONITORING="${MONITORING:-0}"
HERE="$(cd "$(dirname "$0")" && pwd)"

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "kind-up: '$tool' is not installed" >&2; exit 1; }
done

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  echo "kind cluster '$CLUSTER' exists"
else
  kind create cluster --name "$CLUSTER" --config "$HERE/kind-config.yaml" --wait 180s
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null

echo "installing the Strimzi operator $STRIMZI_VERSION"
helm upgrade --install strimzi oci://quay.io/strimzi-helm/strimzi-kafka-operator \
  --version "$STRIMZI_VERSION" \
  --namespace strimzi --create-namespace \
  --set watchAnyNamespace=true \
  --wait --timeout 10m

if [[ "$MONITORING" == "1" ]]; then
  echo "installing kube-prometheus-stack $KUBE_PROMETHEUS_STACK_VERSION"
  helm upgrade --install kube-prometheus-stack \
    oci://ghcr.io/prometheus-community/charts/kube-prometheus-stack \
    --version "$KUBE_PROMETHEUS_STACK_VERSION" \
    --namespace monitoring --create-namespace \
    -f "$HERE/kube-prometheus-stack-values.yaml" \
    --wait --timeout 15m
fi

echo "kind cluster '$CLUSTER' is ready (context kind-$CLUSTER)."
echo "Next: make images kind-load deploy e2e-kind"

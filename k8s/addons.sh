#!/usr/bin/env bash
# The chart's cluster add-ons, in the kubectl context given: the Strimzi operator
# (pinned; the chart refuses to render its Kafka without it) and, with
# MONITORING=1, kube-prometheus-stack (pinned). Safe to run again.
#   k8s/addons.sh KUBE_CONTEXT
set -euo pipefail

CONTEXT="$1"
STRIMZI_VERSION="1.2.0"
KUBE_PROMETHEUS_STACK_VERSION="88.5.3"
MONITORING="${MONITORING:-0}"
HERE="$(cd "$(dirname "$0")" && pwd)"

echo "installing the Strimzi operator $STRIMZI_VERSION into $CONTEXT"
helm upgrade --install strimzi oci://quay.io/strimzi-helm/strimzi-kafka-operator \
  --kube-context "$CONTEXT" \
  --version "$STRIMZI_VERSION" \
  --namespace strimzi --create-namespace \
  --set watchAnyNamespace=true \
  --wait --timeout 10m

if [[ "$MONITORING" == "1" ]]; then
  echo "installing kube-prometheus-stack $KUBE_PROMETHEUS_STACK_VERSION into $CONTEXT"
  helm upgrade --install kube-prometheus-stack \
    oci://ghcr.io/prometheus-community/charts/kube-prometheus-stack \
    --kube-context "$CONTEXT" \
    --version "$KUBE_PROMETHEUS_STACK_VERSION" \
    --namespace monitoring --create-namespace \
    -f "$HERE/kube-prometheus-stack-values.yaml" \
    --wait --timeout 15m
fi

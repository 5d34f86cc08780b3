#!/usr/bin/env bash
# Create the kind cluster and its add-ons (k8s/addons.sh: Strimzi and, with
# MONITORING=1, kube-prometheus-stack). Safe to run again.
#   k8s/kind-up.sh [CLUSTER_NAME]
set -euo pipefail

CLUSTER="${1:-evcharging}"
HERE="$(cd "$(dirname "$0")" && pwd)"

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "kind-up: '$tool' is not installed" >&2; exit 1; }
done

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  echo "kind cluster '$CLUSTER' exists"
else
  kind create cluster --name "$CLUSTER" --config "$HERE/kind-config.yaml" --wait 180s
fi
"$HERE/addons.sh" "kind-$CLUSTER"

echo "kind cluster '$CLUSTER' is ready (context kind-$CLUSTER)."
echo "Next: make images load deploy e2e-cluster"

#!/usr/bin/env bash
# Start a minikube profile and its add-ons (k8s/addons.sh: Strimzi and, with
# MONITORING=1, kube-prometheus-stack). Safe to run again.
#   k8s/minikube-up.sh [PROFILE]     MINIKUBE_DRIVER (docker), MINIKUBE_CPUS (4), MINIKUBE_MEMORY (6g)
# The kubectl context is named after the profile.
set -euo pipefail

PROFILE="${1:-evcharging}"
KUBERNETES_VERSION="v1.35.0"   # the version the chart is rendered and validated for
HERE="$(cd "$(dirname "$0")" && pwd)"

for tool in minikube kubectl helm; do
  command -v "$tool" >/dev/null || { echo "minikube-up: '$tool' is not installed" >&2; exit 1; }
done

if minikube status --profile "$PROFILE" >/dev/null 2>&1; then
  echo "minikube profile '$PROFILE' is running"
else
  minikube start --profile "$PROFILE" \
    --driver "${MINIKUBE_DRIVER:-docker}" \
    --cpus "${MINIKUBE_CPUS:-4}" --memory "${MINIKUBE_MEMORY:-6g}" \
    --kubernetes-version "$KUBERNETES_VERSION" \
    --wait all
fi
"$HERE/addons.sh" "$PROFILE"

echo "minikube profile '$PROFILE' is ready (context $PROFILE)."
echo "Next: make images load deploy e2e-cluster CLUSTER=minikube"

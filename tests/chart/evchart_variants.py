"""Value sets the chart is rendered and validated with: every option is exercised."""

from __future__ import annotations

from typing import Any

from evchart_render import (
    KIND_VALUES,
    LOCAL_BROKER,
    MINIKUBE_VALUES,
    MONITORING_API,
    values_from,
)

MONITORING_ON = {"monitoring": {"enabled": True, "prometheusRule": {"enabled": True}}}
KAFKA_PLAINTEXT = LOCAL_BROKER  # what the local runs of the pods override
CERT_MANAGER = {"central": {"tls": {"certManager": {"enabled": True}}}}
EXTERNAL_KAFKA = {
    "kafka": {
        "external": {
            "bootstrap": "kafka-0.example.net:9093,kafka-1.example.net:9093",
            "securityProtocol": "SASL_SSL",
            "existingSecret": "evcharging-kafka-credentials",
            "caSecret": "evcharging-kafka-ca",
        }
    }
}
EVERY_OPTION = {
    "central": {
        "auth": {"existingSecret": "evcharging-operator-tokens"},
        "tls": {"enabled": True, "secretName": "evcharging-central-tls"},
        "persistence": {"enabled": False},
        "extraArgs": ["--log-level", "DEBUG"],
        "image": {"repository": "evcentral", "digest": "sha256:" + "0" * 64},
    },
    "chargingPoints": {"replicas": 5, "stateVolume": {"type": "emptyDir", "size": "8Mi"}},
    "drivers": {
        "batch": "CP-0\nCP-1\n",
        "stateVolume": {"type": "persistentVolumeClaim", "size": "8Mi"},
    },
    "ocpp": {
        "enrollment": "pending",
        "tls": {"enabled": True, "secretName": "evcharging-ocpp-tls"},
        "service": {"type": "NodePort", "nodePort": 30900},
        "ingress": {"enabled": True, "className": "nginx", "host": "ocpp.example.net"},
        "persistence": {"enabled": False},
    },
    "podDisruptionBudget": {"enabled": False},
    "test": {"enabled": False},
    "ingress": {
        "enabled": True,
        "className": "nginx",
        "host": "evcharging.example.net",
        "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
        "tls": [{"secretName": "evcharging-dashboard-tls", "hosts": ["evcharging.example.net"]}],
    },
}

# name -> (values, API versions the cluster is assumed to serve)
VARIANTS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "default": ({}, []),
    "kind": (values_from([KIND_VALUES]), [MONITORING_API]),
    "kind-without-prometheus-operator": (values_from([KIND_VALUES]), []),
    "minikube": (values_from([MINIKUBE_VALUES]), [MONITORING_API]),
    "minikube-with-ingress": (values_from([MINIKUBE_VALUES], {"ingress": {"enabled": True}}), []),
    "monitoring": (MONITORING_ON, [MONITORING_API]),
    "kafka-plaintext": (KAFKA_PLAINTEXT, []),
    "cert-manager": (CERT_MANAGER, []),
    "external-kafka": (EXTERNAL_KAFKA, []),
    "every-option": (EVERY_OPTION, []),
}

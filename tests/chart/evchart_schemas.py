"""Validate rendered objects: built-in kinds with kubernetes-validate (strict), custom
resources against their CRDs' openAPIV3Schema from the shared folder.

A CRD schema leaves objects open unless told otherwise; the API server prunes
unknown fields silently, so a typo'd field would simply vanish. Here every
object schema that lists ``properties`` is closed (``additionalProperties:
false``) unless it says ``x-kubernetes-preserve-unknown-fields: true``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from evchart_render import KUBE_VERSION, REPO, Manifest
from evstack.tools import unavailable

SHARED = REPO.parent / "shared"
CRD_DIRS = ("crds/strimzi-1.2.0", "crds/prometheus-operator")


def shared_dir() -> Path:
    """The shared folder beside the repository; skips where missing, fails under CI."""
    if not (SHARED / "crds").is_dir():
        unavailable(f"the CRD schemas are missing: {SHARED / 'crds'} (shared/ beside the repo)")
    return SHARED


def _closed(schema: Any) -> Any:
    """A copy of ``schema`` where objects with ``properties`` reject unknown fields."""
    if isinstance(schema, list):
        return [_closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            # Field name -> schema: the names are data, only the schemas recurse.
            out[key] = {name: _closed(sub) for name, sub in value.items()}
        else:
            out[key] = _closed(value)
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _crd_documents(shared: Path) -> Iterator[dict[str, Any]]:
    for folder in CRD_DIRS:
        for path in sorted((shared / folder).glob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text()):
                if doc and doc.get("kind") == "CustomResourceDefinition":
                    yield doc


@cache
def crd_validators(shared: Path) -> dict[tuple[str, str], jsonschema.protocols.Validator]:
    """(apiVersion, kind) -> validator, for every served version of every CRD."""
    validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
    for crd in _crd_documents(shared):
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if not version.get("served", True):
                continue
            schema = _closed(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
            validators[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(schema)
    return validators


# cert-manager's CRDs are not in the shared folder; the chart's cert-manager objects
# (off by default: central.tls.certManager.enabled) are checked against this closed
# subset of cert-manager.io/v1, the fields the chart uses, as cert-manager's API
# reference documents them.
_OBJECT_META = {"type": "object", "required": ["name", "namespace"]}
_ISSUER_REF = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "kind": {"enum": ["Issuer", "ClusterIssuer"]},
        "group": {"const": "cert-manager.io"},
    },
}
_DURATION = {"type": "string", "pattern": "^[0-9]+(h|m|s)$"}


def _resource(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {"apiVersion": {}, "kind": {}, "metadata": _OBJECT_META, "spec": spec},
    }


CERT_MANAGER_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("cert-manager.io/v1", "Issuer"): _resource(
        {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "maxProperties": 1,
            "properties": {
                "selfSigned": {"type": "object", "additionalProperties": False},
                "ca": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["secretName"],
                    "properties": {"secretName": {"type": "string"}},
                },
            },
        }
    ),
    ("cert-manager.io/v1", "Certificate"): _resource(
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["secretName", "issuerRef"],
            "properties": {
                "secretName": {"type": "string"},
                "issuerRef": _ISSUER_REF,
                "isCA": {"type": "boolean"},
                "commonName": {"type": "string", "maxLength": 64},
                "dnsNames": {"type": "array", "items": {"type": "string"}},
                "duration": _DURATION,
                "renewBefore": _DURATION,
                "usages": {
                    "type": "array",
                    "items": {
                        "enum": [
                            "server auth",
                            "client auth",
                            "digital signature",
                            "key encipherment",
                            "cert sign",
                        ]
                    },
                },
                "privateKey": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]},
                        "size": {"type": "integer"},
                    },
                },
            },
        }
    ),
}


def crd_errors(obj: Manifest, shared: Path) -> list[str]:
    """Schema violations of a custom resource; an unknown kind is itself an error."""
    key = (obj["apiVersion"], obj["kind"])
    if key in CERT_MANAGER_SCHEMAS:
        subset = jsonschema.Draft7Validator(CERT_MANAGER_SCHEMAS[key])
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in subset.iter_errors(obj)
        ]
    validator = crd_validators(shared).get(key)
    if validator is None:
        return [f"no CRD schema for {key[0]} {key[1]} in {shared}/crds"]
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.path)))
    ]


def is_builtin(obj: Manifest) -> bool:
    group = obj["apiVersion"].rpartition("/")[0]
    return group == "" or group.endswith(".k8s.io") or group in {"apps", "batch", "policy"}


def builtin_errors(obj: Manifest) -> list[str]:
    """kubernetes-validate in strict mode (unknown fields are errors)."""
    try:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = "/".join(map(str, exc.path)) or "<root>"
        return [f"{path}: {exc.message}"]
    return []

"""Our own strict JSON Schemas for the few kinds with no schema in $CRD_SCHEMA_DIR.

The shared schema catalog has no Gateway API, Knative Operator or Strimzi kinds. Rather
than let those objects through unchecked, each gets a small schema written from the
upstream API reference: it covers the fields we use, rejects unknown ones, and is
deliberately narrower than upstream (a field we start using must be added here).
"""

from __future__ import annotations

from typing import Any

REASON = (
    "no published schema in the CRD schema directory for {group}; "
    "validated against our own narrower schema in tests/unpublished_schemas.py"
)

_STRING = {"type": "string"}
_STRINGS = {"type": "array", "items": _STRING}
_MAP = {"type": "object", "additionalProperties": {"type": ["string", "integer", "boolean"]}}


def _object(required: list[str], **properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": False,
    }


_METADATA = _object(
    ["name"],
    name=_STRING,
    namespace=_STRING,
    labels=_MAP,
    annotations=_MAP,
)


def _resource(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return _object(
        ["apiVersion", "kind", "metadata", "spec"],
        apiVersion={"const": api_version},
        kind={"const": kind},
        metadata=_METADATA,
        spec=spec,
    )


_PARENT_REF = _object(
    ["name"],
    group=_STRING,
    kind=_STRING,
    name=_STRING,
    namespace=_STRING,
    sectionName=_STRING,
    port={"type": "integer"},
)
_PATH_MATCH = _object(
    ["type", "value"],
    type={"enum": ["Exact", "PathPrefix", "RegularExpression"]},
    value={"type": "string", "pattern": "^/"},
)
_ROUTE_MATCH = _object(
    [],
    path=_PATH_MATCH,
    method={"enum": ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]},
    headers={"type": "array"},
    queryParams={"type": "array"},
)
_FILTER = _object(
    ["type"],
    type={"enum": ["RequestHeaderModifier", "ResponseHeaderModifier", "URLRewrite"]},
    urlRewrite=_object([], hostname=_STRING, path={"type": "object"}),
    requestHeaderModifier={"type": "object"},
    responseHeaderModifier={"type": "object"},
)
_BACKEND_REF = _object(
    ["name"],
    group=_STRING,
    kind=_STRING,
    name=_STRING,
    namespace=_STRING,
    port={"type": "integer", "minimum": 1, "maximum": 65535},
    weight={"type": "integer", "minimum": 0},
)
HTTPROUTE = _resource(
    "gateway.networking.k8s.io/v1",
    "HTTPRoute",
    _object(
        ["parentRefs", "rules"],
        parentRefs={"type": "array", "minItems": 1, "items": _PARENT_REF},
        hostnames=_STRINGS,
        rules={
            "type": "array",
            "minItems": 1,
            "maxItems": 16,
            "items": _object(
                ["matches", "backendRefs"],
                matches={"type": "array", "minItems": 1, "maxItems": 64, "items": _ROUTE_MATCH},
                filters={"type": "array", "items": _FILTER},
                backendRefs={"type": "array", "minItems": 1, "items": _BACKEND_REF},
                timeouts=_object([], request=_STRING, backendRequest=_STRING),
            ),
        },
    ),
)
REFERENCE_GRANT = _resource(
    "gateway.networking.k8s.io/v1beta1",
    "ReferenceGrant",
    _object(
        ["from", "to"],
        **{
            "from": {
                "type": "array",
                "minItems": 1,
                "items": _object(
                    ["group", "kind", "namespace"], group=_STRING, kind=_STRING, namespace=_STRING
                ),
            },
            "to": {
                "type": "array",
                "minItems": 1,
                "items": _object(["group", "kind"], group=_STRING, kind=_STRING, name=_STRING),
            },
        },
    ),
)
_KNATIVE_COMMON = {
    "version": _STRING,
    "config": {"type": "object", "additionalProperties": _MAP},
    "high-availability": _object(["replicas"], replicas={"type": "integer", "minimum": 1}),
    "additionalManifests": {
        "type": "array",
        "items": _object(["URL"], URL={"type": "string", "pattern": "^https://"}),
    },
}
KNATIVE_SERVING = _resource(
    "operator.knative.dev/v1beta1",
    "KnativeServing",
    _object(
        [],
        ingress=_object([], kourier=_object(["enabled"], enabled={"type": "boolean"})),
        **_KNATIVE_COMMON,
    ),
)
KNATIVE_EVENTING = _resource(
    "operator.knative.dev/v1beta1", "KnativeEventing", _object([], **_KNATIVE_COMMON)
)
_RESOURCES = _object([], requests=_MAP, limits=_MAP)
KAFKA_NODE_POOL = _resource(
    "kafka.strimzi.io/v1beta2",
    "KafkaNodePool",
    _object(
        ["replicas", "roles", "storage"],
        replicas={"type": "integer", "minimum": 1},
        roles={"type": "array", "items": {"enum": ["controller", "broker"]}},
        storage=_object(
            ["type"],
            type={"enum": ["jbod", "persistent-claim", "ephemeral"]},
            volumes={
                "type": "array",
                "items": _object(
                    ["id", "type"],
                    id={"type": "integer"},
                    type={"enum": ["persistent-claim", "ephemeral"]},
                    size=_STRING,
                    deleteClaim={"type": "boolean"},
                    kraftMetadata={"enum": ["shared"]},
                    **{"class": _STRING},
                ),
            },
        ),
        resources=_RESOURCES,
    ),
)
KAFKA = _resource(
    "kafka.strimzi.io/v1beta2",
    "Kafka",
    _object(
        ["kafka"],
        kafka=_object(
            ["listeners"],
            version=_STRING,
            metadataVersion=_STRING,
            listeners={
                "type": "array",
                "items": _object(
                    ["name", "port", "type", "tls"],
                    name=_STRING,
                    port={"type": "integer"},
                    type={"enum": ["internal", "route", "loadbalancer", "nodeport", "ingress"]},
                    tls={"type": "boolean"},
                    authentication={"type": "object"},
                ),
            },
            config=_MAP,
            rack=_object(["topologyKey"], topologyKey=_STRING),
        ),
        entityOperator=_object(
            [], topicOperator={"type": "object"}, userOperator={"type": "object"}
        ),
    ),
)

SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): HTTPROUTE,
    ("gateway.networking.k8s.io/v1beta1", "ReferenceGrant"): REFERENCE_GRANT,
    ("operator.knative.dev/v1beta1", "KnativeServing"): KNATIVE_SERVING,
    ("operator.knative.dev/v1beta1", "KnativeEventing"): KNATIVE_EVENTING,
    ("kafka.strimzi.io/v1beta2", "KafkaNodePool"): KAFKA_NODE_POOL,
    ("kafka.strimzi.io/v1beta2", "Kafka"): KAFKA,
}


def schema_for(api_version: str, kind: str) -> dict[str, Any] | None:
    """Our own schema for a kind the shared catalog lacks, or None."""
    return SCHEMAS.get((api_version, kind))

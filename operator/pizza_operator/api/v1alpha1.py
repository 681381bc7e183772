"""The PizzaModelDeployment API, version v1alpha1: typed spec and status.

These models are the source of truth: the CRD in `crds/` is generated from them
(`python -m pizza_operator.crdgen`), and the operator reads every body through them.
Field names are camelCase on the wire (`startupTimeoutSeconds`), snake_case in Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.alias_generators import to_camel

GROUP = "pizza.ai"
VERSION = "v1alpha1"
KIND = "PizzaModelDeployment"
PLURAL = "pizzamodeldeployments"
SINGULAR = "pizzamodeldeployment"
SHORT_NAMES = ["pmd"]

Backend = Literal["cnn", "vlm", "image-classifier", "onnx"]
Precision = Literal["float32", "float16", "bfloat16", "int8"]
Mode = Literal["primary", "previous", "stable", "emergency"]
ConditionStatus = Literal["True", "False", "Unknown"]
RevisionOutcome = Literal["Pending", "Good", "Failed"]

SOURCE_SCHEMES = ("hf://", "pvc://", "builtin://", "file:///")
SOURCE_RULE = "self.matches('^(hf://|pvc://|builtin://|file:///)')"
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
GPU_RESOURCE = "nvidia.com/gpu"
MODEL_NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$"
"""Model names become label values and PromQL strings: letters, digits, '.', '_' and '-'."""
_SEGMENT = "[A-Za-z0-9_][A-Za-z0-9_.-]*"  # a path segment: not empty, not '.', not '..'
_PATH = f"{_SEGMENT}(/{_SEGMENT})*"
SOURCE_PATH_RULE = (
    f"self.matches('^hf://{_PATH}(@{_PATH})?$') || "
    f"self.matches('^pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?/{_PATH}$') || "
    f"self.matches('^builtin://{_PATH}$') || self.matches('^file:///{_PATH}$')"
)
_QUALIFIED_NAME = (
    "^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    "[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
URL_PATTERN = (
    r"^https?://[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$"
)
"""An http(s) URL of a host (DNS name or IPv4) and port, with an optional path: no user, query
or fragment."""
PROMQL_SIGNALS: tuple[str, ...] = (
    "targets",
    "primary_failures",
    "primary_answered",
    "primary_p95",
    "fallback_failures",
    "fallback_answered",
    "fallback_p95",
    "client_requests",
    "client_errors",
    "fallback_reasons",
    "primary_client_requests",
    "primary_client_failures",
)
"""The PromQL queries `spec.analysis.prometheus.queries` may override (each one's default is
`analysis.promql.DEFAULT_QUERIES`)."""
NO_GPU_RULES: list[JsonValue] = [
    {
        "rule": "!has(self.limits) || !('nvidia.com/gpu' in self.limits)",
        "message": "this component runs on CPU: nvidia.com/gpu is not allowed",
    },
    {
        "rule": "!has(self.requests) || !('nvidia.com/gpu' in self.requests)",
        "message": "this component runs on CPU: nvidia.com/gpu is not allowed",
    },
]

# A Kubernetes quantity ("500m", "16Gi", 2): int-or-string, like core/v1 ResourceRequirements.
Quantity = Annotated[
    int | str,
    Field(
        json_schema_extra={
            "x-kubernetes-int-or-string": True,
            "pattern": r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
            r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$",
        }
    ),
]


class ApiModel(BaseModel):
    """Base: camelCase aliases on the wire, unknown fields ignored (the API server prunes them)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def to_wire(self) -> dict[str, Any]:
        """The object as the API server stores it (camelCase, no unset optionals)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ModelRef(ApiModel):
    """Which model a component serves and how it is loaded."""

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=MODEL_NAME_PATTERN,
        description="Model name reported by the server (PIZZA_MODEL_NAME), e.g. spatial-mllm: "
        "letters, digits, '.', '_' and '-'.",
    )
    backend: Backend = Field(
        description="Model backend: cnn (MicroPizzaNet on torch), vlm (vision-language model), "
        "image-classifier (a transformers image classifier) or onnx (an exported classifier on "
        "ONNX Runtime, served by the light CPU image without torch)."
    )
    source: str = Field(
        min_length=1,
        max_length=512,
        description="Where the weights come from: hf://ID[@REVISION], pvc://CLAIM/PATH "
        "(mounted read-only at /models/CLAIM), builtin://NAME (weights inside the image) "
        "or file:///PATH.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": SOURCE_RULE,
                    "message": "source must start with hf://, pvc://, builtin:// or file:///",
                },
                {
                    "rule": "!self.startsWith('pvc://') || "
                    "self.matches('^pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?/.+$')",
                    "message": "a pvc source must be pvc://CLAIM/PATH with a valid claim name",
                },
                {
                    "rule": SOURCE_PATH_RULE,
                    "message": "every path segment of a source must be a name: not empty, "
                    "not '.' or '..' (and it starts with a letter, digit or '_')",
                },
            ]
        },
    )
    precision: Precision = Field(
        default="float32",
        description="Numeric precision the weights are served in: float32, float16, bfloat16 "
        "or int8 (int8 only with the cnn and onnx backends).",
    )


MODEL_RULES: list[JsonValue] = [
    {
        "rule": "!has(self.precision) || self.precision != 'int8' || "
        "self.backend in ['cnn', 'onnx']",
        "message": "precision int8 is only available with backends cnn and onnx",
        "fieldPath": ".precision",
    }
]


class Resources(ApiModel):
    """Compute resources of each container, as in core/v1 ResourceRequirements."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"!has(self.{kind}) || "
                    f"self.{kind}.all(k, k.matches('{_QUALIFIED_NAME}'))",
                    "message": f"{kind}: every resource name must be a qualified name "
                    "(cpu, memory, example.com/thing)",
                    "fieldPath": f".{kind}",
                }
                for kind in ("requests", "limits")
            ]
        }
    )

    requests: dict[str, Quantity] | None = Field(
        default=None,
        description="Minimum resources the scheduler reserves (cpu, memory).",
        json_schema_extra={"maxProperties": 16},
    )
    limits: dict[str, Quantity] | None = Field(
        default=None,
        description="Maximum resources the container may use (cpu, memory).",
        json_schema_extra={"maxProperties": 16},
    )


class Toleration(ApiModel):
    """A toleration, as in core/v1 Toleration."""

    key: str | None = Field(default=None, description="Taint key the toleration applies to.")
    operator: Literal["Exists", "Equal"] | None = Field(
        default=None, description="Exists or Equal (the default)."
    )
    value: str | None = Field(default=None, description="Taint value to match (with Equal).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to match; empty matches all effects."
    )
    toleration_seconds: int | None = Field(
        default=None, description="How long a NoExecute taint is tolerated before eviction."
    )


def _primary_resources() -> Resources:
    return Resources(requests={"cpu": "4", "memory": "16Gi"}, limits={"memory": "16Gi"})


def _fallback_resources() -> Resources:
    return Resources(requests={"cpu": "500m", "memory": "512Mi"}, limits={"memory": "1Gi"})


AUTOSCALING_RULES: list[JsonValue] = [
    {
        "rule": "self.minReplicas <= self.maxReplicas",
        "message": "minReplicas must not exceed maxReplicas",
        "fieldPath": ".minReplicas",
    },
    {
        "rule": "!has(self.scaleDownWindow) || duration(self.scaleDownWindow) >= duration('10s')",
        "message": "scaleDownWindow must be at least 10s",
        "fieldPath": ".scaleDownWindow",
    },
]


class Autoscaling(ApiModel):
    """Replicas decided by the operator from the routers' signals (requests in flight per
    upstream), or left to the user's own autoscaler (`managedBy: External`)."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": AUTOSCALING_RULES})

    managed_by: Literal["Operator", "External"] = Field(
        default="Operator",
        description="Operator: the operator scales this component. External: an HPA, KEDA or "
        "anything else owns its replica count; the operator never sets it.",
    )
    min_replicas: int = Field(default=1, ge=0, le=64, description="Fewest pods.")
    max_replicas: int = Field(default=4, ge=1, le=64, description="Most pods.")
    target_in_flight: float = Field(
        default=2.0,
        gt=0,
        le=1000,
        description="Requests in flight per pod the operator scales for (the routers' count).",
    )
    scale_down_window: str = Field(
        default="2m",
        pattern=DURATION_PATTERN,
        max_length=32,
        description="Scale down only to the highest count wanted over this window (a duration).",
    )


PRIMARY_AUTOSCALING_RULES: list[JsonValue] = [
    *AUTOSCALING_RULES,
    {
        "rule": "!has(self.idleAfter) || self.minReplicas == 0",
        "message": "idleAfter needs minReplicas: 0 (the primary sleeps at zero)",
        "fieldPath": ".idleAfter",
    },
    {
        "rule": "!has(self.idleAfter) || duration(self.idleAfter) >= duration('10s')",
        "message": "idleAfter must be at least 10s",
        "fieldPath": ".idleAfter",
    },
]


class PrimaryAutoscaling(Autoscaling):
    """The primary's autoscaling; with `minReplicas: 0` and `idleAfter` it sleeps at zero while
    the fallback answers, and wakes on the first request meant for it."""

    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": PRIMARY_AUTOSCALING_RULES}
    )

    idle_after: str | None = Field(
        default=None,
        pattern=DURATION_PATTERN,
        max_length=32,
        description="Scale the primary to zero after this long without a request meant for it "
        "(a duration; needs minReplicas: 0).",
    )


class PrimarySpec(ApiModel):
    """The GPU primary: the large vision-language model."""

    model: ModelRef = Field(
        description="The model the primary serves.",
        json_schema_extra={"x-kubernetes-validations": MODEL_RULES},
    )
    replicas: int = Field(default=1, ge=0, le=64, description="Number of primary pods.")
    gpu: int = Field(
        default=1, ge=0, le=8, description="GPUs (nvidia.com/gpu) requested by each pod."
    )
    resources: Resources = Field(
        default_factory=_primary_resources,
        description="CPU and memory of each primary pod; set GPUs with gpu, not here.",
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node labels the primary pods must run on."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list,
        description="Extra tolerations; the nvidia.com/gpu toleration is always added.",
    )
    autoscaling: PrimaryAutoscaling | None = Field(
        default=None,
        description="Scale the primary with its load (replicas is then the starting count).",
    )
    startup_timeout_seconds: int = Field(
        default=1200,
        ge=30,
        le=7200,
        description="How long a pod may take to load the model before it is restarted "
        "(sizes the startup probe).",
    )


class FallbackSpec(ApiModel):
    """The CPU fallback: the INT8 CNN."""

    model: ModelRef = Field(
        description="The model the fallback serves.",
        json_schema_extra={"x-kubernetes-validations": MODEL_RULES},
    )
    replicas: int = Field(default=2, ge=0, le=64, description="Number of fallback pods.")
    gpu: int | None = Field(
        default=None,
        description="Not allowed: the fallback runs on CPU (declared only to refuse it).",
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "self == 0", "message": "the fallback runs on CPU: gpu is not allowed"}
            ]
        },
    )
    resources: Resources = Field(
        default_factory=_fallback_resources,
        description="CPU and memory of each fallback pod.",
        json_schema_extra={"x-kubernetes-validations": NO_GPU_RULES},
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node labels the fallback pods must run on."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, description="Tolerations of the fallback pods."
    )
    autoscaling: Autoscaling | None = Field(
        default=None,
        description="Scale the fallback with its load (replicas is then the starting count; in "
        "stable and emergency modes rollback's fallbackReplicas is the floor).",
    )


class AbTest(ApiModel):
    """A/B split of the router between primary and fallback."""

    primary_percent: int = Field(
        default=100, ge=0, le=100, description="Percent of requests sent to the primary first."
    )


class RouterSpec(ApiModel):
    """The router: the entry point that forwards to the primary and falls back per request."""

    replicas: int = Field(default=2, ge=0, le=64, description="Number of router pods.")
    primary_timeout_seconds: float = Field(
        default=5,
        gt=0,
        le=300,
        description="Seconds to wait for the primary before answering from the fallback.",
    )
    rate_limit_per_minute: int = Field(
        default=100, ge=1, le=1_000_000, description="Requests a minute each client may make."
    )
    ab_test: AbTest = Field(default_factory=AbTest, description="A/B split.")
    resources: Resources = Field(
        default_factory=lambda: Resources(
            requests={"cpu": "100m", "memory": "128Mi"}, limits={"memory": "256Mi"}
        ),
        description="CPU and memory of each router pod (no GPU: the router runs on CPU).",
        json_schema_extra={"x-kubernetes-validations": NO_GPU_RULES},
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node labels the router pods must run on."
    )
    tolerations: list[Toleration] = Field(
        default_factory=list, description="Tolerations of the router pods."
    )


class PrometheusRef(ApiModel):
    """Where the automatic-rollback analysis reads metrics."""

    address: str = Field(
        default="",
        max_length=512,
        description="Prometheus base URL (http://HOST:PORT); empty scrapes the pods directly.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"self == '' || self.matches('{URL_PATTERN}')",
                    "message": "address must be empty or an http(s) URL of a host and port "
                    "(http://HOST:PORT[/PATH]; no user, query or fragment)",
                }
            ]
        },
    )
    queries: dict[str, str] = Field(
        default_factory=dict,
        description=f"PromQL overrides per signal ({', '.join(PROMQL_SIGNALS)}); templates may "
        "use $router, $window, $primary_model and $fallback_model (docs/rollback.md).",
        json_schema_extra={
            "maxProperties": len(PROMQL_SIGNALS),
            "x-kubernetes-validations": [
                {
                    "rule": f"self.all(k, k in {list(PROMQL_SIGNALS)!r})",
                    "message": "unknown signal: queries may override " + ", ".join(PROMQL_SIGNALS),
                }
            ],
        },
    )


class AnalysisSpec(ApiModel):
    """Health analysis that drives automatic rollback."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.window) || !has(self.interval) || "
                    "duration(self.window) >= duration(self.interval)",
                    "message": "window must be at least one interval",
                    "fieldPath": ".window",
                },
                {
                    "rule": "!has(self.interval) || duration(self.interval) >= duration('1s')",
                    "message": "interval must be at least 1s",
                    "fieldPath": ".interval",
                },
            ]
        }
    )

    interval: str = Field(
        default="10s",
        pattern=DURATION_PATTERN,
        max_length=32,
        description="How often the analysis runs (a duration: 10s, 1m).",
    )
    window: str = Field(
        default="1m",
        pattern=DURATION_PATTERN,
        max_length=32,
        description="The window rates are computed over (a duration).",
    )
    error_rate_threshold: float = Field(
        default=0.05, ge=0, le=1, description="Error rate (0..1) above which a check fails."
    )
    latency_p95_threshold_seconds: float = Field(
        default=5, gt=0, le=3600, description="p95 latency in seconds above which a check fails."
    )
    min_requests: int = Field(
        default=20, ge=0, description="Requests a window needs before it is judged."
    )
    failure_threshold: int = Field(
        default=3, ge=1, le=100, description="Failed checks in a row that trigger a rollback."
    )
    prometheus: PrometheusRef = Field(default_factory=PrometheusRef, description="Metrics source.")


class StableSpec(ApiModel):
    """The stable mode: CNN only, maximum reliability."""

    fallback_replicas: int | None = Field(
        default=None,
        ge=1,
        le=64,
        description="Fallback pods in stable mode; unset keeps spec.fallback.replicas.",
    )
    keep_primary_pods: bool = Field(
        default=False,
        description="Keep one primary pod (not sent traffic) for debugging instead of scaling "
        "the primary to zero.",
    )


def _emergency_resources() -> Resources:
    return Resources(requests={"cpu": "2", "memory": "4Gi"}, limits={"memory": "4Gi"})


class EmergencySpec(ApiModel):
    """The emergency mode: a minimal server with basic function (the prior system's sizing)."""

    replicas: int = Field(default=1, ge=1, le=64, description="Emergency server pods.")
    image: str | None = Field(
        default=None,
        max_length=512,
        description="Image of the emergency server; empty: the fallback's image.",
    )
    model: ModelRef | None = Field(
        default=None,
        description="Model of the emergency server; empty: the fallback's model.",
        json_schema_extra={"x-kubernetes-validations": MODEL_RULES},
    )
    resources: Resources = Field(
        default_factory=_emergency_resources,
        description="CPU and memory of each emergency pod (default 2 CPU, 4 GiB).",
    )


class AutoRecoverSpec(ApiModel):
    """Opt-in: after a rollback, probe the primary again once a cool-down has passed."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.cooldown) || duration(self.cooldown) >= duration('1s')",
                    "message": "cooldown must be at least 1s",
                    "fieldPath": ".cooldown",
                }
            ]
        }
    )

    enabled: bool = Field(default=False, description="Probe back to the primary on its own.")
    cooldown: str = Field(
        default="15m",
        pattern=DURATION_PATTERN,
        max_length=32,
        description="How long after a rollback the primary is tried again (a duration).",
    )


class RollbackSpec(ApiModel):
    """Automatic rollback: previous, stable and emergency."""

    automatic: bool = Field(default=True, description="Roll back automatically on failure.")
    revision_history_limit: int = Field(
        default=10,
        ge=0,
        le=100,
        description="Revisions (ControllerRevisions) kept besides the current one for rollback "
        "to previous; independent of the Deployments' own ReplicaSet history.",
    )
    stable: StableSpec = Field(default_factory=StableSpec, description="Stable mode settings.")
    emergency: EmergencySpec = Field(
        default_factory=EmergencySpec, description="Emergency mode settings."
    )
    auto_recover: AutoRecoverSpec = Field(
        default_factory=AutoRecoverSpec,
        description="Return to the primary on its own after a cool-down (off by default: "
        "after a rollback only a new generation or a retry returns to the primary).",
    )


LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"


class LabelSelectorRequirement(ApiModel):
    """One expression of a label selector, as in meta/v1 LabelSelectorRequirement."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.operator in ['In', 'NotIn'] ? "
                    "has(self.values) && self.values.size() > 0 : "
                    "!has(self.values) || self.values.size() == 0",
                    "message": "In and NotIn need values; Exists and DoesNotExist take none",
                    "fieldPath": ".values",
                }
            ]
        }
    )

    key: str = Field(
        min_length=1, max_length=317, pattern=_QUALIFIED_NAME, description="The label key."
    )
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="In, NotIn, Exists or DoesNotExist."
    )
    values: list[Annotated[str, Field(max_length=63, pattern=LABEL_VALUE_PATTERN)]] | None = Field(
        default=None,
        max_length=16,
        description="Label values (In and NotIn only).",
    )


class LabelSelector(ApiModel):
    """A label selector, as in meta/v1 LabelSelector: every term must match; empty matches all."""

    match_labels: dict[str, Annotated[str, Field(max_length=63)]] | None = Field(
        default=None,
        description="Labels that must all be present with these values.",
        json_schema_extra={
            "maxProperties": 16,
            "x-kubernetes-validations": [
                {
                    "rule": f"self.all(k, k.matches('{_QUALIFIED_NAME}') && "
                    f"self[k].matches('{LABEL_VALUE_PATTERN}'))",
                    "message": "matchLabels: keys must be qualified names and values label "
                    "values (at most 63 letters, digits, '-', '_' or '.')",
                }
            ],
        },
    )
    match_expressions: list[LabelSelectorRequirement] | None = Field(
        default=None, max_length=16, description="Expressions that must all hold."
    )


class NetworkPeer(ApiModel):
    """Pods let in, as a NetworkPolicyPeer: pods here, every pod of namespaces, or both."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.podSelector) || has(self.namespaceSelector)",
                    "message": "a peer needs a podSelector, a namespaceSelector or both",
                }
            ]
        }
    )

    pod_selector: LabelSelector | None = Field(
        default=None,
        description="The pods, by label ({} is every pod); alone: pods of the resource's "
        "namespace.",
    )
    namespace_selector: LabelSelector | None = Field(
        default=None,
        description="Their namespaces, by label ({} is every namespace); alone: every pod of "
        "those namespaces.",
    )


class NetworkPolicySpec(ApiModel):
    """Who may connect to each component's pods: NetworkPolicies (ingress) the operator keeps."""

    enabled: bool = Field(
        default=True,
        description="Keep one NetworkPolicy per component: the primary and the fallback accept "
        "only their own router, the operator's pods and prometheusFrom; the router accepts "
        "routerFrom (anyone when empty). false deletes them.",
    )
    router_from: list[NetworkPeer] = Field(
        default_factory=list,
        max_length=16,
        description="Who may call the router (its Service is the entry point); empty: anyone, "
        "in or out of the cluster. The operator's pods and prometheusFrom are always allowed.",
    )
    prometheus_from: list[NetworkPeer] = Field(
        default_factory=list,
        max_length=16,
        description="Pods that scrape /metrics of every component (a Prometheus), e.g. "
        "{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: monitoring}}, "
        "podSelector: {matchLabels: {app.kubernetes.io/name: prometheus}}}; empty: none.",
    )


_OWN_IMAGE = "(has(self.image) && self.image != '')"


def _file_source_rule(model: str, images: str) -> dict[str, JsonValue]:
    return {
        "rule": f"!has({model}) || !{model}.source.startsWith('file://') || {images}",
        "message": "a file:/// source is read from the image, and the operator's images hold "
        "only builtin:// weights: set spec.image to an image that holds the file",
        "fieldPath": model.removeprefix("self") + ".source",
    }


class RolloutStep(ApiModel):
    """One canary step: the canary's share of primary traffic, and how long it lasts."""

    weight: int = Field(
        ge=1, le=100, description="Percent of primary-bound requests to the canary."
    )
    pause: str | None = Field(
        default=None,
        pattern=DURATION_PATTERN,
        max_length=32,
        description="How long the step lasts once judged healthy (a duration); unset: until "
        "`kubectl pizza promote`.",
    )


class RolloutGates(ApiModel):
    """What a canary step must show, canary against the stable primary."""

    max_failure_rate: float = Field(
        default=0.05, ge=0, le=1, description="The canary's failure rate over the step (0..1)."
    )
    max_p95_ratio: float = Field(
        default=1.5, ge=1, le=100, description="Canary p95 at most this times the stable p95."
    )
    min_agreement: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="Share of sampled requests both answered with the same class (0..1).",
    )
    min_requests: int = Field(
        default=10,
        ge=1,
        le=100000,
        description="Canary requests, and compared pairs, a step needs for a verdict.",
    )
    p95_slack_seconds: float = Field(
        default=0.1,
        ge=0,
        le=60,
        description="The canary's p95 fails only when it is over both maxP95Ratio times the "
        "stable p95 and the stable p95 plus this (a p95 of tens of requests is noisy).",
    )


def _default_steps() -> list[RolloutStep]:
    return [RolloutStep(weight=10, pause="30s"), RolloutStep(weight=50, pause="30s")]


class RolloutSpec(ApiModel):
    """How a new primary revision goes live."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.readyWithin) || "
                    "duration(self.readyWithin) >= duration('10s')",
                    "message": "readyWithin must be at least 10s",
                    "fieldPath": ".readyWithin",
                },
                {
                    "rule": "!has(self.every) || duration(self.every) >= duration('1s')",
                    "message": "every must be at least 1s",
                    "fieldPath": ".every",
                },
            ]
        }
    )

    strategy: Literal["Canary", "AllAtOnce"] = Field(
        default="Canary",
        description="Canary: a new primary revision runs beside the stable one and takes its "
        "steps; AllAtOnce: it replaces the stable one at once.",
    )
    steps: list[RolloutStep] = Field(
        default_factory=_default_steps,
        min_length=1,
        max_length=10,
        description="The canary's steps, in order; the last healthy one promotes.",
    )
    gates: RolloutGates = Field(default_factory=RolloutGates, description="A step's gates.")
    agreement_sample: float = Field(
        default=1.0,
        ge=0,
        le=1,
        description="Share of the canary's answers also asked of the stable primary, off the "
        "client's path, to compare the predicted classes.",
    )
    ready_within: str = Field(
        default="5m",
        pattern=DURATION_PATTERN,
        max_length=32,
        description="How long the canary may take to become ready before it is aborted.",
    )
    every: str = Field(
        default="5s",
        pattern=DURATION_PATTERN,
        max_length=32,
        description="How often a canary step is judged.",
    )
    bake_time: str = Field(
        default="5m",
        pattern=DURATION_PATTERN,
        max_length=32,
        description="After a promotion: while it runs, one failed check of the primary goes "
        "straight back to the revision the canary replaced, without a canary (0s: off).",
    )


class PizzaModelDeploymentSpec(ApiModel):
    """Desired state: a GPU primary, a CPU fallback and the router in front of them."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _file_source_rule("self.primary.model", _OWN_IMAGE),
                _file_source_rule("self.fallback.model", _OWN_IMAGE),
                _file_source_rule(
                    "self.rollback.emergency.model",
                    f"{_OWN_IMAGE} || (has(self.rollback.emergency.image) && "
                    "self.rollback.emergency.image != '')",
                ),
            ]
        }
    )

    image: str | None = Field(
        default=None,
        max_length=512,
        description="Inference server image for every component; empty lets the operator "
        "choose per component (--cpu-image for the router and onnx models, --gpu-image for "
        "the torch backends).",
    )
    primary: PrimarySpec = Field(description="The GPU primary (vision-language model).")
    fallback: FallbackSpec = Field(description="The CPU fallback (INT8 CNN).")
    router: RouterSpec = Field(default_factory=RouterSpec, description="The router.")
    analysis: AnalysisSpec = Field(
        default_factory=AnalysisSpec, description="Health analysis for automatic rollback."
    )
    rollback: RollbackSpec = Field(
        default_factory=RollbackSpec, description="Automatic rollback settings."
    )
    rollout: RolloutSpec = Field(
        default_factory=RolloutSpec, description="How a new primary revision goes live."
    )
    network_policy: NetworkPolicySpec = Field(
        default_factory=NetworkPolicySpec,
        description="Who may connect to the pods (NetworkPolicy; enforced only by a cluster "
        "with a policy engine).",
    )
    paused: bool = Field(
        default=False, description="Stop changing the children (status is still reported)."
    )


class Condition(ApiModel):
    """A condition, following the Kubernetes API conventions."""

    type: str = Field(description="Condition type: Ready, PrimaryAvailable, ...")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(description="One-word CamelCase reason.")
    message: str = Field(default="", description="Human-readable details.")
    last_transition_time: str = Field(description="When the status last changed (RFC 3339).")
    observed_generation: int | None = Field(
        default=None, description="The generation this condition was computed for."
    )


class ComponentStatus(ApiModel):
    """Replica counts of one component."""

    ready_replicas: int = Field(default=0, description="Pods that are ready.")
    replicas: int = Field(default=0, description="Pods wanted.")
    summary: str = Field(default="0/0", description="ready/desired, for kubectl get.")


Verdict = Literal["Healthy", "Failed", "Inconclusive"]


class ComponentCheck(ApiModel):
    """The last analysis check of one component, and the run it is part of."""

    time: str = Field(description="When the check ran (RFC 3339).")
    verdict: Verdict = Field(description="Healthy, Failed or Inconclusive (no data: no verdict).")
    reasons: list[str] = Field(
        default_factory=list,
        description="Why: FailureRate, LatencyP95, NoReadyPods, CrashLoopBackOff, Unschedulable, "
        "TooFewRequests, MetricsUnavailable, ScaledDown, ...",
    )
    values: dict[str, float] = Field(
        default_factory=dict,
        description="The signal values the check saw (requests, failureRate, "
        "latencyP95Seconds, ready, desired, restarts); absent: not measured.",
    )
    thresholds: dict[str, float] = Field(
        default_factory=dict, description="The limits the values were compared against."
    )
    consecutive_failures: int = Field(default=0, description="Failed checks in a row.")
    healthy_since: str | None = Field(
        default=None, description="Start of the current run of checks without a failure."
    )


class ContainerRestartsStatus(ApiModel):
    """A container's last seen restartCount and its restarts within the analysis window."""

    count: int = Field(description="restartCount at the last check.")
    times: list[str] = Field(default_factory=list, description="Restarts within the window.")


class AnalysisStatus(ApiModel):
    """What the continuous analysis saw last (written only by the analysis)."""

    source: str = Field(default="", description="prometheus or scrape.")
    checks: int = Field(default=0, description="Checks run since the resource was created.")
    inconclusive: int = Field(default=0, description="Checks without a verdict (no data).")
    primary: ComponentCheck | None = Field(default=None, description="The primary's last check.")
    fallback: ComponentCheck | None = Field(default=None, description="The fallback's last check.")
    client_error_rate: float | None = Field(
        default=None, description="Router 5xx over all router requests in the window."
    )
    client_requests: float | None = Field(
        default=None, description="Router requests in the window (health probes left out)."
    )
    fallback_reasons: dict[str, float] = Field(
        default_factory=dict, description="Requests answered by the fallback, by reason."
    )
    since: str | None = Field(
        default=None,
        description="The last mode change: the metric window never reaches back before it.",
    )
    metrics_error: str | None = Field(
        default=None,
        description="Why the metrics source gave no data at the last check (no answer, a failed "
        "query, a malformed or oversized answer); unset when it gave data.",
    )
    restarts: dict[str, ContainerRestartsStatus] = Field(
        default_factory=dict,
        description="Restart ledger: POD-UID/CONTAINER -> restarts (for the window count).",
    )


class ScalingStatus(ApiModel):
    """The autoscaler's last decision for one component."""

    wanted: int = Field(description="Pods wanted now (what the Deployment is given).")
    reason: str = Field(description="Why, in words: the load, the window, idle, woken...")
    time: str = Field(description="When the count last changed (RFC 3339).")
    in_flight: float | None = Field(
        default=None, description="Requests in flight to it at the last look (all routers)."
    )
    last_demand: str | None = Field(
        default=None, description="Primary: the last time a request was meant for it."
    )
    asleep: bool = Field(
        default=False, description="Primary: scaled to zero for idleness; the fallback answers."
    )


class AutoscalingStatus(ApiModel):
    """What the autoscaler decided, per component it scales."""

    primary: ScalingStatus | None = Field(default=None, description="The primary's scaling.")
    fallback: ScalingStatus | None = Field(default=None, description="The fallback's scaling.")


class LastRollback(ApiModel):
    """The last step of the rollback ladder."""

    number: int = Field(description="Rollbacks of this resource so far (this is the Nth).")
    from_mode: Mode = Field(alias="from", description="The mode before the step.")
    to: Mode = Field(description="The mode after the step.")
    reason: str = Field(description="PrimaryFailed, PrimaryFailedNewRevision, FallbackFailed...")
    message: str = Field(default="", description="The failing signals in words.")
    values: dict[str, float] = Field(
        default_factory=dict, description="The signal values that failed the last check."
    )
    time: str = Field(description="When the step was taken (RFC 3339).")
    generation: int = Field(description="The spec generation rolled back from.")
    revision: str | None = Field(
        default=None, description="With to=previous: the ControllerRevision now served."
    )
    retry_token: str | None = Field(
        default=None, description="The pizza.ai/retry annotation when the step was taken."
    )


class CanarySignals(ApiModel):
    """The current step so far, canary against stable (from the routers' counters)."""

    canary_requests: float = Field(default=0, description="Requests sent to the canary.")
    canary_failures: float = Field(default=0, description="Of those, not answered.")
    canary_p95: float | None = Field(default=None, description="The canary's p95 (seconds).")
    stable_p95: float | None = Field(
        default=None, description="The stable primary's p95 (seconds)."
    )
    pairs: float = Field(default=0, description="Sampled requests answered by both.")
    agreed: float = Field(default=0, description="Of those, with the same class.")
    agreement: float | None = Field(default=None, description="agreed / pairs.")


class RolloutStatus(ApiModel):
    """The canary of a new primary revision."""

    phase: Literal["Progressing", "Paused", "Promoted", "Aborted"] = Field(
        description="Progressing, Paused (no verdict: no data), Promoted or Aborted."
    )
    revision: str = Field(description="The canary's ControllerRevision.")
    stable_revision: str = Field(description="The stable primary's ControllerRevision.")
    step: int = Field(
        default=0, description="The current step (0-based index of spec.rollout.steps)."
    )
    canary_weight: int = Field(
        default=0, description="Percent of primary-bound requests the canary gets now."
    )
    plan: Literal["Surge", "Borrow"] = Field(
        default="Surge",
        description="Surge: the canary runs beside the stable primary; Borrow: a stable pod "
        "gives its GPUs to the canary (no GPU free).",
    )
    plan_reason: str = Field(default="", description="Why that plan.")
    reason: str = Field(default="", description="The last verdict or transition in words.")
    started_at: str = Field(description="When the rollout began (RFC 3339).")
    step_started_at: str = Field(description="When the current step began (RFC 3339).")
    finished_at: str | None = Field(default=None, description="Promoted or aborted at.")
    handed_over: bool = Field(
        default=False,
        description="Promoted and the primary Deployment runs the revision: the canary goes.",
    )
    request: str | None = Field(
        default=None, description="The last pizza.ai/promote or pizza.ai/abort token handled."
    )
    signals: CanarySignals | None = Field(default=None, description="The step so far.")


class PizzaModelDeploymentStatus(ApiModel):
    """Observed state, written by the operator."""

    observed_generation: int | None = Field(
        default=None, description="The spec generation the status describes."
    )
    mode: Mode | None = Field(
        default=None,
        description="Serving mode: primary (GPU model first), previous (the last known-good "
        "revision), stable (CNN only) or emergency (a minimal server).",
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, PrimaryAvailable, FallbackAvailable, Progressing, Degraded.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    primary: ComponentStatus | None = Field(default=None, description="The primary's replicas.")
    fallback: ComponentStatus | None = Field(default=None, description="The fallback's replicas.")
    router: ComponentStatus | None = Field(default=None, description="The router's replicas.")
    error_rate: float | None = Field(
        default=None,
        description="The primary's failure rate (0..1) as the router saw it in the last "
        "analysis window; unset when the window had no verdict.",
    )
    analysis: AnalysisStatus | None = Field(default=None, description="The last analysis.")
    autoscaling: AutoscalingStatus | None = Field(
        default=None, description="The autoscaler's decisions (components with autoscaling)."
    )
    last_rollback: LastRollback | None = Field(
        default=None, description="The last rollback step taken (or suppressed)."
    )
    current_revision: str | None = Field(
        default=None, description="The ControllerRevision of the current spec."
    )
    rollback_request: str | None = Field(
        default=None,
        description="The last pizza.ai/rollback annotation handled (taken or refused).",
    )
    revision_outcomes: dict[str, RevisionOutcome] = Field(
        default_factory=dict,
        description="Outcome of each ControllerRevision of the history: Good once it ran healthy "
        "for a whole analysis window, Failed once rolled back from (a Good one stays Good). "
        "Kept here because a ControllerRevision's data is immutable.",
    )
    serving_revision: str | None = Field(
        default=None,
        description="The ControllerRevision the children are built from (differs from "
        "currentRevision in mode previous).",
    )
    rollout: RolloutStatus | None = Field(
        default=None, description="The canary of the last new primary revision."
    )


class ObjectMeta(ApiModel):
    """The part of metadata the operator reads."""

    name: str
    namespace: str = "default"
    uid: str = ""
    generation: int = 0
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    resource_version: str = ""
    deletion_timestamp: str | None = None


class PizzaModelDeployment(ApiModel):
    """A PizzaModelDeployment as read from the API server."""

    api_version: str = f"{GROUP}/{VERSION}"
    kind: str = KIND
    metadata: ObjectMeta
    spec: PizzaModelDeploymentSpec
    status: PizzaModelDeploymentStatus = Field(default_factory=PizzaModelDeploymentStatus)

    @classmethod
    def from_body(cls, body: Any) -> PizzaModelDeployment:
        """Parse a body (a dict or kopf Body) into the typed model."""
        plain = _plain(body)
        return cls.model_validate(
            {
                "apiVersion": plain.get("apiVersion", f"{GROUP}/{VERSION}"),
                "kind": plain.get("kind", KIND),
                "metadata": plain.get("metadata") or {},
                "spec": plain.get("spec") or {},
                "status": plain.get("status") or {},
            }
        )


def _plain(value: Any) -> Any:
    """Deep-copy mappings and sequences (kopf bodies are read-only views) into dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value

"""The pod template of a cargo, checked the way Kubernetes checks a PodTemplateSpec.

One schema, :data:`POD_TEMPLATE_SCHEMA`, in OpenAPI v3 form: the CRDs carry it verbatim under
``spec.template`` (Cargo) and ``spec.template.template`` (MiniCluster), so ``kubectl apply``
rejects a malformed template, and :func:`template_errors` interprets the same schema for the
API and the operator (which also sees objects written before the schema existed). Objects
marked ``x-kubernetes-preserve-unknown-fields`` keep fields the schema does not list; every
listed field is typed.

Beyond the structure, Crane owns each container's accelerator resources (``nvidia.com/gpu``
and any other GPU or accelerator resource, and resource claims): a template that asks for
them is rejected, since Crane sets them from ``gpusPerReplica``; so is any other way to GPUs or
to another tenant's: env or ``envFrom`` that could set ``NVIDIA_VISIBLE_DEVICES``, a mount where
the NVIDIA runtime reads GPU requests, annotations that inject devices (CDI, NRI), a critical
priority (a kubelet evicts others for it).

Pure: no Kubernetes, Docker, FastAPI or SQL imports.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MASTER_PORT_ANNOTATION = "crane.io/master-port"
ULIMITS_ANNOTATION = "crane.io/ulimits"
"""Docker mode's ulimits of a replica (``nofile=1024:4096,memlock=-1``)."""
ULIMIT_NAMES = frozenset(
    {
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    }
)
"""The ulimits Docker knows (``RLIMIT_*`` without the prefix, lower case)."""
TEMPLATE_ANNOTATIONS = frozenset({MASTER_PORT_ANNOTATION, ULIMITS_ANNOTATION})
"""The ``crane.io/`` keys a template may set; every other one is Crane's own bookkeeping (which
cargo and replica a pod is, its GPUs, a notice, the rendezvous store) and refused."""

_STR: dict[str, Any] = {"type": "string"}
_INT: dict[str, Any] = {"type": "integer"}
_BOOL: dict[str, Any] = {"type": "boolean"}
_QUANTITY: dict[str, Any] = {"x-kubernetes-int-or-string": True}
_OPEN: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
_STR_MAP: dict[str, Any] = {"type": "object", "additionalProperties": _STR}
_STR_LIST: dict[str, Any] = {"type": "array", "items": _STR}


def _obj(
    required: Sequence[str] = (), open_: bool = True, **props: dict[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = list(required)
    if open_:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def _list(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _doc(schema: dict[str, Any], text: str) -> dict[str, Any]:
    """``schema`` with a description (shown by ``kubectl explain``)."""
    return {**schema, "description": text}


_ENV_VAR = _obj(("name",), open_=False, name=_STR, value=_STR, valueFrom=_OPEN)
_RESOURCES = _obj(
    open_=False,
    limits={"type": "object", "additionalProperties": _QUANTITY},
    requests={"type": "object", "additionalProperties": _QUANTITY},
    claims=_list(_obj(("name",), name=_STR)),
)
_CAPABILITIES = _obj(open_=False, add=_STR_LIST, drop=_STR_LIST)
_SECCOMP = _obj(type=_STR, localhostProfile=_STR)
_APPARMOR = _obj(type=_STR, localhostProfile=_STR)
_SELINUX = _obj(open_=False, user=_STR, role=_STR, type=_STR, level=_STR)
_WINDOWS = _obj(hostProcess=_BOOL)
_CONTAINER_SECURITY = _obj(
    privileged=_BOOL,
    allowPrivilegeEscalation=_BOOL,
    capabilities=_CAPABILITIES,
    procMount=_STR,
    readOnlyRootFilesystem=_BOOL,
    runAsNonRoot=_BOOL,
    runAsUser=_INT,
    runAsGroup=_INT,
    seLinuxOptions=_SELINUX,
    seccompProfile=_SECCOMP,
    appArmorProfile=_APPARMOR,
    windowsOptions=_WINDOWS,
)
_PORT = _obj(
    ("containerPort",), containerPort=_INT, hostPort=_INT, hostIP=_STR, name=_STR, protocol=_STR
)
_CONTAINER = _obj(
    ("name",),
    name=_STR,
    image=_STR,
    command=_STR_LIST,
    args=_STR_LIST,
    workingDir=_STR,
    env=_doc(
        _list(_ENV_VAR), "Environment variables; Crane adds CRANE_*, RANK, WORLD_SIZE, MASTER_*."
    ),
    envFrom=_list(_OPEN),
    ports=_list(_PORT),
    resources=_doc(
        _RESOURCES,
        "CPU, memory and other resources. GPUs and other accelerators are Crane's to set "
        "(from gpusPerReplica): a template that names them is refused.",
    ),
    volumeMounts=_list(_obj(("name", "mountPath"), name=_STR, mountPath=_STR, readOnly=_BOOL)),
    securityContext=_doc(
        _CONTAINER_SECURITY, "Checked against the namespace's Pod Security level (baseline)."
    ),
    imagePullPolicy=_STR,
    restartPolicy=_STR,
    livenessProbe=_OPEN,
    readinessProbe=_OPEN,
    startupProbe=_OPEN,
    lifecycle=_OPEN,
    stdin=_BOOL,
    tty=_BOOL,
)
_POD_SECURITY = _obj(
    runAsNonRoot=_BOOL,
    runAsUser=_INT,
    runAsGroup=_INT,
    fsGroup=_INT,
    supplementalGroups=_list(_INT),
    sysctls=_list(_obj(("name", "value"), open_=False, name=_STR, value=_STR)),
    seLinuxOptions=_SELINUX,
    seccompProfile=_SECCOMP,
    appArmorProfile=_APPARMOR,
    windowsOptions=_WINDOWS,
)
_TOLERATION = _obj(
    open_=False,
    key=_STR,
    operator=_STR,
    value=_STR,
    effect=_STR,
    tolerationSeconds=_INT,
)
_VOLUME = _obj(("name",), name=_STR, hostPath=_obj(("path",), path=_STR, type=_STR))
_POD_SPEC = _obj(
    ("containers",),
    containers=_doc(_list(_CONTAINER), "The replica's containers (at least one)."),
    initContainers=_list(_CONTAINER),
    ephemeralContainers=_list(_CONTAINER),
    volumes=_doc(_list(_VOLUME), "Volumes; hostPath only at the privileged level."),
    securityContext=_POD_SECURITY,
    tolerations=_doc(_list(_TOLERATION), "Crane adds the toleration of crane.io/managed."),
    nodeSelector=_STR_MAP,
    affinity=_OPEN,
    hostNetwork=_BOOL,
    hostPID=_BOOL,
    hostIPC=_BOOL,
    hostUsers=_BOOL,
    shareProcessNamespace=_BOOL,
    serviceAccountName=_STR,
    automountServiceAccountToken=_BOOL,
    terminationGracePeriodSeconds=_INT,
    activeDeadlineSeconds=_INT,
    priorityClassName=_STR,
    imagePullSecrets=_list(_obj(name=_STR)),
    resourceClaims=_list(_OPEN),
    dnsPolicy=_STR,
    schedulerName=_STR,
    runtimeClassName=_STR,
)
_METADATA = _obj(labels=_STR_MAP, annotations=_STR_MAP, name=_STR, generateName=_STR)

POD_TEMPLATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A pod template (metadata + spec) for each replica, as in a Deployment. "
    "Crane sets nodeName, restartPolicy, hostname, GPU resources and rendezvous env.",
    "properties": {"metadata": _METADATA, "spec": _POD_SPEC},
}
"""The PodTemplateSpec subset the CRDs carry (structural; open where Kubernetes is richer)."""

MAX_TERMINATION_GRACE_SECONDS = 3600
"""Largest ``terminationGracePeriodSeconds`` a template may ask for (one hour)."""


@dataclass(frozen=True)
class FieldIssue:
    """One problem in a template: the field path (``spec.containers[1].env``) and the fix."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


_TYPE_NAMES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


MAX_TEMPLATE_DEPTH = 64
"""Deepest nesting of objects and arrays a template may have: a real PodTemplateSpec nests a
dozen levels; far deeper input only costs the server (and past ~250 it cannot be stored)."""


def nesting_issue(value: Any, limit: int = MAX_TEMPLATE_DEPTH) -> FieldIssue | None:
    """An issue naming the first path nested deeper than ``limit`` objects and arrays, if any."""
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        item, path, depth = stack.pop()
        if not isinstance(item, dict | list):
            continue
        if depth > limit:
            return FieldIssue(path, f"nests deeper than {limit} levels: flatten it")
        pairs = item.items() if isinstance(item, dict) else enumerate(item)
        for key, child in pairs:
            where = f"{path}[{key}]" if isinstance(item, list) else _join(path, str(key))
            stack.append((child, where, depth + 1))
    return None


def check_schema(value: Any, schema: Mapping[str, Any], path: str = "") -> list[FieldIssue]:
    """Issues of ``value`` against a structural OpenAPI v3 ``schema`` (types, required fields)."""
    if schema.get("x-kubernetes-int-or-string"):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            return [FieldIssue(path, f"must be an integer or a string, not {_type_name(value)}")]
        return []
    want = schema.get("type")
    ok = {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "boolean": isinstance(value, bool),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        None: True,
    }[want]
    if not ok:
        return [FieldIssue(path, f"must be of type {want}, not {_type_name(value)}")]
    issues: list[FieldIssue] = []
    if want == "array":
        items = schema.get("items", {})
        for i, item in enumerate(value):
            issues += check_schema(item, items, f"{path}[{i}]")
    elif want == "object":
        props: Mapping[str, Any] = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for name in schema.get("required", ()):
            if name not in value:
                issues.append(FieldIssue(_join(path, name), "is required"))
        for key, item in value.items():
            if key in props:
                issues += check_schema(item, props[key], _join(path, str(key)))
            elif isinstance(extra, Mapping):
                issues += check_schema(item, extra, _join(path, str(key)))
            elif props and not schema.get("x-kubernetes-preserve-unknown-fields"):
                issues.append(FieldIssue(_join(path, str(key)), "unknown field"))
    return issues


_ACCELERATOR_DOMAINS = ("nvidia.com", "amd.com", "gpu.intel.com", "habana.ai")


def is_accelerator_resource(name: str) -> bool:
    """Whether a resource name is a GPU or accelerator (Crane's to set, never a template's)."""
    domain, _, resource = name.lower().rpartition("/")
    return (
        "gpu" in resource
        or domain in _ACCELERATOR_DOMAINS
        or domain.endswith((".nvidia.com", ".amd.com"))
        or resource.startswith(("tpu", "neuron"))
    )


def containers_of(spec: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every container of a pod spec as (field path, container): init, main and ephemeral."""
    out: list[tuple[str, dict[str, Any]]] = []
    for field in ("initContainers", "containers", "ephemeralContainers"):
        items = spec.get(field)
        if isinstance(items, list):
            out += [(f"spec.{field}[{i}]", c) for i, c in enumerate(items) if isinstance(c, dict)]
    return out


DEVICE_ENV = frozenset({"NVIDIA_VISIBLE_DEVICES", "AMD_VISIBLE_DEVICES", "HABANA_VISIBLE_DEVICES"})
"""Env the GPU container runtimes read to expose devices (``NVIDIA_VISIBLE_DEVICES=all`` gives a
container every GPU of its node, whatever it asked for): Crane's to set, never a template's."""

DEVICE_MOUNT_ROOTS = ("/var/run/nvidia-container-devices", "/run/nvidia-container-devices")
"""Where the NVIDIA runtime reads a container's GPUs from its mounts (the volume-mount device
list, the setting that stops pods choosing GPUs by env): a template's mount there asks for GPUs
(``.../all``: every GPU of the node)."""

DEVICE_ANNOTATION_PREFIXES = ("cdi.k8s.io/", "cdi-devices.nri.io", "devices.noderesource.dev")
"""Pod annotations with which a container runtime (CDI) or an NRI device-injector plugin adds
devices to a container, the node's GPUs included: Crane's to ask, never a template's."""

SYSTEM_CRITICAL_PRIORITY = 2_000_000_000
"""The priority from which Kubernetes treats a pod as critical: a kubelet admits a critical pod
that does not fit by evicting the node's other pods (``system-*`` priority classes carry it)."""

CRANE_ENV = frozenset(
    {
        "CRANE_MINICLUSTER",
        "CRANE_CARGO",
        "CRANE_TENANT",
        "CRANE_REPLICA",
        "CRANE_REPLICAS",
        "RANK",
        "WORLD_SIZE",
        "MASTER_ADDR",
        "MASTER_PORT",
        "CRANE_GPU_IDS",
        "CRANE_NOTICE_FILE",
        "CRANE_RDZV_ENDPOINT",
        "CRANE_RDZV_ID",
        "CRANE_RDZV_BACKEND",
        "CRANE_NNODES",
        "TORCH_DISABLE_SHARE_RDZV_TCP_STORE",
    }
)
"""Env Crane sets in every replica (its gang, its MiniCluster's world: crane/model/world.py;
``CRANE_TENANT`` in Docker mode): Crane's value would replace a template's without a word, so
a template may not set them (``CRANE_CHECKPOINT`` and other names of the user's own are fine)."""

NO_DEVICES = "void"
"""The value of ``NVIDIA_VISIBLE_DEVICES`` that exposes no GPU (set on containers without any)."""


def crane_env_issue(name: str) -> str:
    """Why a template may not set ``name``, one of :data:`CRANE_ENV`."""
    hint = (
        f"; to pick the port on Kubernetes, set the annotation {MASTER_PORT_ANNOTATION}"
        if name == "MASTER_PORT"
        else ""
    )
    return (
        f"{name} is Crane's: it sets {name} in every replica (its gang and its MiniCluster's "
        f"world), which would replace yours; remove it, or give your value another name{hint}"
    )


def _accelerators(spec: Mapping[str, Any]) -> list[FieldIssue]:
    issues: list[FieldIssue] = []
    for path, container in containers_of(spec):
        env = container.get("env")
        for i, var in enumerate(env if isinstance(env, list) else []):
            if isinstance(var, dict) and var.get("name") in CRANE_ENV:
                issues.append(FieldIssue(f"{path}.env[{i}]", crane_env_issue(var["name"])))
            if isinstance(var, dict) and var.get("name") in DEVICE_ENV:
                issues.append(
                    FieldIssue(
                        f"{path}.env[{i}]",
                        f"{var['name']} makes the container runtime expose GPUs Crane did not "
                        "assign: remove it and set gpusPerReplica",
                    )
                )
        resources = container.get("resources")
        if not isinstance(resources, dict):
            continue
        for kind in ("limits", "requests"):
            values = resources.get(kind)
            if isinstance(values, dict):
                issues += [
                    FieldIssue(
                        f"{path}.resources.{kind}[{name}]",
                        "GPUs are Crane's to assign: remove it and set gpusPerReplica",
                    )
                    for name in values
                    if is_accelerator_resource(str(name))
                ]
        if resources.get("claims"):
            issues.append(
                FieldIssue(
                    f"{path}.resources.claims",
                    "resource claims are Crane's to assign: remove them and set gpusPerReplica",
                )
            )
    issues += _device_env_from(spec) + _device_mounts(spec) + _critical_priority(spec)
    if spec.get("resourceClaims"):
        issues.append(
            FieldIssue(
                "spec.resourceClaims",
                "resource claims are Crane's to assign: remove them and set gpusPerReplica",
            )
        )
    return issues


def _device_env_from(spec: Mapping[str, Any]) -> list[FieldIssue]:
    """``envFrom`` entries whose ConfigMap or Secret could set a :data:`DEVICE_ENV` variable: no
    prefix, or one such a name starts with. Kubernetes passes them after the device plugin's
    values, so ``NVIDIA_VISIBLE_DEVICES=all`` from a ConfigMap would win over Crane's GPUs."""
    issues: list[FieldIssue] = []
    for path, container in containers_of(spec):
        sources = container.get("envFrom")
        for i, source in enumerate(sources if isinstance(sources, list) else []):
            prefix = source.get("prefix") if isinstance(source, dict) else None
            prefix = prefix if isinstance(prefix, str) else ""
            if any(name.startswith(prefix) for name in DEVICE_ENV):
                issues.append(
                    FieldIssue(
                        f"{path}.envFrom[{i}]",
                        f"a key of it could set {', '.join(sorted(DEVICE_ENV))}, which make the "
                        "container runtime expose GPUs Crane did not assign: give it a prefix "
                        "those names do not start with (such as APP_)",
                    )
                )
    return issues


def device_mount_issue(mount_path: str) -> str | None:
    """Why a container may not mount anything at ``mount_path``, if it may not: under
    :data:`DEVICE_MOUNT_ROOTS` the NVIDIA runtime reads the mount as a request for GPUs."""
    clean = posixpath.normpath("/" + mount_path.lstrip("/"))
    if clean.startswith(DEVICE_MOUNT_ROOTS):
        return (
            "the NVIDIA container runtime reads a mount there as a request for GPUs Crane did "
            "not assign: mount it elsewhere and set gpusPerReplica"
        )
    return None


def _device_mounts(spec: Mapping[str, Any]) -> list[FieldIssue]:
    issues: list[FieldIssue] = []
    for path, container in containers_of(spec):
        mounts = container.get("volumeMounts")
        for i, mount in enumerate(mounts if isinstance(mounts, list) else []):
            target = mount.get("mountPath") if isinstance(mount, dict) else None
            problem = device_mount_issue(target) if isinstance(target, str) else None
            if problem is not None:
                issues.append(FieldIssue(f"{path}.volumeMounts[{i}].mountPath", problem))
    return issues


def _critical_priority(spec: Mapping[str, Any]) -> list[FieldIssue]:
    """A critical priority: Crane binds pods to their nodes (no scheduler preempts for them), but
    the kubelet admits a critical pod that does not fit by evicting the node's other pods, the
    replicas of other tenants on GPUs Crane gave them."""
    issues: list[FieldIssue] = []
    name = spec.get("priorityClassName")
    if isinstance(name, str) and name.startswith("system-"):
        issues.append(
            FieldIssue(
                "spec.priorityClassName",
                f"{name} is a critical priority: the kubelet would evict other tenants' pods "
                "to admit it; use a class of your own (Crane orders work by the MiniCluster's "
                "priority)",
            )
        )
    value = spec.get("priority")
    if isinstance(value, int) and value >= SYSTEM_CRITICAL_PRIORITY:
        issues.append(
            FieldIssue(
                "spec.priority",
                f"{SYSTEM_CRITICAL_PRIORITY} and up is a critical priority: the kubelet would "
                "evict other tenants' pods to admit it; leave it to the priority class",
            )
        )
    return issues


def parse_ulimits(text: str) -> tuple[tuple[str, int, int], ...]:
    """The ``crane.io/ulimits`` annotation (``nofile=1024:4096,memlock=-1``) as (name, soft,
    hard) triples; -1 is unlimited. ValueError naming the item for anything Docker would refuse
    when it creates the container: an unknown name, a number past int64."""
    out = []
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = item.partition("=")
        soft, _, hard = value.partition(":")
        try:
            limits = int(soft), int(hard or soft)
            if name not in ULIMIT_NAMES or not all(-1 <= n < 2**63 for n in limits):
                raise ValueError(item)
        except ValueError:
            raise ValueError(
                f"annotation {ULIMITS_ANNOTATION}: {item!r} is not name=soft[:hard] with a name "
                f"of {', '.join(sorted(ULIMIT_NAMES))}"
            ) from None
        out.append((name, *limits))
    return tuple(out)


def env_name_issue(name: str) -> str | None:
    """Why ``name`` cannot name an environment variable, if it cannot: Kubernetes takes any
    printable ASCII but ``=`` (a Docker container given ``A=B`` would set ``A`` instead)."""
    if not name:
        return "must not be empty"
    bad = next((c for c in name if c == "=" or not " " <= c <= "~"), None)
    if bad is not None:
        return f"{name[:40]!r} has {bad!r}: use printable ASCII without '='"
    return None


def _env_names(spec: Mapping[str, Any]) -> list[FieldIssue]:
    issues: list[FieldIssue] = []
    for path, container in containers_of(spec):
        env = container.get("env")
        for i, var in enumerate(env if isinstance(env, list) else []):
            name = var.get("name") if isinstance(var, dict) else None
            problem = env_name_issue(name) if isinstance(name, str) else None
            if problem is not None:
                issues.append(FieldIssue(f"{path}.env[{i}].name", problem))
    return issues


def _own_keys(metadata: Mapping[str, Any]) -> list[FieldIssue]:
    """``crane.io/`` labels and annotations are Crane's: one set by a template would pass a pod
    off as another replica, or mark it as the rendezvous store, or post a notice."""
    issues = []
    for kind in ("labels", "annotations"):
        allowed = TEMPLATE_ANNOTATIONS if kind == "annotations" else frozenset()
        for key in metadata.get(kind) or {}:
            if str(key).startswith("crane.io/") and key not in allowed:
                issues.append(
                    FieldIssue(
                        f"metadata.{kind}[{key}]",
                        "is Crane's own: Crane sets crane.io/ keys itself (a template may set "
                        f"only the annotations {', '.join(sorted(TEMPLATE_ANNOTATIONS))})",
                    )
                )
    return issues


def _semantics(template: Mapping[str, Any], require_containers: bool) -> list[FieldIssue]:
    spec = template.get("spec") or {}
    issues: list[FieldIssue] = []
    containers = spec.get("containers") or []
    if not containers and require_containers:
        issues.append(
            FieldIssue("spec.containers", "is empty: give the pod template at least one container")
        )
    for path, container in containers_of(spec):
        if not container.get("image") and not path.startswith("spec.ephemeral"):
            issues.append(FieldIssue(f"{path}.image", "is required"))
    issues += _env_names(spec)
    names = [c.get("name") for _, c in containers_of(spec)]
    for name in {n for n in names if names.count(n) > 1}:
        issues.append(FieldIssue("spec.containers", f"container name {name!r} is used twice"))
    grace = spec.get("terminationGracePeriodSeconds")
    if isinstance(grace, int) and not 0 <= grace <= MAX_TERMINATION_GRACE_SECONDS:
        issues.append(
            FieldIssue(
                "spec.terminationGracePeriodSeconds",
                f"must be between 0 and {MAX_TERMINATION_GRACE_SECONDS}",
            )
        )
    metadata = template.get("metadata") or {}
    issues += _own_keys(metadata)
    for key in metadata.get("annotations") or {}:
        if str(key).startswith(DEVICE_ANNOTATION_PREFIXES):
            issues.append(
                FieldIssue(
                    f"metadata.annotations[{key}]",
                    "asks the container runtime for devices (GPUs included) Crane did not "
                    "assign: remove it and set gpusPerReplica",
                )
            )
    annotations = metadata.get("annotations") or {}
    port = annotations.get(MASTER_PORT_ANNOTATION)
    if port is not None and not (str(port).isdigit() and 1 <= int(str(port)) <= 65535):
        issues.append(
            FieldIssue(
                f"metadata.annotations[{MASTER_PORT_ANNOTATION}]",
                "must be a port number (1-65535)",
            )
        )
    return issues + _accelerators(spec)


def template_errors(template: Any, require_containers: bool = True) -> list[FieldIssue]:
    """Every problem of a pod template, each naming its field path (relative to the template).

    Empty when the template can make a pod: the PodTemplateSpec structure, at least one
    container with a name and an image (unless ``require_containers`` is False), no
    accelerator resources of its own.
    """
    too_deep = nesting_issue(template)
    if too_deep is not None:
        return [too_deep]
    structural = check_schema(template, POD_TEMPLATE_SCHEMA)
    if structural:
        return structural
    return _semantics(template, require_containers)

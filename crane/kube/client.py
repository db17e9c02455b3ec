"""A thin, dict-in dict-out wrapper of the Kubernetes client for what Crane writes and lists."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import quote

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from crane.kube.dra import (
    RESOURCE_GROUP,
    RESOURCE_VERSION,
    RESOURCECLAIMS,
    RESOURCESLICES,
)
from crane.kube.names import (
    CARGO_KIND,
    CARGOS,
    FINALIZER,
    GROUP,
    MINICLUSTER_KIND,
    MINICLUSTER_LABEL,
    MINICLUSTERS,
    VERSION,
)
from crane.model.refusal import refusal_reason

KINDS = {CARGOS: CARGO_KIND, MINICLUSTERS: MINICLUSTER_KIND}


def load_config(kubeconfig: str | None = None, pool_size: int = 32) -> client.ApiClient:
    """An API client from a kubeconfig file, else the in-cluster service account."""
    cfg = client.Configuration()
    try:
        config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    except config.ConfigException:
        config.load_incluster_config(client_configuration=cfg)
    cfg.connection_pool_maxsize = pool_size
    return client.ApiClient(cfg)


def _ok_if(status: int, err: ApiException) -> None:
    if err.status != status:
        raise err


def refusal(err: ApiException) -> tuple[str, str] | None:
    """(reason, the API server's message) when it refused an object for good
    (:func:`crane.model.refusal.refusal_reason`); None for a refusal that may pass later."""
    try:
        message = str(json.loads(err.body or "{}").get("message") or "")
    except (ValueError, AttributeError):
        message = ""
    message = message or str(err.body or err.reason or err.status)
    reason = refusal_reason(err.status, message)
    return None if reason is None else (reason, message)


def drained(resp: Any) -> Any:
    """Read a raw (``_preload_content=False``) answer to its end, so that its connection goes
    back to the pool: an unread answer keeps its connection, and the next call opens a new
    one (a TLS handshake that costs both sides more CPU than the write itself)."""
    resp.read()
    resp.release_conn()
    return resp


def _core(namespace: str, plural: str, name: str = "") -> str:
    """The path of a core/v1 object (or of its collection, without ``name``)."""
    return f"/api/v1/namespaces/{quote(namespace)}/{plural}" + (f"/{quote(name)}" if name else "")


def _custom(group: str, version: str, namespace: str, plural: str, name: str = "") -> str:
    """The path of a namespaced custom object (or of its collection, without ``name``)."""
    base = f"/apis/{group}/{version}/namespaces/{quote(namespace)}/{plural}"
    return base + (f"/{quote(name)}" if name else "")


_FENCE = threading.local()
"""The fence of the write this thread is making (:func:`fenced`), if any."""


class Fenced(RuntimeError):
    """A write not sent: its fence (the leader lease) said no just before it went out."""


@contextlib.contextmanager
def fenced(fence: Callable[[], bool] | None) -> Iterator[None]:
    """Within this block, every write this thread sends through a :class:`KubeClient` asks
    ``fence`` first, just before its request goes out, and raises :class:`Fenced` instead of
    sending when it says no: a process paused (SIGSTOP) after its caller's check and resumed
    after another instance took the lease over must not send what it prepared before."""
    before = getattr(_FENCE, "check", None)
    _FENCE.check = fence
    try:
        yield
    finally:
        _FENCE.check = before


def _check_fence() -> None:
    """Raise :class:`Fenced` when this thread makes a fenced write whose fence says no."""
    check = getattr(_FENCE, "check", None)
    if check is not None and not check():
        raise Fenced("write not sent: the leader lease may have lapsed")


class _FencedHTTPConnection(urllib3.connection.HTTPConnection):
    """Asks the thread's fence once connected, just before the request's bytes go out."""

    def send(self, data: Any) -> None:
        if self.sock is None:
            self.connect()
        _check_fence()
        super().send(data)


class _FencedHTTPSConnection(urllib3.connection.HTTPSConnection):
    """:class:`_FencedHTTPConnection` over TLS."""

    def send(self, data: Any) -> None:
        if self.sock is None:
            self.connect()
        _check_fence()
        super().send(data)


class _FencedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _FencedHTTPConnection


class _FencedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _FencedHTTPSConnection


def _fence_writes(api: client.ApiClient) -> None:
    """Make ``api`` ask the thread's fence (:func:`fenced`) before it sends any write: once
    its connection is made (a TLS handshake takes a while, and a process may be paused in
    it), just before the request goes out."""
    rest: Any = api.rest_client
    manager = rest.pool_manager
    if getattr(manager, "crane_fenced", False):
        return
    manager.pool_classes_by_scheme = {"http": _FencedHTTPPool, "https": _FencedHTTPSPool}
    manager.crane_fenced = True


class KubeClient:
    """The operator's API calls, one call each; 404 on delete and 409 on create are fine.

    Every call but a watch is bounded by :attr:`timeout`: an API server that takes the
    connection and never answers must not hold a pass for ever."""

    timeout: tuple[float, float] = (10.0, 60.0)
    """Seconds to connect, then the longest silence between reads of an answer."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        _fence_writes(api)
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.coordination = client.CoordinationV1Api(api)
        self.apps = client.AppsV1Api(api)

    def _json(self, resp: Any) -> Any:
        return json.loads(resp.data)

    def _send(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        query: list[tuple[str, Any]] | None = None,
    ) -> Any:
        """One write with a plain JSON body, read to its end; raises ApiException on an error
        answer, as the generated calls do. It skips what those calls add per request: turning
        a pod or Service dict into the client's pydantic model and back (``validate_call``),
        about a tenth of the operator's CPU in a burst of placements."""
        headers = {"Accept": "application/json", "Content-Type": content_type}
        method, url, headers, _, _ = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query,
            header_params=headers,
            auth_settings=["BearerToken"],
        )
        resp = self.api.call_api(
            method, url, header_params=headers, body=body, _request_timeout=self.timeout
        )
        resp.read()
        if not 200 <= resp.status <= 299:
            raise ApiException.from_response(http_resp=resp, body=None, data=None)
        return resp

    def _list_call(self, kind: str) -> Callable[..., Any]:
        """The list (and watch) call of ``kind``."""
        if kind in (RESOURCESLICES, RESOURCECLAIMS):
            return partial(
                self.custom.list_cluster_custom_object, RESOURCE_GROUP, RESOURCE_VERSION, kind
            )
        calls: dict[str, Callable[..., Any]] = {
            "nodes": self.core.list_node,
            "pods": self.core.list_pod_for_all_namespaces,
            "resourcequotas": self.core.list_resource_quota_for_all_namespaces,
            "namespaces": self.core.list_namespace,
            # only the Services Crane makes (a MiniCluster's headless and rendezvous ones)
            "services": partial(
                self.core.list_service_for_all_namespaces, label_selector=MINICLUSTER_LABEL
            ),
        }
        return calls.get(kind) or partial(
            self.custom.list_cluster_custom_object, GROUP, VERSION, kind
        )

    def list_items(self, kind: str) -> list[dict[str, Any]]:
        """All ``nodes``, ``pods``, ``resourcequotas``, ``namespaces``, ``services`` (Crane's,
        labelled ``crane.io/minicluster``), ``tenantshares``,
        ``miniclusters``, ``cargos``, ``resourceslices`` or ``resourceclaims`` (none where the
        API server does not serve ``resource.k8s.io/v1``)."""
        return self.list_versioned(kind)[0]

    def list_versioned(self, kind: str) -> tuple[list[dict[str, Any]], str | None]:
        """:meth:`list_items` and the list's resourceVersion, to watch from (None when the
        API server does not serve the kind)."""
        try:
            call = self._list_call(kind)
            body = self._json(call(_preload_content=False, _request_timeout=self.timeout))
        except ApiException as err:
            if kind not in (RESOURCESLICES, RESOURCECLAIMS):
                raise
            _ok_if(404, err)
            return [], None
        return body["items"], (body.get("metadata") or {}).get("resourceVersion")

    def watch(
        self, kind: str, resource_version: str, timeout_seconds: int = 300
    ) -> Iterator[dict[str, Any]]:
        """The watch events of ``kind`` from ``resource_version`` (``type`` and ``object``,
        bookmarks included) until the server ends the watch after ``timeout_seconds``."""
        resp = self._list_call(kind)(
            watch=True,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout_seconds,
            _preload_content=False,
            _request_timeout=(10, timeout_seconds + 30),
        )
        try:
            pending = bytearray()
            for chunk in resp.stream(amt=None, decode_content=True):  # each chunk as it comes
                pending.extend(chunk)
                end = pending.find(b"\n")
                while end != -1:
                    if end:
                        yield json.loads(pending[:end])
                    del pending[: end + 1]
                    end = pending.find(b"\n")
            if pending.strip():
                yield json.loads(pending)
        finally:
            resp.close()  # a watch left early has unread data: its connection is not reused
            resp.release_conn()

    def _create(self, plural: str, body: Mapping[str, Any], group: str = "") -> bool:
        """Create a namespaced core (or ``group``, e.g. ``apps/v1``) object; False when one of
        that name exists already."""
        namespace = body["metadata"]["namespace"]
        path = f"/apis/{group}/namespaces/{quote(namespace)}/{plural}"
        try:
            self._send("POST", path if group else _core(namespace, plural), body)
        except ApiException as err:
            _ok_if(409, err)
            return False
        return True

    def create_pod(self, body: Mapping[str, Any]) -> bool:
        """Create a pod; False when one of that name exists already."""
        return self._create("pods", body)

    def create_pod_uid(self, body: Mapping[str, Any]) -> str | None:
        """Create a pod and return its uid; None when one of that name exists already."""
        try:
            resp = self._send("POST", _core(body["metadata"]["namespace"], "pods"), body)
        except ApiException as err:
            _ok_if(409, err)
            return None
        return str(self._json(resp)["metadata"]["uid"])

    def ensure_claim(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
        """Create a ResourceClaim and write its ``status`` (the allocation) through the status
        subresource, as a scheduler does. A claim of that name there already keeps its status
        unless it has the same owner. False when nothing was written."""
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        owners = body["metadata"].get("ownerReferences") or [{}]
        claims = _custom(RESOURCE_GROUP, RESOURCE_VERSION, namespace, RESOURCECLAIMS)
        try:
            self._send("POST", claims, body)
        except ApiException as err:
            _ok_if(409, err)
            there = self._json(self._send("GET", f"{claims}/{quote(name)}"))
            if (there["metadata"].get("ownerReferences") or [{}])[0].get("uid") != owners[0].get(
                "uid"
            ):
                return False
        try:
            self._send(
                "PATCH",
                f"{claims}/{quote(name)}/status",
                {"status": dict(status)},
                content_type="application/merge-patch+json",
            )
        except ApiException as err:
            _ok_if(404, err)
            return False
        return True

    def delete_claim(self, namespace: str, name: str) -> None:
        """Delete a ResourceClaim; one gone already is fine."""
        try:
            self._send(
                "DELETE", _custom(RESOURCE_GROUP, RESOURCE_VERSION, namespace, RESOURCECLAIMS, name)
            )
        except ApiException as err:
            _ok_if(404, err)

    def delete_pod(self, namespace: str, name: str, grace_seconds: int | None = None) -> None:
        """Delete a pod, with ``grace_seconds`` if given; one gone already is fine."""
        query = None if grace_seconds is None else [("gracePeriodSeconds", grace_seconds)]
        try:
            self._send("DELETE", _core(namespace, "pods", name), query=query)
        except ApiException as err:
            _ok_if(404, err)

    def create_service(self, body: Mapping[str, Any]) -> None:
        """Create a Service; one of that name there already is fine."""
        self._create("services", body)

    def create_rendezvous(self, deployment: Mapping[str, Any], svc: Mapping[str, Any]) -> None:
        """Create a MiniCluster's rendezvous Deployment and Service; ones there already stay."""
        self._create("deployments", deployment, group="apps/v1")
        self._create("services", svc)

    def create_secret(self, body: Mapping[str, Any]) -> bool:
        """Create a Secret; False when it exists already (the operator cannot read Secrets)."""
        return self._create("secrets", body)

    def secret_missing(self, body: Mapping[str, Any]) -> bool:
        """Whether there is no Secret of ``body``'s name, asked by a dry-run create (the
        operator may create Secrets but never read them): nothing is stored either way."""
        namespace = body["metadata"]["namespace"]
        try:
            self._send("POST", _core(namespace, "secrets"), body, query=[("dryRun", "All")])
        except ApiException as err:
            _ok_if(409, err)
            return False
        return True

    def delete_service(self, namespace: str, name: str) -> None:
        """Delete a Service; one gone already is fine."""
        try:
            self._send("DELETE", _core(namespace, "services", name))
        except ApiException as err:
            _ok_if(404, err)

    def create_cargo(self, body: Mapping[str, Any]) -> None:
        """Create a Cargo in its ``metadata.namespace``; one of that name there already is fine."""
        try:
            self._send("POST", _custom(GROUP, VERSION, body["metadata"]["namespace"], CARGOS), body)
        except ApiException as err:
            _ok_if(409, err)

    def delete_cargo(self, namespace: str, name: str) -> None:
        """Delete a Cargo; one gone already is fine."""
        try:
            self._send("DELETE", _custom(GROUP, VERSION, namespace, CARGOS, name))
        except ApiException as err:
            _ok_if(404, err)

    def patch_status(
        self, plural: str, namespace: str, name: str, status: Mapping[str, Any]
    ) -> bool:
        """Merge-patch ``status``; False when the object is gone."""
        try:
            self._send(
                "PATCH",
                _custom(GROUP, VERSION, namespace, plural, name) + "/status",
                {"status": status},
                content_type="application/merge-patch+json",
            )
        except ApiException as err:
            _ok_if(404, err)
            return False
        return True

    def replace_status(
        self,
        plural: str,
        namespace: str,
        name: str,
        status: Mapping[str, Any],
        resource_version: str | None = None,
    ) -> str | None:
        """Replace the whole ``status`` (keys Crane dropped disappear, unlike a merge patch),
        only if the object is still at ``resource_version`` when one is given.

        Returns the object's new resourceVersion; None when it is gone (404) or was changed
        since ``resource_version`` (409: the caller learns it and writes again next pass).
        """
        meta: dict[str, Any] = {"name": name, "namespace": namespace}
        if resource_version:
            meta["resourceVersion"] = resource_version
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KINDS[plural],
            "metadata": meta,
            "status": dict(status),
        }
        try:
            resp = self._send(
                "PUT", _custom(GROUP, VERSION, namespace, plural, name) + "/status", body
            )
        except ApiException as err:
            if err.status not in (404, 409):
                raise
            return None
        return str(self._json(resp)["metadata"].get("resourceVersion", ""))

    def patch_metadata(
        self,
        plural: str,
        namespace: str,
        name: str,
        metadata: Mapping[str, Any],
        resource_version: str | None = None,
    ) -> str | None:
        """Merge-patch ``metadata`` (only if still at ``resource_version`` when given).

        Returns the new resourceVersion; None when the object is gone or changed since.
        """
        patch = dict(metadata)
        if resource_version:
            patch["resourceVersion"] = resource_version
        try:
            resp = self._send(
                "PATCH",
                _custom(GROUP, VERSION, namespace, plural, name),
                {"metadata": patch},
                content_type="application/merge-patch+json",
            )
        except ApiException as err:
            if err.status not in (404, 409):
                raise
            return None
        return str(self._json(resp)["metadata"].get("resourceVersion", ""))

    def remove_finalizer(self, plural: str, namespace: str, name: str, index: int) -> None:
        """Remove ``FINALIZER`` at ``index`` of ``metadata.finalizers``, if it is still there."""
        path = f"/metadata/finalizers/{index}"
        try:
            self._send(
                "PATCH",
                _custom(GROUP, VERSION, namespace, plural, name),
                [
                    {"op": "test", "path": path, "value": FINALIZER},
                    {"op": "remove", "path": path},
                ],
                content_type="application/json-patch+json",
            )
        except ApiException as err:
            _ok_if(404, err)

    def patch_pod_labels(self, namespace: str, name: str, labels: Mapping[str, str]) -> None:
        """Merge ``labels`` into a pod's; a pod gone already is fine."""
        try:
            self._send(
                "PATCH",
                _core(namespace, "pods", name),
                {"metadata": {"labels": dict(labels)}},
                content_type="application/merge-patch+json",
            )
        except ApiException as err:
            _ok_if(404, err)

    def patch_pod_annotations(
        self, namespace: str, name: str, annotations: Mapping[str, str]
    ) -> None:
        """Merge ``annotations`` into a pod's; a pod gone already is fine."""
        try:
            self._send(
                "PATCH",
                _core(namespace, "pods", name),
                {"metadata": {"annotations": dict(annotations)}},
                content_type="application/merge-patch+json",
            )
        except ApiException as err:
            _ok_if(404, err)

    def post_event(
        self, involved: Mapping[str, Any], type_: str, reason: str, message: str, component: str
    ) -> None:
        """A core/v1 Event about ``involved`` (its apiVersion, kind and metadata)."""
        meta = involved["metadata"]
        now = datetime.now(UTC).isoformat()
        body = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind"),
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": component},
            "reportingComponent": component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self._send("POST", _core(meta["namespace"], "events"), body)
        except ApiException as err:
            _ok_if(404, err)

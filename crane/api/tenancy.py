"""Tenant boundaries the API keeps: which names can never be tenants, and what of another
tenant's objects a caller may see (counts, never names; an admin sees names)."""

from __future__ import annotations

from crane.api.auth import Principal
from crane.api.schemas import DryRunResult, ExplainResult, ExplanationOut, MiniCluster, Scope
from crane.api.settings import ApiSettings
from crane.placement.types import DomainFit, Explanation


def reserved_reason(name: str, settings: ApiSettings) -> str | None:
    """Why ``name`` can never be a tenant (it is, or would be, a namespace Kubernetes or Crane
    itself owns), or None when it may be one."""
    if name.startswith("kube-"):
        return f"{name!r} is reserved: kube-* namespaces belong to Kubernetes itself"
    if name == settings.operator_namespace:
        return f"{name!r} is reserved: it is the namespace of Crane's operator"
    if name == "default" and not settings.allow_default_namespace:
        return (
            "'default' is reserved: it is Kubernetes' default namespace (an admin allows it with "
            "CRANE_ALLOW_DEFAULT_NAMESPACE=true)"
        )
    return None


class Viewer:
    """What one caller may see by name: its tenant's objects (a MiniCluster token: its
    MiniCluster's), everything for an admin."""

    def __init__(self, who: Principal, tenant: str) -> None:
        self.admin = who.is_admin
        self.tenant = tenant
        self.minicluster = who.minicluster if who.scope is Scope.MINICLUSTER else None

    def owns(self, key: str) -> bool:
        """Whether the object ``tenant/name`` is the caller's to name. A MiniCluster token names
        no cargo key of another MiniCluster (a cargo key does not say its MiniCluster, so only
        the MiniCluster's own key is named)."""
        if self.admin:
            return True
        owner, _, name = key.partition("/")
        if owner != self.tenant:
            return False
        return self.minicluster is None or name == self.minicluster

    @property
    def others(self) -> str:
        """How the objects this viewer may not name are described."""
        return "of another MiniCluster or tenant" if self.minicluster else "of another tenant"


OTHER_MINICLUSTER = "(another MiniCluster)"
"""What ``waitsBehind`` reads, for a MiniCluster token, for a MiniCluster of its tenant other
than its own (one of another tenant reads ``(another tenant)`` for everyone but admins)."""


def minicluster_for(mc: MiniCluster, viewer: Viewer) -> MiniCluster:
    """``mc`` as ``viewer`` may see it: for a MiniCluster token, the MiniClusters of its tenant
    it waits behind are not named (it names its own MiniCluster only)."""
    behind = mc.status.waits_behind
    shown = [k if viewer.owns(k) or "/" not in k else OTHER_MINICLUSTER for k in behind]
    if shown == behind:
        return mc
    return mc.model_copy(update={"status": mc.status.model_copy(update={"waits_behind": shown})})


def _explanation(out: ExplanationOut) -> Explanation:
    best = out.best
    return Explanation(
        needed_gpus=out.needed_gpus,
        gpu_type=out.gpu_type,
        level=out.level,
        required=out.required,
        best=DomainFit(best.level, best.domain, best.free_gpus, best.preemptible_gpus)
        if best
        else None,
        total_free_gpus=out.total_free_gpus,
        preemptible_cargos=tuple(out.preemptible_cargos),
        preemptible_gpus=out.preemptible_gpus,
        detail=out.detail,
    )


def explanation_for(out: ExplanationOut | None, viewer: Viewer) -> ExplanationOut | None:
    """``out`` as ``viewer`` may see it: other tenants' cargos counted, never named, and the
    sentence rendered for this viewer."""
    if out is None:
        return None
    full = _explanation(out)
    shown = [k for k in out.preemptible_cargos if viewer.owns(k)]
    return out.model_copy(
        update={
            "sentence": full.sentence(viewer.owns, viewer.others),
            "preemptible_cargos": shown,
            "other_preemptible_cargos": out.other_preemptible_cargos
            + len(out.preemptible_cargos)
            - len(shown),
        }
    )


def explain_for(result: ExplainResult, viewer: Viewer) -> ExplainResult:
    """An ``:explain`` answer for ``viewer`` (see :func:`explanation_for`)."""
    exp = result.explanation
    message = result.message
    seen = explanation_for(exp, viewer)
    if exp is not None and seen is not None and message == exp.sentence:
        message = seen.sentence
    cargos = [
        c.model_copy(update={"explanation": explanation_for(c.explanation, viewer)})
        for c in result.cargos
    ]
    return result.model_copy(update={"message": message, "explanation": seen, "cargos": cargos})


def dry_run_for(result: DryRunResult, viewer: Viewer) -> DryRunResult:
    """A ``placement:dryrun`` answer for ``viewer`` (see :func:`explanation_for`)."""
    exp = result.explanation
    seen = explanation_for(exp, viewer)
    message = result.message
    if exp is not None and seen is not None and message == exp.sentence:
        message = seen.sentence
    return result.model_copy(update={"message": message, "explanation": seen})

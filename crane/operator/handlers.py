"""kopf handlers, all thin: settings and the operator's start, and its stop.

kopf runs the process (signals, liveness, start-up and clean-up); the cache is fed by plain
watches (:mod:`crane.operator.watch`), not by kopf's per-object event handlers.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from crane.kube.names import KOPF_FINALIZER, PREFIX
from crane.operator.runtime import Operator


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """All kopf settings, in one place; then the operator's own start (cache priming, loop)."""
    prefix = PREFIX.rstrip("/")
    settings.persistence.finalizer = KOPF_FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=prefix)
    settings.scanning.disabled = True
    settings.posting.level = logging.WARNING
    settings.networking.request_timeout = 60
    operator: Operator = memo["operator"]
    await operator.start()


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    """kopf cleanup: stop the operator (see :meth:`Operator.stop`)."""
    operator: Operator = memo["operator"]
    await operator.stop()

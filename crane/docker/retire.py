"""Stopping containers off the reconciler's lock: one background thread per container.

A stop waits up to the cargo's grace period (SIGTERM, then SIGKILL), so a pass only records
the intent (SQL already says the cargo is deleting, restarting or failing) and hands the
container here; when it is gone the reconciler is woken and finishes the job under its lock,
releasing the GPUs only then. After a restart the intent is still in SQL and the stop is
handed here again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from docker.errors import DockerException, NotFound
from docker.models.containers import Container

from crane.docker.containers import remove_container, write_notice

log = logging.getLogger(__name__)


class Retirer:
    """Stops (and by default removes) containers concurrently; each at most once at a time."""

    def __init__(self, done: Callable[[], None]) -> None:
        self._done = done
        self._lock = threading.Lock()
        self._busy: set[str] = set()

    def retire(
        self,
        container: Container,
        grace_seconds: int,
        remove: bool = True,
        notice: str | None = None,
    ) -> None:
        """Stop ``container`` within ``grace_seconds`` (and remove it) in the background; a
        ``notice`` is written into it as ``/crane/notice`` first."""
        with self._lock:
            if container.id in self._busy:
                return
            self._busy.add(str(container.id))
        threading.Thread(
            target=self._run,
            args=(container, grace_seconds, remove, notice),
            name=f"crane-stop-{container.name}",
            daemon=True,
        ).start()

    def _run(
        self, container: Container, grace_seconds: int, remove: bool, notice: str | None
    ) -> None:
        try:
            if notice is not None and container.status == "running":
                try:
                    write_notice(container, notice)
                except (DockerException, OSError) as err:
                    log.warning("notice to container %s failed: %s", container.name, err)
            if remove:
                remove_container(container, grace_seconds)
            else:
                container.stop(timeout=grace_seconds)
        except NotFound:
            pass
        except (DockerException, OSError) as err:
            log.warning("stopping container %s failed: %s", container.name, err)
        finally:
            with self._lock:
                self._busy.discard(str(container.id))
            self._done()

"""Small helpers shared by the test suites."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


LEASE_NAMESPACE = "crane-system"
"""Where the operator of the e2e tests keeps its Lease (created by the ``crane_crds`` fixture)."""

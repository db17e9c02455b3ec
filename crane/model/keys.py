"""Object keys ``namespace/name`` (Kubernetes) or ``tenant/name`` (Docker), and how one
object is named in a message another object's owner reads."""

from __future__ import annotations


def owner(key: str) -> str:
    """The tenant (namespace) of a key."""
    return key.partition("/")[0]


def named_for(key: str, reader: str, noun: str) -> str:
    """``noun key`` when the owner of the ``reader`` key owns ``key`` too, else ``a noun of
    another tenant``: a message stored on the reader's object never names another tenant's."""
    if owner(key) == owner(reader):
        return f"{noun} {key}"
    return f"a {noun} of another tenant"

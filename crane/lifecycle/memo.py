"""What a pass parsed before, kept while the parsed record is the same (or an equal) object.

A pass reads every cargo and node; most did not change since the last pass. The cache replaces
a record (a new dict, a new node view) whenever a watch event changes it, and the loop replaces
the status it last wrote, so "the same object as last time" means "parsed already": the pass
reuses the result instead of validating the same spec again. A new record with an equal source
(a status write's echo carries the same spec) is compared by value, which costs far less than
validating it. Results are read-only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class Memo(Generic[T]):
    """key -> (source object, result): ``get`` parses again only when the source is another,
    unequal object. A parse that raises is remembered too, and raised again for the same source."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[object, T | Exception]] = {}

    def get(self, key: str, source: object, parse: Callable[[], T]) -> T:
        """The result of ``parse()`` for ``source`` under ``key``, parsed once per source."""
        hit = self._entries.get(key)
        if hit is None or (hit[0] is not source and hit[0] != source):
            try:
                result: T | Exception = parse()
            except Exception as err:
                result = err
            hit = (source, result)
            self._entries[key] = hit
        elif hit[0] is not source:
            hit = self._entries[key] = (source, hit[1])  # equal: next time the same object
        if isinstance(hit[1], Exception):
            raise hit[1].with_traceback(None)  # not a traceback that grows with each pass
        return hit[1]

    def keep(self, keys: Iterable[str]) -> None:
        """Forget every key not in ``keys`` (records that are gone)."""
        live = set(keys)
        for key in [k for k in self._entries if k not in live]:
            del self._entries[key]

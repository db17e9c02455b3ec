"""The placement engine: the cluster's GPUs, MiniCluster reservations and cargo placements.

Pure, deterministic and synchronous. One class built in layers, each a module of its own:
``ledger`` (GPU states, journal, nodes), ``reserving`` (MiniCluster records and
reservations), ``preempting`` (preemption plans, nominations), ``reasons`` (explanations),
``admitting`` (the admission pass), ``cargos`` (placement), ``whatif`` (dry-runs and
explanations); this module adds the copy and the read side.
"""

from __future__ import annotations

from typing import Any

from crane.placement.index import FreeIndex
from crane.placement.state import CargoState, McState
from crane.placement.types import (
    GpuCounts,
    GpuSlot,
    MiniClusterUsage,
)
from crane.placement.whatif import Answering


class Engine(Answering):
    """One placement engine per cluster. See ``docs/architecture.md`` for the algorithm."""

    def snapshot(self) -> Engine:
        """An independent copy (index rebuilt from the GPU states)."""
        self._no_trial()
        copy = Engine(self.levels)
        for name in sorted(self._nodes):
            copy.upsert_node(self._nodes[name].inv)
        for key in sorted(self._mcs):
            mc = self._mcs[key]
            copy._mcs[key] = McState(mc.req, mc.admitted, {}, set(mc.cargos), mc.used, mc.borrowed)
        for key in sorted(self._cargos):
            c = self._cargos[key]
            copy._cargos[key] = CargoState(c.req, self._copy(c.placements), c.borrowed)
        copy.ends = self.ends
        copy.shares = self.shares
        for name in sorted(self._nodes):
            node = self._nodes[name]
            copy._set_gpus(
                copy._nodes[name], [(g, node.resv[g], node.cargo[g]) for g in range(len(node.resv))]
            )
            copy._noms.set(copy._nodes[name], sorted(node.nominated.items()))
        copy._noms.preempted_for = dict(self._noms.preempted_for)
        return copy

    def usage(self, key: str) -> MiniClusterUsage:
        """Reserved, used and borrowed GPUs and cargos of MiniCluster ``key``; zeros if unknown."""
        mc = self._mcs.get(key)
        if mc is None:
            return MiniClusterUsage(0, 0, 0, 0)
        return MiniClusterUsage(mc.reserved_count, mc.used, mc.borrowed, len(mc.cargos))

    def gpu_map(self) -> list[GpuSlot]:
        """Every GPU of every node, by node name then GPU id: who reserves it and who uses it."""
        slots = []
        for name in sorted(self._nodes):
            node = self._nodes[name]
            for g in range(len(node.resv)):
                cargo = node.cargo[g]
                owner = self._cargos[cargo].req.minicluster if cargo is not None else None
                slots.append(
                    GpuSlot(name, g, node.resv[g], cargo, owner, g in node.inv.busy_gpu_ids)
                )
        return slots

    def gpu_counts(self) -> dict[str, GpuCounts]:
        """Per node: its GPUs, how many are reserved, in use, and in use by a cargo whose
        MiniCluster does not reserve them (borrowed). What :meth:`gpu_map` adds up to, without
        one object per GPU (the metrics read this every few seconds on large clusters)."""
        out = {}
        for name, node in self._nodes.items():
            reserved = in_use = borrowed = 0
            for resv, cargo in zip(node.resv, node.cargo, strict=True):
                reserved += resv is not None
                if cargo is not None:
                    in_use += 1
                    borrowed += self._cargos[cargo].req.minicluster != resv
            out[name] = GpuCounts(len(node.resv), reserved, in_use, borrowed)
        return out

    def has_gpu(self, node: str, gpu: int) -> bool:
        """Whether ``node`` is known and has GPU id ``gpu``."""
        state = self._nodes.get(node)
        return state is not None and 0 <= gpu < len(state.resv)

    def has_minicluster(self, key: str) -> bool:
        """Whether MiniCluster ``key`` is submitted (admitted or not)."""
        return key in self._mcs

    def gpu_user(self, node: str, gpu: int) -> str | None:
        """The cargo using GPU ``node:gpu``, if any (None for an unknown GPU)."""
        return self._nodes[node].cargo[gpu] if self.has_gpu(node, gpu) else None

    def gpu_user_minicluster(self, node: str, gpu: int) -> str | None:
        """The MiniCluster whose cargo uses GPU ``node:gpu``, if any."""
        cargo = self.gpu_user(node, gpu)
        return self._cargos[cargo].req.minicluster if cargo is not None else None

    def gpu_reserver(self, node: str, gpu: int) -> str | None:
        """The MiniCluster reserving GPU ``node:gpu``, if any."""
        return self._nodes[node].resv[gpu] if self.has_gpu(node, gpu) else None

    def dump(self) -> dict[str, Any]:
        """A canonical, comparable dump of the whole state (used by tests)."""
        return {
            "nodes": {
                n: (list(s.resv), list(s.cargo), s.free, s.path, sorted(s.nominated.items()))
                for n, s in sorted(self._nodes.items())
            },
            "miniclusters": {
                k: (m.req, m.admitted, self.reservation(k), sorted(m.cargos), m.used, m.borrowed)
                for k, m in sorted(self._mcs.items())
            },
            "cargos": {
                k: (c.req, [p.model_dump() for p in c.placements], c.borrowed)
                for k, c in sorted(self._cargos.items())
            },
            "index": self._index.canonical(),
        }

    def rebuilt_index(self) -> dict[str, Any]:
        """The index built from scratch from the GPU states (for checking the live one)."""
        index = FreeIndex(self._depth)
        for node in self._nodes.values():
            index.add_capacity(node.product, node.path, len(node.resv))
            index.update(
                node.name, node.product, node.path, 0, node.count_free() if node.open else 0
            )
        return index.canonical()

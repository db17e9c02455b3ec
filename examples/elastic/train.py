"""A tiny elastic training program for one torch world per MiniCluster (docs/elastic-training.md).

Run by ``torchrun`` in every replica of every cargo of a MiniCluster with ``spec.rendezvous``::

    torchrun --nnodes=$CRANE_NNODES --nproc-per-node=1 --rdzv-backend=$CRANE_RDZV_BACKEND \\
        --rdzv-endpoint=$CRANE_RDZV_ENDPOINT --rdzv-id=$CRANE_RDZV_ID --max-restarts=100 \\
        examples/elastic/train.py

It fits ``y = 3x + 1`` with a one-weight model under DistributedDataParallel (gloo on CPU, nccl
on GPUs), prints ``world=<n> step=<s> loss=<x>`` (one line per node every ``--print-every``
steps), and checkpoints to ``$CRANE_CHECKPOINT`` (shared storage every node sees) every
``--checkpoint-every`` steps. When the world re-forms (a cargo added or removed), torchrun
restarts the workers and they resume from the checkpoint: the step never goes back to 0.

A cargo about to be removed gets SIGTERM and, in ``$CRANE_NOTICE_FILE``, a notice: any worker
that sees either tells the others in the next step (one all-reduce of a flag), and rank 0 writes
a checkpoint at once, so no step is lost to a shrink or a preemption.

torch is imported inside :func:`main` only: the repository's linters do not need it.
"""

from __future__ import annotations

import argparse
import os
import signal
from datetime import timedelta
from pathlib import Path
from typing import Any


def notice_posted() -> bool:
    """Whether Crane has posted the notice (the file named by CRANE_NOTICE_FILE has content)."""
    path = os.environ.get("CRANE_NOTICE_FILE")
    try:
        return bool(path) and Path(str(path)).stat().st_size > 0
    except OSError:
        return False


def save(torch: Any, path: Path, model: Any, optimizer: Any, step: int) -> None:
    """Write the checkpoint atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step}
    torch.save(state, partial)
    partial.replace(path)


def main(argv: list[str] | None = None) -> None:
    """Train until ``--steps``, resuming from the checkpoint when there is one."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--checkpoint-every", type=int, default=50)
    parser.add_argument("--print-every", type=int, default=10)
    parser.add_argument("--lr", type=float, default=0.01)
    args = parser.parse_args(argv)

    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    gpu = torch.cuda.is_available()
    # a node that leaves makes the others' next collective fail within a minute at most, so
    # torchrun re-forms the world instead of waiting for gloo's or nccl's default 30 minutes
    dist.init_process_group("nccl" if gpu else "gloo", timeout=timedelta(seconds=60))
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device(f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if gpu else "cpu")
    checkpoint = Path(os.environ.get("CRANE_CHECKPOINT", "/tmp/crane-train.pt"))
    stopping = False

    def on_term(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    model = torch.nn.Linear(1, 1).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    step = 0
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location=device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step = int(state["step"])
    ddp = DistributedDataParallel(model)
    generator = torch.Generator().manual_seed(rank * 1_000_003 + step)
    local = os.environ.get("LOCAL_RANK", "0") == "0"
    saved_on_notice = False
    while step < args.steps:
        x = torch.rand(64, 1, generator=generator).to(device)
        y = 3 * x + 1
        loss = torch.nn.functional.mse_loss(ddp(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        flag = torch.tensor([1.0 if stopping or notice_posted() else 0.0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        leaving = flag.item() > 0
        due = step % args.checkpoint_every == 0 or (leaving and not saved_on_notice)
        if rank == 0 and due:
            save(torch, checkpoint, model, optimizer, step)
        saved_on_notice = leaving
        if local and step % args.print_every == 0:
            print(f"world={world} step={step} loss={loss.item():.6f}", flush=True)
        if leaving and stopping:
            break
    dist.destroy_process_group()


if __name__ == "__main__":
    main()

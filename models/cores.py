"""How many threads a model process computes with, and how they wait.

torch sizes its intra-op pool from the machine's cores, not from what the
process may use: in a container limited to 2 CPUs on a 64-core host it
starts 64 threads that fight over 2 cores. Each model process sets its pool
from its CPU affinity and its cgroup quota instead (or from
FACESERVE_TORCH_THREADS).

The detector, the embedder and the API share the cores. OpenMP's default
lets idle pool threads spin for the next parallel region, burning the time
another process needed: a VGA detection measured 1.3 s instead of 61 ms
while another process computed on the same 2 cores (BENCHMARKS.md). Passive
waiting gives those cores back.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def available_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """Cores this process may run on: its affinity, capped by a cgroup v2 CPU quota when one is set."""
    cores = len(os.sched_getaffinity(0))
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return cores
    if quota == "max":
        return cores
    return max(1, min(cores, math.ceil(int(quota) / int(period))))


def use_cores(threads: int = 0) -> int:
    """Size torch's intra-op pool (`threads`, or every available core when 0) with passive waiting; the size.

    Call it before anything in the process imports torch: OpenMP reads its wait policy once, when torch loads.
    An operator's own OMP_WAIT_POLICY is kept.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch  # only model processes call this; the API process never loads torch

    count = threads or available_cores()
    torch.set_num_threads(count)
    return count


@contextmanager
def intra_op_threads(count: int) -> Iterator[None]:
    """torch's intra-op pool at `count` threads for the block, then as it was (for code that runs its own
    worker threads, whose kernels would otherwise each start a pool of their own)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)

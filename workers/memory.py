"""A bound on what one job may grow its worker process by, and the reason it failed by.

The submission check (``service.spec.check_limits``) refuses jobs whose estimate is too
large, but an estimate can be wrong; without a bound such a job grows until the kernel's
OOM killer takes the worker (and maybe the host). At the start of each job the worker sets
its soft RLIMIT_DATA to what its process holds now plus NNQ_WORKER_MEMORY_MB: an allocation
beyond it fails with MemoryError in that job alone, which ends the job as failed with
``out_of_memory_reason``. RLIMIT_DATA counts private writable mappings (the heap and NumPy's
large arrays), not the address space RLIMIT_AS would, which OpenBLAS's thread stacks and
CuPy's device mappings reserve in gigabytes without using them. Only the soft limit moves,
never above what the process started with, so the bound is lifted again (``lift``) to write
the failure, and set afresh for the next job.
"""

from __future__ import annotations

import re
import resource

import nncore
from nncore.memory import estimate_job_memory

MB = 2**20
_VM_DATA = re.compile(r"^VmData:\s+(\d+) kB$", re.MULTILINE)
_STARTED_WITH = resource.getrlimit(resource.RLIMIT_DATA)[0]


def data_bytes() -> int:
    """This process's data segment now (VmData: what RLIMIT_DATA is compared with)."""
    with open("/proc/self/status") as f:
        return int(_VM_DATA.search(f.read()).group(1)) * 1024


def limit_job(worker_memory_mb: int) -> int | None:
    """Let the job about to run grow this process by ``worker_memory_mb`` at most (0: no
    bound); returns the soft limit set, in bytes, or None."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if worker_memory_mb <= 0:
        lift()
        return None
    soft = data_bytes() + worker_memory_mb * MB
    if _STARTED_WITH != resource.RLIM_INFINITY:
        soft = min(soft, _STARTED_WITH)
    resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))
    return soft


def lift() -> None:
    """Back to the soft limit the process started with (normally unlimited)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    resource.setrlimit(resource.RLIMIT_DATA, (_STARTED_WITH, hard))


def out_of_memory_reason(exc: MemoryError, spec: dict, worker_memory_mb: int) -> str:
    """What the job's failure says: the allocation that failed, the estimate, the bound."""
    try:
        estimate = f"{estimate_job_memory(nncore.parse_spec(spec)).megabytes} MB"
    except (nncore.SpecError, ValueError):
        estimate = "not available"
    what = str(exc) or "an allocation failed"
    bound = (f"{worker_memory_mb} MB" if worker_memory_mb > 0 else "unset (0), so the host's "
             "memory ran out")
    return (f"out of memory: {what}; the estimate was {estimate}, the worker limit "
            f"NNQ_WORKER_MEMORY_MB is {bound}")

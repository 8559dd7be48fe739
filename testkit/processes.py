"""Process helpers shared by tests and benchmarks: which children this process has now."""

from __future__ import annotations

import os

__all__ = ["child_pids"]


def child_pids() -> set[int]:
    """PIDs of this process's children, from ``/proc`` (children of every thread)."""
    pids: set[int] = set()
    task_dir = f"/proc/{os.getpid()}/task"
    for tid in os.listdir(task_dir):
        try:
            with open(f"{task_dir}/{tid}/children") as handle:
                pids.update(int(pid) for pid in handle.read().split())
        except FileNotFoundError:  # the thread ended while we were listing
            continue
    return pids

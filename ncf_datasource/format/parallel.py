"""When threads pay: NCF encodes and decodes pages in parallel only while cores are idle."""

from __future__ import annotations

import os

PARALLEL_BYTES = 1 << 20
"""Below this much data, handing work to threads costs more than it saves."""


def threads_pay(nbytes: int) -> bool:
    """Whether spreading work on ``nbytes`` of data over threads can make it faster now: at
    least PARALLEL_BYTES, more than one CPU, and a 1-minute load average below the CPU count.
    On an oversubscribed machine the threads mostly wait for each other (and for Python's
    GIL): measured at load 10 on 2 CPUs, writing TPC-H ``part`` took 627 ms with threads and
    402 ms without, ``customer`` 1 065 and 768 ms."""
    cpus = os.cpu_count() or 1
    if nbytes < PARALLEL_BYTES or cpus < 2:
        return False
    try:
        return os.getloadavg()[0] < cpus
    except OSError:  # no load average on this platform
        return True

"""The thread pool the format layer shares for work that numpy, Arrow and zstd do without the
GIL: decoding pages, cutting a big chunk of text into words. Its tasks never wait for other
tasks of the pool, so callers running inside another pool (the writer's) cannot deadlock it."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def shared_pool() -> ThreadPoolExecutor:
    """The process-wide pool (one thread per CPU), created on first use."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="ncf")
        return _pool


def parallel_map(func: Callable, items: list, threads: bool = True) -> list:
    """``[func(x) for x in items]``, on the shared pool when ``threads`` and there are several."""
    if threads and len(items) > 1:
        return list(shared_pool().map(func, items))
    return [func(x) for x in items]

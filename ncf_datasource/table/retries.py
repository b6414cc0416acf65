"""Optimistic concurrency's retry loop: an operation that lost a commit race starts again."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from .errors import ConcurrentModificationError

DEFAULT_RETRIES = 3
T = TypeVar("T")


def with_retries(operation: Callable[[], T], retries: int) -> T:
    """Run ``operation`` again (from a fresh snapshot) after each conflict, ``retries`` times."""
    for attempt in range(retries + 1):
        try:
            return operation()
        except ConcurrentModificationError:
            if attempt == retries:
                raise
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")

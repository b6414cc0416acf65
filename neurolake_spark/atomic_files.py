"""Small files that readers and other processes can share safely: atomic replacement, a file lock.

Example::

    with file_lock(path.with_name(f".{path.name}.lock")):      # one read-modify-write at a time
        write_atomic(path, updated(path.read_text()))        # readers see the old or the new text

Both need a POSIX filesystem (local, or NFS with ``flock`` support): ``os.replace`` within
one folder is atomic there, and ``flock`` excludes other processes of any host that share it.
"""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old content or the whole new one, never
    a part (a temporary file in the same folder, flushed to disk, then renamed over ``path``)."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


@contextmanager
def file_lock(path: Path, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) while the block runs; yields
    False instead of waiting if ``blocking`` is off and another holder has it. The kernel frees
    the lock when its process dies, so a crash never leaves it taken."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

"""Paths read from logs and manifests: each must name a file inside its folder.

A table log (NCF or Delta), a backup manifest or a request is data anyone who can write
it controls, so a path taken from it is untrusted: :func:`check_relative` rejects what is
not a plain relative path (absolute, ``..``, empty parts, NUL), and :func:`inside` also
resolves symlinks and proves the result stays under the folder. Plain Python, no Spark:
the NCF table layer and NeuroLake's backups both use it.

Example::

    path = inside(table_folder, add_action["path"])      # a Path under table_folder, or UnsafePathError
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from ..format.errors import NCFError


class UnsafePathError(NCFError):
    """A path from a log or manifest leaves its folder (absolute, ``..``, a symlink out...)."""

    exit_code = 2


def check_relative(relative: str) -> str:
    """Return ``relative`` if it is a plain relative path (``a/b.ncf``), else raise :class:`UnsafePathError`.

    Rejected: a non-string or empty path, NUL bytes, backslashes (a separator for some
    readers), absolute paths, and ``.``, ``..`` or empty parts.
    """
    if not isinstance(relative, str) or not relative:
        raise UnsafePathError(f"path {relative!r} is not a non-empty string")
    shown = repr(relative)[:200]
    if "\x00" in relative:
        raise UnsafePathError(f"path {shown} contains a NUL byte")
    if "\\" in relative:
        raise UnsafePathError(f"path {shown} contains a backslash")
    if PurePosixPath(relative).is_absolute():
        raise UnsafePathError(f"path {shown} is absolute")
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise UnsafePathError(f"path {shown} is not a plain relative path (empty, '.' or '..' parts)")
    return relative


def inside(root: str | os.PathLike, relative: str) -> Path:
    """``root / relative`` after proving it stays inside ``root`` once symlinks are resolved.

    ``relative`` must pass :func:`check_relative`; the folders and file it names may not exist
    yet (a destination), and existing ones may be symlinks only to places inside ``root``.
    """
    check_relative(relative)
    base = Path(root)
    path = base / relative
    resolved_root, resolved = base.resolve(), path.resolve()
    if resolved == resolved_root or not resolved.is_relative_to(resolved_root):
        raise UnsafePathError(f"path {relative!r} resolves outside {base} (through a symlink)")
    return path

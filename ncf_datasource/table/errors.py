"""Exceptions of the NCF table layer; each message is one line naming the table and the problem."""

from __future__ import annotations

from ..format.errors import NCFError


class NCFTableError(NCFError):
    """Base of every error the table layer raises on purpose."""


class NotATableError(NCFTableError):
    """The path holds no NCF table (no ``_ncf_log/`` commit log)."""


class CorruptTableError(NCFTableError):
    """The table's log contradicts the format's rules (e.g. it names a file outside the table folder)."""


class ConcurrentModificationError(NCFTableError):
    """Another commit changed what this operation read; nothing was committed by it."""


class SchemaMismatchError(NCFTableError):
    """Written data does not fit the table's schema (an incompatible type, an unknown column)."""


class TimeTravelError(NCFTableError):
    """The version or timestamp asked for does not exist in the table's history."""


class VacuumRetentionError(NCFTableError):
    """A vacuum retention below the safe minimum was asked for without ``force``."""

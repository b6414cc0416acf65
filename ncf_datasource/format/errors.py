"""Exceptions of the NCF format layer.

Every error raised on purpose derives from :class:`NCFError`; its message is one line that
names the file (when there is one) and the problem, so a command line can print it as is.
"""

from __future__ import annotations


class NCFError(Exception):
    """Base of every error the NCF format raises on purpose."""

    exit_code = 1


class NCFCorruptFileError(NCFError):
    """The file is not a valid NCF file: truncated, bit-flipped, wrong magic, bad checksum..."""

    exit_code = 2


class NCFVersionError(NCFError):
    """The file needs a newer reader: newer major version, or a required feature unknown here."""

    exit_code = 2


class NCFSchemaError(NCFError):
    """A schema or type cannot be stored in NCF, or a batch does not match the writer's schema."""


class NCFFilterError(NCFError):
    """A filter expression is malformed or names an unknown column."""


class NCFWriterError(NCFError):
    """The writer was misused (written after close, bad option...)."""


class CorruptData(NCFCorruptFileError):
    """Raised deep in decoding without the file name; the reader re-raises it with context."""

"""Exceptions of the NCF format layer.

Every error raised on purpose derives from :class:`NCFError`; its message is one line that
names the file (when there is one) and the problem, so a command line can print it as is.
Process exit codes are the command line's business (``neurolake_spark.cli.EXIT_CODES``).
"""

from __future__ import annotations


class NCFError(Exception):
    """Base of every error the NCF format raises on purpose."""


class NCFCorruptFileError(NCFError):
    """The file is not a valid NCF file: truncated, bit-flipped, wrong magic, bad checksum..."""


class NCFVersionError(NCFError):
    """The file needs a newer reader: newer major version, or a required feature unknown here."""


class NCFSchemaError(NCFError):
    """A schema or type cannot be stored in NCF, or a batch does not match the writer's schema."""


class NCFFilterError(NCFError):
    """A filter expression is malformed or names an unknown column."""


class NCFWriterError(NCFError):
    """The writer was misused (written after close, bad option...)."""


class CorruptData(NCFCorruptFileError):
    """Raised deep in decoding without the file name; the reader re-raises it with context."""

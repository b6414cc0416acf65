"""The NCF columnar file format, version 1 (see ``ncf_datasource/SPEC.md``). No Spark here."""

from .errors import (
    NCFCorruptFileError,
    NCFError,
    NCFFilterError,
    NCFSchemaError,
    NCFVersionError,
    NCFWriterError,
)
from .filters import And, Col, Compare, Expr, In, IsNull, Not, Or, StartsWith, col, to_expr
from .inspect import format_inspect, inspect
from .reader import ColumnChunk, NCFFile, RowGroup, iter_batches, read_table
from .writer import NCFWriter, write_table

__all__ = [
    "And",
    "Col",
    "ColumnChunk",
    "Compare",
    "Expr",
    "In",
    "IsNull",
    "NCFCorruptFileError",
    "NCFError",
    "NCFFile",
    "NCFFilterError",
    "NCFSchemaError",
    "NCFVersionError",
    "NCFWriter",
    "NCFWriterError",
    "Not",
    "Or",
    "RowGroup",
    "StartsWith",
    "col",
    "format_inspect",
    "inspect",
    "iter_batches",
    "read_table",
    "to_expr",
    "write_table",
]

"""NCF: NeuroLake's columnar file format, its tables and its Spark data source.

The format layer (this package's top level) is plain Python on pyarrow, shaped like
``pyarrow.parquet``::

    import ncf_datasource as ncf
    ncf.write_table(table, "users.ncf", sort_key="id", column_tags={"email": {"pii": "email"}})
    ncf.read_table("users.ncf", columns=["id", "email"], filter=[("id", ">=", 10)])
    ncf.NCFFile("users.ncf").lookup(42)
    print(ncf.format_inspect(ncf.inspect("users.ncf")))

Importing this package never imports Spark.
"""

from .format import (
    And,
    Col,
    ColumnChunk,
    Compare,
    Expr,
    In,
    IsNull,
    NCFCorruptFileError,
    NCFError,
    NCFFile,
    NCFFilterError,
    NCFSchemaError,
    NCFVersionError,
    NCFWriter,
    NCFWriterError,
    Not,
    Or,
    RowGroup,
    StartsWith,
    col,
    format_inspect,
    inspect,
    iter_batches,
    read_table,
    to_expr,
    write_table,
)

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
